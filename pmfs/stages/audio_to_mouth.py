"""Stage 1, `AudioToMouth`: speech → content landmarks (lips + lower jaw) in the canonical frame.

Targets are the ground-truth landmarks moved into the canonical frame (`to_canonical`), restricted
to `CONTENT_INDICES`; the references give the speaker's mouth shape (their canonical content).
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from pmfs.batch import Batch, Split
from pmfs.losses.landmarks import LandmarkLossWeights
from pmfs.networks.audio_to_mouth import AudioToMouthNet
from pmfs.stages.common import (
    LandmarkStage,
    canonical_content,
    clip_window_index,
    landmark_metrics,
    place_content,
    save_config,
)


class AudioToMouth(LandmarkStage):
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
        save_config(self, ["network", "optimizer"])
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

    @torch.no_grad()
    def predict_clip_landmarks(
        self,
        mel_windows: Tensor,
        ref_landmarks: Tensor,
        landmarks: Tensor,
        emotion: int | None = None,
        level: int | None = None,
        *,
        window: int = 5,
    ) -> Tensor:
        """Predict a whole clip for media: each frame from the `window` frames centred on it.

        Args:
            mel_windows: (N, 80, 16) mel windows of the clip's N frames.
            ref_landmarks: (K, 68, 2) normalized reference landmarks.
            landmarks: (N, 68, 2) normalized true landmarks; they give each frame's pose.
            emotion: index into `EMOTIONS` (needed when the network uses emotion).
            level: index into `LEVELS` (likewise).
            window: T of the training windows (odd); ends are clamped as in the dataset.

        Returns:
            (N, 68, 2) normalized image `(x, y)`: the true landmarks with the predicted content
            placed into each frame's pose (`place_content`).
        """
        frames = mel_windows.shape[0]
        index = clip_window_index(frames, window, landmarks.shape[0], mel_windows.device)
        refs = ref_landmarks.expand(frames, *ref_landmarks.shape)
        labels = [
            None if v is None else torch.full((frames,), v, device=mel_windows.device)
            for v in (emotion, level)
        ]
        content = self(mel_windows[index], refs, *labels)[:, window // 2]  # (N, 31, 2)
        return place_content(content, landmarks)

    def _predict(self, batch: Batch, split: Split) -> tuple[Tensor, Tensor]:
        pred = self(batch["mel"], batch["ref_landmarks"], batch.get("emotion"), batch.get("level"))
        return pred, canonical_content(batch["landmarks"])

    def _face(self, pred: Tensor, batch: Batch) -> Tensor:
        return place_content(pred, batch["landmarks"])
