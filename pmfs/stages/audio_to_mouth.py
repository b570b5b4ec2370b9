"""Stage 1, `AudioToMouth`: speech → content landmarks (lips + lower jaw) in the canonical frame.

Targets are the ground-truth landmarks moved into the canonical frame (`to_canonical`), restricted
to `CONTENT_INDICES`; the references give the speaker's mouth shape (their canonical content).
"""

from __future__ import annotations

from typing import Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer

from pmfs.batch import Batch
from pmfs.networks.audio_to_mouth import AudioToMouthNet
from pmfs.stages.common import (
    LandmarkLossWeights,
    canonical_content,
    landmark_losses,
    landmark_metrics,
    place_content,
)

Split = Literal["train", "val", "test"]


class AudioToMouth(LightningModule):
    """Train an `AudioToMouthNet` on landmark-only batches (`landmarks_only: true`).

    Args:
        network: the network (`class_path` in YAML).
        optimizer: builds the optimizer from the parameters, e.g. `torch.optim.Adam`.
        loss_weights: L1 and velocity weights; None → `LandmarkLossWeights()`.
    """

    def __init__(
        self,
        network: AudioToMouthNet,
        optimizer: OptimizerCallable = torch.optim.Adam,
        loss_weights: LandmarkLossWeights | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "optimizer"])
        self.network = network
        self.optimizer = optimizer
        self.loss_weights = loss_weights or LandmarkLossWeights()
        self.val_metrics = landmark_metrics("val/", face=False)
        self.test_metrics = landmark_metrics("test/", face=False)

    def forward(
        self,
        mel: Tensor,
        ref_landmarks: Tensor,
        emotion: Tensor | None = None,
        level: Tensor | None = None,
    ) -> Tensor:
        """Inference: (B, T, 80, 16) mel + (B, K, 68, 2) normalized references → (B, T, 31, 2).

        Returns:
            Canonical content points (`CONTENT_INDICES` order), normalized template frame.
        """
        return self.network(mel, canonical_content(ref_landmarks), emotion, level)

    def _shared_step(self, batch: Batch, split: Split) -> dict[str, Tensor]:
        pred = self(batch["mel"], batch["ref_landmarks"], batch.get("emotion"), batch.get("level"))
        losses = landmark_losses(pred, canonical_content(batch["landmarks"]), self.loss_weights)
        self.log_dict(
            {f"{split}/{name}": value for name, value in losses.items()},
            prog_bar=split != "test",
            batch_size=pred.shape[0],
        )
        if split != "train":
            metrics = self.val_metrics if split == "val" else self.test_metrics
            metrics.update(place_content(pred, batch["landmarks"]), batch["landmarks"])
            self.log_dict(metrics, batch_size=pred.shape[0])
        return losses

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.parameters())
