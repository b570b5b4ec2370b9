"""Each arm of issue 15's benchmark (`resolution_benchmark.py`) builds the model it names.

The benchmark takes minutes per arm and is run by hand; its overlays are strings of YAML laid
over demo.yaml. A key that moved in demo.yaml, or an overlay that does not reach a nested
`init_args`, would make an arm train something else without an error. Here every arm goes
through the real `PMFSLightningCLI` (no training) and the model it builds is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from renderer_benchmark import DEMO, build_cli
from resolution_benchmark import ARMS, arm_args

from pmfs.stages import PMFS


def _build(root: Path, arm: str) -> tuple[PMFS, int]:
    """The model and the data's image size of `pmfs fit -c demo.yaml <arm's arguments>`."""
    args = ["-c", str(DEMO), *arm_args(root, arm), f"--data.init_args.root={root}"]
    args += ["--trainer.logger=false", "--trainer.callbacks=[]"]
    cli = build_cli(args)
    assert isinstance(cli.model, PMFS)
    return cli.model, int(cli.datamodule.hparams["image_size"])


# arm → (data size, coarse-to-fine switch or None, network working size, bicubic warps,
#        mouth critic, whole-frame critic)
EXPECTED: dict[str, tuple[int, int | None, int | None, bool, bool, bool]] = {
    "working": (256, 200, 64, True, True, False),
    "no_mouth_gan": (256, 200, 64, True, False, False),
    "single_size": (256, None, 64, True, True, False),
    "switch_300": (256, 300, 64, True, True, False),
    "previous": (128, None, 64, True, False, True),
    "full_resolution": (128, None, None, False, False, True),
    "today": (64, None, None, False, False, True),
}


def test_every_arm_is_listed() -> None:
    assert set(EXPECTED) == set(ARMS)


@pytest.mark.parametrize("arm", sorted(EXPECTED))
def test_arm_builds_the_model_it_names(arm: str, tmp_path: Path) -> None:
    size, switch, working, bicubic, mouth_critic, frame_critic = EXPECTED[arm]
    model, data_size = _build(tmp_path, arm)
    renderer = model.renderer
    schedule = model.curriculum.renderer_size
    assert data_size == size
    assert (None if schedule is None else schedule.until) == switch
    assert renderer.network.working_size == working
    assert (renderer.network.image_warp == "bicubic") == bicubic
    assert (renderer.mouth_discriminator is not None) == mouth_critic
    assert (renderer.discriminator is not None) == frame_critic
