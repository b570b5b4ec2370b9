"""Every YAML under experiments/ parses, and every config trains with `fast_dev_run`.

Stage configs (`experiments/stages/*.yaml` with a `model`) run through the real `pmfs fit`
(`pmfs.cli.main`) stacked with the synthetic overlay, on a tiny generated synthetic cache;
`full.yaml` alone and stacked with each ablation overlay, and `demo.yaml`, run at tiny sizes
(32² frames, a narrow renderer) with VGG19 weights of the real layout (random values) in a
temporary torch hub cache, so that `perceptual_weights: imagenet` loads through the real path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from pmfs.cli import main
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
ALL_YAML = sorted(EXPERIMENTS.rglob("*.yaml"))
STAGE_CONFIGS = [
    path
    for path in sorted((EXPERIMENTS / "stages").glob("*.yaml"))
    if "model" in (yaml.safe_load(path.read_text()) or {})
]
SYNTHETIC_OVERLAY = EXPERIMENTS / "stages" / "synthetic.yaml"
FULL = EXPERIMENTS / "full.yaml"
ABLATIONS = sorted((EXPERIMENTS / "ablations").glob("*.yaml"))


def _name(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_experiments")
    build_synthetic_dataset(SynthConfig(out=root, speakers=3, clips=2, size=64, progress=False))
    return root


@pytest.fixture(scope="module")
def vgg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vgg_weights import write_random_vgg19

    home = tmp_path_factory.mktemp("torch_home")
    write_random_vgg19(home)
    return home


def test_stage_configs_exist() -> None:
    names = {path.name for path in STAGE_CONFIGS}
    assert {"audio_to_mouth.yaml", "mouth_to_face.yaml", "face_renderer.yaml"} <= names
    assert SYNTHETIC_OVERLAY.is_file()
    assert {p.stem for p in ABLATIONS} >= {
        "ref_random",
        "no_warping",
        "no_background",
        "mask_content_hull",
    }


@pytest.mark.parametrize("path", ABLATIONS, ids=_name)
def test_ablations_state_a_hypothesis_and_stack_on_full(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# Hypothesis:"), f"{path.name} must open with its hypothesis"
    assert "One change:" in text
    assert f"-c experiments/full.yaml -c experiments/ablations/{path.name}" in text


@pytest.mark.parametrize("path", ALL_YAML, ids=_name)
def test_yaml_parses(path: Path) -> None:
    content = yaml.safe_load(path.read_text())
    assert isinstance(content, dict) and content, f"{path} is not a non-empty mapping"


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=_name)
def test_stage_config_fast_dev_run(
    path: Path,
    synth_root: Path,
    tmp_path: Path,
    vgg_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    args = [
        "fit",
        "-c",
        str(path),
        "-c",
        str(SYNTHETIC_OVERLAY),
        f"--data.init_args.root={synth_root}",
        "--data.init_args.batch_size=4",
        "--data.init_args.image_size=32",
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


TINY_SYSTEM = [
    "--data.init_args.dataset=synthetic",
    "--data.init_args.image_size=32",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--model.init_args.renderer.init_args.network.init_args.channels=4",
    "--model.init_args.renderer.init_args.network.init_args.max_channels=8",
    "--model.init_args.renderer.init_args.discriminator.channels=8",
    "--trainer.logger=false",
    "--trainer.fast_dev_run=true",
    "--trainer.accelerator=cpu",
]


@pytest.mark.parametrize(
    "overlay", [None, *ABLATIONS], ids=lambda p: "full" if p is None else p.stem
)
def test_full_and_every_ablation_fast_dev_run(
    overlay: Path | None,
    synth_root: Path,
    tmp_path: Path,
    vgg_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`pmfs fit -c experiments/full.yaml [-c experiments/ablations/X.yaml]`, tiny sizes."""
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    configs = ["-c", str(FULL)] + ([] if overlay is None else ["-c", str(overlay)])
    args = [
        "fit",
        *configs,
        f"--data.init_args.root={synth_root}",
        *TINY_SYSTEM,
        f"--trainer.default_root_dir={tmp_path}",
    ]
    assert main(args) == 0


def _parsed(capsys: pytest.CaptureFixture[str], *configs: Path) -> dict[str, object]:
    """The flattened `pmfs fit --print_config` of stacked configs (call with `sys.argv` set)."""
    args = ["fit", *[a for config in configs for a in ("-c", str(config))]]
    with pytest.raises(SystemExit) as done:
        main([*args, "--print_config"])
    assert done.value.code in (0, None)
    return _flatten(capsys.readouterr().out)


WORKING_SIZE = "model.init_args.renderer.init_args.network.init_args.working_size"


def test_ablation_overlays_change_what_they_say(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each overlay's parsed config (`--print_config`) differs from full.yaml's in its switch."""
    monkeypatch.setattr(sys, "argv", ["pmfs"])

    def parsed(*overlays: Path) -> dict[str, object]:
        return _parsed(capsys, FULL, *overlays)

    base = parsed()
    expected = {
        "ref_random": {"data.init_args.reference_source": "random"},
        "no_warping": {"model.init_args.renderer.init_args.network.init_args.warping": False},
        "no_background": {
            "model.init_args.renderer.init_args.background": "remove",
            "data.init_args.background": "remove",
        },
        "mask_content_hull": {"model.init_args.renderer.init_args.target_mask": "content_hull"},
        "full_resolution": {WORKING_SIZE: None},
        "no_mouth_detail": {"model.init_args.renderer.init_args.network.init_args.mouth_detail": 0},
        "no_mouth_gan": {
            "model.init_args.renderer.init_args.loss_weights.mouth_adversarial": 0.0,
            "model.init_args.renderer.init_args.loss_weights.mouth_feature_matching": 0.0,
        },
    }
    working = WORKING_SIZE
    assert base[working] == 128  # full.yaml: the network at 128², its maps at the output size
    for overlay in ABLATIONS:
        changed = {k: v for k, v in parsed(overlay).items() if base.get(k) != v}
        changed.pop("config", None)
        assert changed == expected[overlay.stem], overlay.name


def _flatten(dumped: str) -> dict[str, object]:
    """A dumped config as dotted keys; list items by index (`trainer.callbacks.1.init_args`)."""
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            out[prefix] = value

    walk("", yaml.safe_load(dumped))
    return out


DEMO_SIZES = {
    "trainer": {"accelerator", "max_epochs", "log_every_n_steps"},
    "trainer.logger.0.init_args": {"project"},
    "trainer.callbacks.1.init_args": {"every_n_epochs", "max_frames", "chunk"},
    "model.init_args.curriculum": {
        *(f"{ramp}.{key}" for ramp in ("mouth_to_face", "renderer") for key in ("start", "end")),
        "renderer_size",  # full.yaml: null, every batch at 256²
        "renderer_size.size",  # the demo: 128² frames first
        "renderer_size.until",
    },
    "model.init_args.audio_to_mouth.init_args": {
        *(f"network.init_args.{k}" for k in ("dim", "depth", "dropout", "conv_channels")),
        "optimizer.init_args.lr",
    },
    "model.init_args.mouth_to_face.init_args": {"network.init_args.dim", "optimizer.init_args.lr"},
    "model.init_args.renderer.init_args": {
        *(
            f"network.init_args.{k}"
            for k in ("channels", "levels", "max_channels", "res_blocks", "working_size")
        ),
        "optimizer.init_args.lr",
        "discriminator_optimizer.init_args.lr",
        "discriminator.channels",
        "discriminator.scales",
        *(f"loss_weights.{k}" for k in ("perceptual", "adversarial", "feature_matching")),
        "perceptual_weights",
    },
    "data.init_args": {
        "root",
        "dataset",
        "image_size",
        "batch_size",
        "num_workers",
        "images_on_device",
    },
}
"""Where demo.yaml may differ from full.yaml (the demo's sizes); see demo.yaml's first lines."""


def test_demo_is_full_at_demo_sizes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo.yaml restates full.yaml (it must run alone): the two stay the same model."""
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    full, demo = _parsed(capsys, FULL), _parsed(capsys, EXPERIMENTS / "demo.yaml")
    differ = {key for key in full.keys() | demo.keys() if full.get(key) != demo.get(key)}
    allowed = {f"{prefix}.{key}" for prefix, keys in DEMO_SIZES.items() for key in keys}
    assert differ <= allowed, f"demo.yaml differs from full.yaml in {sorted(differ - allowed)}"


def test_demo_config_fast_dev_run(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    args = [
        "fit",
        "-c",
        str(EXPERIMENTS / "demo.yaml"),
        f"--data.init_args.root={synth_root}",
        "--data.init_args.image_size=64",  # the 64² cache; the renderer's network at 64²
        "--data.init_args.num_workers=0",
        "--trainer.logger=false",
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    assert main(args) == 0


PERSONAL = EXPERIMENTS / "personal.yaml"


@pytest.mark.parametrize("base", [FULL, EXPERIMENTS / "demo.yaml"], ids=lambda p: p.stem)
def test_personal_overlays_full_and_demo(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """personal.yaml changes only the fine-tuning switches of the config it is stacked on."""
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    plain, personal = _parsed(capsys, base), _parsed(capsys, base, PERSONAL)
    differ = {key for key in plain.keys() | personal.keys() if plain.get(key) != personal.get(key)}
    assert differ == {
        "model.init_args.freeze.0",
        "model.init_args.freeze.1",
        "model.init_args.curriculum.renderer.start",
        "model.init_args.curriculum.renderer.end",
        "model.init_args.curriculum.renderer.final",
        "data.init_args.dataset",
        "data.init_args.reference_source",
        "data.init_args.samples_per_clip",
    }
    frozen = [personal["model.init_args.freeze.0"], personal["model.init_args.freeze.1"]]
    assert frozen == ["audio_to_mouth", "mouth_to_face"]
    assert personal["model.init_args.curriculum.renderer.final"] == 0.0


def test_personal_fast_dev_run_trains_the_renderer_only(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """demo + personal runs (on the synthetic cache, standing in for a videos one): stages 1 and
    2 frozen, so the renderer and its critic are the only optimizers."""
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    args = ["fit", "-c", str(EXPERIMENTS / "demo.yaml"), "-c", str(PERSONAL)]
    args += [
        f"--data.init_args.root={synth_root}",
        "--data.init_args.dataset=synthetic",
        "--data.init_args.image_size=64",
        "--data.init_args.num_workers=0",
        "--trainer.logger=false",
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    assert main(args) == 0
