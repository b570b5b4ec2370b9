"""Every YAML under experiments/ parses, and every stage config trains with `fast_dev_run`.

Stage configs (`experiments/stages/*.yaml` with a `model`) run through the real `pmfs fit`
(`pmfs.cli.main`) stacked with the synthetic overlay, on a tiny generated synthetic cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from pmfs.cli import main
from pmfs.data.synth import SynthConfig, build_synthetic_dataset

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
ALL_YAML = sorted(EXPERIMENTS.rglob("*.yaml"))
STAGE_CONFIGS = [
    path
    for path in sorted((EXPERIMENTS / "stages").glob("*.yaml"))
    if "model" in (yaml.safe_load(path.read_text()) or {})
]
SYNTHETIC_OVERLAY = EXPERIMENTS / "stages" / "synthetic.yaml"


def _name(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_experiments")
    build_synthetic_dataset(SynthConfig(out=root, speakers=3, clips=2, size=64, progress=False))
    return root


def test_stage_configs_exist() -> None:
    names = {path.name for path in STAGE_CONFIGS}
    assert {"audio_to_mouth.yaml", "mouth_to_face.yaml"} <= names
    assert SYNTHETIC_OVERLAY.is_file()


@pytest.mark.parametrize("path", ALL_YAML, ids=_name)
def test_yaml_parses(path: Path) -> None:
    content = yaml.safe_load(path.read_text())
    assert isinstance(content, dict) and content, f"{path} is not a non-empty mapping"


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=_name)
def test_stage_config_fast_dev_run(
    path: Path, synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    args = [
        "fit",
        "-c",
        str(path),
        "-c",
        str(SYNTHETIC_OVERLAY),
        f"--data.init_args.root={synth_root}",
        "--data.init_args.batch_size=4",
        "--trainer.fast_dev_run=true",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    assert main(args) == 0


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=_name)
def test_stage_config_rejects_unknown_keys(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    with pytest.raises(SystemExit):
        main(["fit", "-c", str(path), "--model.init_args.no_such_option=1"])


def test_stage2_trains_on_a_stage1_checkpoint(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-step workflow: `pmfs fit` stage 1, then stage 2 fed that checkpoint's predictions."""
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    common = [
        "-c",
        str(SYNTHETIC_OVERLAY),
        f"--data.init_args.root={synth_root}",
        "--data.init_args.batch_size=4",
        "--trainer.max_steps=2",
        "--trainer.limit_val_batches=1",
        "--trainer.accelerator=cpu",
    ]
    stage1_config = EXPERIMENTS / "stages" / "audio_to_mouth.yaml"
    stage1_dir = tmp_path / "stage1"
    assert (
        main(["fit", "-c", str(stage1_config), *common, f"--trainer.default_root_dir={stage1_dir}"])
        == 0
    )
    (checkpoint,) = stage1_dir.rglob("*.ckpt")
    overlay = tmp_path / "content_model.yaml"
    stage1_model = yaml.safe_load(stage1_config.read_text())["model"]
    overlay.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "init_args": {
                        "content_model": stage1_model,
                        "content_checkpoint": str(checkpoint),
                    }
                }
            }
        )
    )
    args = ["fit", "-c", str(EXPERIMENTS / "stages" / "mouth_to_face.yaml"), "-c", str(overlay)]
    assert main([*args, *common, f"--trainer.default_root_dir={tmp_path / 'stage2'}"]) == 0
    (stage2_checkpoint,) = (tmp_path / "stage2").rglob("*.ckpt")
    state = torch.load(stage2_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    stage1_state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in stage1_state.items():  # stage 1 was loaded and stayed frozen
        torch.testing.assert_close(state[f"content_model.{key}"], value)
