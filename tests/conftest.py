"""Shared fixtures: the real inputs in ../shared/samples (skipped with a reason when absent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = Path(os.environ.get("PMFS_SAMPLES", REPO_ROOT.parent / "shared" / "samples"))

SAMPLE_WAV = "M003_Angry_Level01_005.wav"
SAMPLE_VIDEOS = ("VTV_M003Angry01005.mp4", "FaceM003Angry01005_Audio1001DFAANGXX.mp4")

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def _sample(name: str) -> Path:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(
            f"sample {name} not found in {SAMPLES_DIR} (set PMFS_SAMPLES or check ../shared)"
        )
    return path


@pytest.fixture(scope="session")
def sample_wav() -> Path:
    """The MEAD clip M003_Angry_Level01_005.wav (stereo, 16 kHz, 2.73 s)."""
    return _sample(SAMPLE_WAV)


@pytest.fixture(scope="session", params=SAMPLE_VIDEOS)
def sample_video(request: pytest.FixtureRequest) -> Path:
    """Each of the two 256×256 talking-face demo videos (25 fps, with audio)."""
    return _sample(request.param)


@pytest.fixture(scope="session")
def sample_videos() -> list[Path]:
    """Both demo videos."""
    return [_sample(name) for name in SAMPLE_VIDEOS]


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME holding random-weight FAN and S3FD checkpoints (face-alignment's file names;
    see tests/fa_weights.py)."""
    from fa_weights import write_random_weights

    home = tmp_path / "torch_home"
    write_random_weights(home)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic cache (2 speakers × 2 clips, 64²), built once; tests only read it."""
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

    root = tmp_path_factory.mktemp("tiny_synth")
    build_synthetic_dataset(SynthConfig(out=root, speakers=2, clips=2, size=64, progress=False))
    return root


@pytest.fixture(scope="session")
def tiny_pmfs_checkpoint(tiny_synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `PMFS` checkpoint written by a real `pmfs fit` of experiments/demo.yaml (a few steps).

    64² frames of the tiny synthetic cache, 40 batches: the weights are barely trained, and what
    they do (does the mouth move?) changes with the CPU's vector unit. For tests of loading and of
    the command lines' plumbing; a test that needs the model to have some effect takes
    `known_pmfs_checkpoint`.
    """
    from pmfs.cli import main

    root = tmp_path_factory.mktemp("tiny_pmfs")
    args = [
        "fit",
        "-c",
        str(REPO_ROOT / "experiments" / "demo.yaml"),
        f"--data.init_args.root={tiny_synth_root}",
        "--data.init_args.image_size=64",  # the renderer's network works at 64² too
        "--data.init_args.num_workers=0",
        "--data.init_args.batch_size=4",
        "--trainer.logger=false",
        "--trainer.max_steps=160",  # 40 batches (4 optimizer steps each)
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={root}",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["pmfs"])  # LightningCLI must not see pytest's arguments
        assert main(args) == 0
    return root / "runs" / "demo" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def known_pmfs_checkpoint(
    tiny_pmfs_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`tiny_pmfs_checkpoint` with its weights set rather than trained (tests/known_weights.py):
    the mouth follows the audio (still in silence) and the renderer paints a face that differs
    wherever its sketch does, on any CPU. For tests of inference, evaluation and figures."""
    from known_weights import write_known_checkpoint

    out = tmp_path_factory.mktemp("known_pmfs") / "known.ckpt"
    return write_known_checkpoint(tiny_pmfs_checkpoint, out)
