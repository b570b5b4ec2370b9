"""Jitter of landmark tracks: the mean acceleration of the mouth points, in pixels per frame².

A track that shakes from frame to frame has large second differences even when its positions are
close to the truth (M-LMD) and its velocities are right on average; a smooth track has second
differences as small as the articulation itself. Per point p and frame t (1 ≤ t ≤ T − 2):

    a_t = x_{t+1} − 2 x_t + x_{t−1},    jitter = mean_{t, p} |a_t| · crop_size / 2

over the 20 lip points 48–67, landmarks in normalized [-1, 1] `(x, y)` coordinates
(`pmfs.landmarks`), reported in pixels of a `crop_size`² crop (the 256 crop by default, as the
LMD metrics of `pmfs.metrics.landmarks`). The motion of the head counts too: compare a
prediction's jitter with that of the ground truth of the same frames.

`mouth_jitter` is the functional core; `MouthJitter` accumulates sums over batches
(`dist_reduce_fx="sum"`, so DDP gives the number one process would).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from pmfs.landmarks import LIPS, NUM_LANDMARKS

__all__ = ["MouthJitter", "mouth_jitter"]


def _jitter_update(landmarks: Tensor, crop_size: int) -> tuple[Tensor, int]:
    """Sum of the lip points' acceleration magnitudes in pixels and their count.

    Args:
        landmarks: (B, T, 68, 2) or (T, 68, 2) normalized landmarks of consecutive frames.
        crop_size: side in pixels of the square crop the result is reported in.

    Returns:
        (0-d summed |acceleration| in pixels per frame², number of accelerations summed).
    """
    if not isinstance(landmarks, Tensor):
        raise TypeError(f"landmarks must be a torch.Tensor, got {type(landmarks).__name__}")
    if landmarks.ndim not in (3, 4) or tuple(landmarks.shape[-2:]) != (NUM_LANDMARKS, 2):
        raise ValueError(
            f"landmarks must have shape (B, T, 68, 2) or (T, 68, 2), got {tuple(landmarks.shape)}"
        )
    if landmarks.shape[-3] < 3:
        raise ValueError(f"jitter needs T >= 3 frames, got shape {tuple(landmarks.shape)}")
    if not isinstance(crop_size, int) or crop_size <= 0:
        raise ValueError(f"crop_size must be a positive int (pixels), got {crop_size!r}")
    lips = landmarks[..., torch.as_tensor(LIPS, device=landmarks.device), :].float()
    # second difference along time: (..., T - 2, 20, 2)
    accel = lips[..., 2:, :, :] - 2 * lips[..., 1:-1, :, :] + lips[..., :-2, :, :]
    magnitude = torch.linalg.vector_norm(accel, dim=-1)  # (..., T - 2, 20)
    return magnitude.sum() * (crop_size / 2), magnitude.numel()


def mouth_jitter(landmarks: Tensor, crop_size: int = 256) -> Tensor:
    """Mean acceleration magnitude of the 20 lip points, pixels per frame².

    Args:
        landmarks: (B, T, 68, 2) or (T, 68, 2) normalized [-1, 1] `(x, y)` landmarks of
            consecutive frames, T ≥ 3.
        crop_size: side in pixels of the square crop; 1 normalized unit is `crop_size / 2` px.

    Returns:
        0-d tensor.
    """
    total, count = _jitter_update(landmarks, crop_size)
    return total / count


class MouthJitter(Metric):
    """Mean lip acceleration in pixels per frame² over every clip seen (see `mouth_jitter`).

    `update(landmarks)` takes (B, T, 68, 2) or (T, 68, 2) normalized landmarks of consecutive
    frames; `compute()` is the mean over all accelerations since the last reset.

    Args:
        crop_size: side in pixels of the square crop the result is reported in.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(self, crop_size: int = 256) -> None:
        super().__init__()
        if not isinstance(crop_size, int) or crop_size <= 0:
            raise ValueError(f"crop_size must be a positive int (pixels), got {crop_size!r}")
        self.crop_size = crop_size
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, landmarks: Tensor) -> None:
        """Add clips: (B, T, 68, 2) or (T, 68, 2) normalized landmarks, T ≥ 3."""
        total, count = _jitter_update(landmarks, self.crop_size)
        self.total += total.to(self.total.dtype)
        self.count += count

    def compute(self) -> Tensor:
        """Mean |acceleration| in pixels per frame² (0-d)."""
        return self.total / self.count
