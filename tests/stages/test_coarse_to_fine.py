"""`CoarseToFine`: the renderer trains on smaller frames first, then at the data's size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from test_system import SIZE, _batch, _system

from data_modules import TalkingFaceDataModule
from pmfs.stages import CoarseToFine, Curriculum, Ramp


def test_frames_are_resized_until_the_switch() -> None:
    batch = _batch()
    schedule = CoarseToFine(size=SIZE // 2, until=3)
    early, late = schedule.frames(batch, 2), schedule.frames(batch, 3)
    assert early["target"].shape == (2, 3, SIZE // 2, SIZE // 2)
    assert early["fg_mask"].shape == (2, 1, SIZE // 2, SIZE // 2)
    assert early["ref_frames"].shape == (2, 2, 3, SIZE // 2, SIZE // 2)
    # antialiased: the mean colour survives, and nothing else in the batch changes
    assert torch.allclose(early["target"].mean(), batch["target"].mean(), atol=1e-3)
    assert torch.equal(early["landmarks"], batch["landmarks"])
    assert early["clip"] == batch["clip"]
    assert late is batch
    assert CoarseToFine(size=SIZE, until=10).frames(batch, 0) is batch  # already that small
    with pytest.raises(ValueError, match="size >= 8"):
        CoarseToFine(size=4, until=1)


def test_the_system_renders_at_the_scheduled_size(tiny_synth_root: Path, tmp_path: Path) -> None:
    """A real `fit`: the first batch renders at half the data's size, the second at its size."""
    curriculum = Curriculum(
        Ramp(0, 0, 0.0), Ramp(0, 0, 0.0), renderer_size=CoarseToFine(size=SIZE // 2, until=1)
    )
    system = _system(curriculum)
    sizes: list[int] = []
    system.renderer.network.register_forward_hook(
        lambda module, args, out: sizes.append(out.image.shape[-1])
    )
    data = TalkingFaceDataModule(
        str(tiny_synth_root), image_size=SIZE, batch_size=2, num_workers=0, samples_per_clip=4
    )
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(system, data)
    assert int(system.batches_seen) == 2
    assert sizes == [SIZE // 2, SIZE]
    assert torch.isfinite(trainer.callback_metrics["train/renderer/loss"])
