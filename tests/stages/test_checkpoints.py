"""`pmfs.checkpoints`: a `pmfs fit` checkpoint alone rebuilds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pmfs.checkpoints import CheckpointError, data_config, load_model
from pmfs.stages import PMFS


def test_a_fit_checkpoint_rebuilds_the_system(tiny_pmfs_checkpoint: Path) -> None:
    model = load_model(tiny_pmfs_checkpoint)
    assert isinstance(model, PMFS) and not model.training
    state = torch.load(tiny_pmfs_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert data_config(tiny_pmfs_checkpoint)["image_size"] == 64
    assert model.renderer.network.warping and model.renderer.background == "keep"


def test_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(CheckpointError, match="not written by `pmfs fit`"):
        load_model(bare)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(garbage)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.ckpt")


def test_weights_of_another_version_are_one_line(
    tiny_pmfs_checkpoint: Path, tmp_path: Path
) -> None:
    """A checkpoint whose weights the current network does not have (here: written before the
    working-size renderer's fine motion head) is refused in one line naming the keys."""
    checkpoint = torch.load(tiny_pmfs_checkpoint, map_location="cpu", weights_only=False)
    state = checkpoint["state_dict"]
    dropped = [k for k in state if ".fine_motion." in k]
    assert dropped  # demo.yaml's renderer has a working size, so it has the fine head
    for key in dropped:
        del state[key]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.raises(CheckpointError) as raised:
        load_model(old)
    message = str(raised.value)
    assert "\n" not in message and "missing renderer.network.fine_motion." in message
    assert f"and {len(dropped) - 3} more" in message and "another version" in message
