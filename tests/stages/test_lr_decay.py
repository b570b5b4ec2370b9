"""`LRDecay`: every stage's learning rate decays linearly over the end of a real `fit`, with the
horizon counted in batches (manual optimization counts one Lightning step per optimizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from data_modules import TalkingFaceDataModule
from pmfs.networks import AudioToMouthNet, FaceRendererNet, MouthToFaceNet
from pmfs.stages import PMFS, AudioToMouth, FaceRenderer, MouthToFace
from pmfs.stages.lr_decay import LRDecay

SIZE = 32


def test_factor_is_constant_then_linear_to_final() -> None:
    decay = LRDecay(start=0.5, final=0.1)
    assert [decay.factor(b, 10) for b in (0, 4, 5)] == [1.0, 1.0, 1.0]
    assert decay.factor(10, 10) == pytest.approx(0.1)
    assert decay.factor(9, 10) == pytest.approx(1.0 - 0.9 * 4 / 5)
    assert decay.factor(50, 10) == pytest.approx(0.1)  # past the horizon: stays at final
    assert LRDecay(start=1.0).factor(9, 10) == 1.0  # start 1.0: off
    with pytest.raises(ValueError, match="start and final"):
        LRDecay(start=1.5)


class _LearningRates(Callback):
    """Records, before each batch, the learning rate of every optimizer."""

    def __init__(self) -> None:
        self.rates: list[list[float]] = []

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int
    ) -> None:
        self.rates.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])


def _fit(root: Path, tmp_path: Path, **limits: int) -> tuple[PMFS, list[list[float]]]:
    torch.manual_seed(0)
    system = PMFS(
        AudioToMouth(AudioToMouthNet(dim=16, depth=1, heads=2, conv_channels=4)),
        MouthToFace(MouthToFaceNet(dim=16, depth=1, heads=2)),
        FaceRenderer(
            FaceRendererNet(channels=4, levels=2, max_channels=8, res_blocks=1),
            perceptual_weights=None,
        ),
        lr_decay=LRDecay(start=0.5, final=0.0),
    )
    data = TalkingFaceDataModule(
        str(root), image_size=SIZE, batch_size=2, num_workers=0, samples_per_clip=16
    )
    rates = _LearningRates()
    trainer = Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[rates],
        **limits,  # type: ignore[arg-type]
    )
    trainer.fit(system, data)
    return system, rates.rates


def test_every_stage_decays_over_the_batches_of_max_steps(
    tiny_synth_root: Path, tmp_path: Path
) -> None:
    system, rates = _fit(tiny_synth_root, tmp_path, max_steps=8 * 4, max_epochs=100)
    assert int(system.batches_seen) == 8 and len(rates) == 8
    base = rates[0]
    assert len(base) == 4  # stage 1, stage 2, generator, discriminator
    for batch, row in enumerate(rates):  # horizon 8 batches, decay from batch 4
        factor = 1.0 if batch < 4 else 1.0 - (batch - 4) / 4
        assert row == pytest.approx([lr * factor for lr in base]), batch


def test_the_horizon_follows_max_epochs(tiny_synth_root: Path, tmp_path: Path) -> None:
    system, rates = _fit(tiny_synth_root, tmp_path, max_epochs=2, limit_train_batches=3)
    assert int(system.batches_seen) == 6
    assert [row[0] / rates[0][0] for row in rates] == pytest.approx(
        [1.0, 1.0, 1.0, 1.0, 2 / 3, 1 / 3]
    )
