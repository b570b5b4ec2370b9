"""Shared fixtures: the real inputs in ../shared/samples (skipped with a reason when absent)."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def tiny_synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic cache (2 speakers × 2 clips, 64²), built once; tests only read it."""
    from pmfs.data.synth import SynthConfig, build_synthetic_dataset

    root = tmp_path_factory.mktemp("tiny_synth")
    build_synthetic_dataset(SynthConfig(out=root, speakers=2, clips=2, size=64, progress=False))
    return root
