"""Stage 2, `MouthToFace`: canonical content + the target's pose → all 68 landmarks in the image.

Its content input in training is the ground-truth canonical content with Gaussian noise added
(`content_noise`, in the template's normalized units), so that it tolerates stage-1 errors; and,
with a frozen stage 1 given as `content_model`, that model's predictions for a share
`predicted_content` of the samples, so that it learns to correct stage 1's systematic errors (on
the synthetic set this lowers F-LMD below the analytic baseline, which noise alone does not; see
docs/results.md). Validation and testing use the clean ground-truth content, or the content
model's predictions when there is one. Pose points come from the target frames, as at inference.
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from pmfs.batch import Batch, Split
from pmfs.landmarks import POSE_INDICES
from pmfs.losses.landmarks import LandmarkLossWeights
from pmfs.networks.mouth_to_face import MouthToFaceNet
from pmfs.stages.audio_to_mouth import AudioToMouth
from pmfs.stages.common import (
    LandmarkStage,
    canonical_content,
    clip_window_index,
    landmark_metrics,
    load_stage_checkpoint,
    save_config,
)


class MouthToFace(LandmarkStage):
    """Train a `MouthToFaceNet` on landmark-only batches (`landmarks_only: true`).

    Args:
        network: the network (`class_path` in YAML).
        optimizer: builds the optimizer from the parameters, e.g. `torch.optim.Adam`.
        loss_weights: L1 and velocity weights on the 68 image-space points; None → defaults.
        content_noise: std of the Gaussian noise added to the canonical content in training
            (normalized template units; 0.01 ≈ 1.3 px of a 256 crop); 0 turns it off.
        content_model: a stage 1 whose predictions feed the network; frozen and kept in eval
            mode (it is not trained here). None: ground-truth content only.
        content_checkpoint: a Lightning checkpoint of `content_model` to load (its
            `state_dict`); None keeps the weights it was built with.
        predicted_content: in training, the share of samples that get the content model's
            prediction instead of the ground truth (ignored without a content model).
    """

    def __init__(
        self,
        network: MouthToFaceNet,
        optimizer: OptimizerCallable = torch.optim.Adam,
        loss_weights: LandmarkLossWeights | None = None,
        content_noise: float = 0.01,
        content_model: AudioToMouth | None = None,
        content_checkpoint: str | None = None,
        predicted_content: float = 1.0,
    ) -> None:
        super().__init__()
        if content_noise < 0 or not 0.0 <= predicted_content <= 1.0:
            raise ValueError(
                f"need content_noise >= 0 and predicted_content in [0, 1], got {content_noise} "
                f"and {predicted_content}"
            )
        save_config(self, ["network", "optimizer", "content_model"])
        self.network = network
        self.optimizer = optimizer
        self.loss_weights = loss_weights or LandmarkLossWeights()
        self.val_metrics = landmark_metrics("val/", face=True)
        self.test_metrics = landmark_metrics("test/", face=True)
        self.content_noise = content_noise
        self.predicted_content = predicted_content
        self.content_model = content_model
        if content_model is not None:
            if content_checkpoint is not None:
                load_stage_checkpoint(content_model, content_checkpoint, "content_checkpoint")
            content_model.requires_grad_(False).eval()
        elif content_checkpoint is not None:
            raise ValueError("content_checkpoint is given but content_model is None; set both")

    def forward(self, content: Tensor, pose: Tensor, ref_landmarks: Tensor) -> Tensor:
        """Inference: (B, T, 31, 2) canonical content, (B, T, 37, 2) pose, (B, K, 68, 2) refs.

        Returns:
            (B, T, 68, 2) landmarks, normalized image `(x, y)`.
        """
        return self.network(content, pose, ref_landmarks)

    def train(self, mode: bool = True) -> MouthToFace:
        """Set train/eval mode; the frozen content model always stays in eval mode."""
        super().train(mode)
        if self.content_model is not None:
            self.content_model.eval()
        return self

    def content_input(self, batch: Batch, split: Split) -> Tensor:
        """The network's (B, T, 31, 2) canonical content input for `batch` (see the class doc)."""
        content = canonical_content(batch["landmarks"])
        if self.content_model is not None:
            with torch.no_grad():
                predicted = self.content_model(
                    batch["mel"], batch["ref_landmarks"], batch.get("emotion"), batch.get("level")
                )
            use = torch.ones(content.shape[0], 1, 1, 1, dtype=torch.bool, device=content.device)
            if split == "train":
                use = torch.rand_like(use, dtype=content.dtype) < self.predicted_content
            content = torch.where(use, predicted, content)
        if split == "train" and self.content_noise > 0:
            content = content + self.content_noise * torch.randn_like(content)
        return content

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

        The content input is as in validation: the content model's prediction when there is
        one, else the true canonical content; the pose comes from the true landmarks.

        Args:
            mel_windows: (N, 80, 16) mel windows of the clip's N frames.
            ref_landmarks: (K, 68, 2) normalized reference landmarks.
            landmarks: (N, 68, 2) normalized true landmarks (pose, and content without a model).
            emotion: index into `EMOTIONS` (needed when the content model uses emotion).
            level: index into `LEVELS` (likewise).
            window: T of the training windows (odd); ends are clamped as in the dataset.

        Returns:
            (N, 68, 2) predicted landmarks, normalized image `(x, y)`.
        """
        frames = mel_windows.shape[0]
        index = clip_window_index(frames, window, landmarks.shape[0], mel_windows.device)
        batch: Batch = {
            "mel": mel_windows[index],
            "landmarks": landmarks[index],
            "ref_landmarks": ref_landmarks.expand(frames, *ref_landmarks.shape),
        }
        if emotion is not None and level is not None:
            batch["emotion"] = torch.full((frames,), emotion, device=mel_windows.device)
            batch["level"] = torch.full((frames,), level, device=mel_windows.device)
        content = self.content_input(batch, "val")
        pose = batch["landmarks"][..., POSE_INDICES, :]
        return self(content, pose, batch["ref_landmarks"])[:, window // 2]

    def _predict(self, batch: Batch, split: Split) -> tuple[Tensor, Tensor]:
        landmarks = batch["landmarks"]
        content = self.content_input(batch, split)
        return self(content, landmarks[..., POSE_INDICES, :], batch["ref_landmarks"]), landmarks

    def _face(self, pred: Tensor, batch: Batch) -> Tensor:
        return pred
