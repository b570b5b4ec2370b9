"""Landmark metrics (DESIGN §5): M-LMD, F-LMD, velocity LMD and mouth-opening sync.

Each metric is a functional core (plain tensor functions, usable anywhere) plus a torchmetrics
`Metric` whose states are sums with `dist_reduce_fx="sum"`, so that `compute()` gives the same
number on every rank of a DDP run as on one process fed all the data.

Inputs are `(x, y)` landmarks in the 68-point layout of `pmfs.landmarks`, in *normalized*
coordinates ([-1, 1] over the crop, `grid_sample(align_corners=False)`). A distance `d` in
normalized units is `d * crop_size / 2` pixels of a `crop_size`² crop; the LMD metrics report
pixels of the 256 crop by default.

Mouth-opening sync compares the predicted and true mouth opening (`pmfs.landmarks.mouth_opening`)
over a clip: the Pearson correlation at offset 0, and the audio-visual offset `k` in frames within
`±max_offset` that maximises `corr(pred_opening[t + k], true_opening[t])`. A positive offset means
the prediction lags the truth by `k` frames (`preds[t] == target[t - k]` gives offset `k`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from pmfs.landmarks import LIPS, NUM_LANDMARKS, mouth_opening

__all__ = [
    "FaceLMD",
    "LandmarkDistance",
    "MouthLMD",
    "MouthOpeningSync",
    "Region",
    "VelocityLMD",
    "face_lmd",
    "landmark_distance",
    "mouth_lmd",
    "mouth_opening_sync",
    "offset_correlations",
    "velocity_lmd",
]

Region = Literal["mouth", "face"]

# Points of each region; `None` means all 68.
_REGION_INDICES: dict[str, np.ndarray | None] = {"mouth": LIPS, "face": None}

# A clip whose opening has less variance than this (normalized units²) counts as constant: its
# correlation is reported as 0 rather than NaN, so that one still clip does not poison the mean.
_VARIANCE_FLOOR = 1e-12


# ----------------------------------------------------------------------------------------------
# Functional core
# ----------------------------------------------------------------------------------------------


def _check_pair(preds: Tensor, target: Tensor, ndims: tuple[int, ...]) -> None:
    """Check that `preds`, `target` are equal-shaped `(..., 68, 2)` tensors of an allowed rank."""
    for name, value in (("preds", preds), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.ndim not in ndims or tuple(value.shape[-2:]) != (NUM_LANDMARKS, 2):
            layouts = " or ".join(("(B, T, 68, 2)" if n == 4 else "(T, 68, 2)") for n in ndims)
            raise ValueError(f"{name} must have shape {layouts}, got {tuple(value.shape)}")
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(target.shape)}"
        )


def _check_region(region: str) -> np.ndarray | None:
    if region not in _REGION_INDICES:
        raise ValueError(f"region must be one of {sorted(_REGION_INDICES)}, got {region!r}")
    return _REGION_INDICES[region]


def _check_crop_size(crop_size: int) -> None:
    if not isinstance(crop_size, int) or crop_size <= 0:
        raise ValueError(f"crop_size must be a positive int (pixels), got {crop_size!r}")


def _landmark_distance_update(
    preds: Tensor, target: Tensor, region: Region, velocity: bool, crop_size: int
) -> tuple[Tensor, int]:
    """Sum of per-point pixel distances and their count, the state increments of an LMD.

    Args:
        preds: (B, T, 68, 2) predicted landmarks, normalized [-1, 1] `(x, y)`.
        target: (B, T, 68, 2) true landmarks, same convention.
        region: "mouth" (lips 48–67) or "face" (all 68).
        velocity: compare frame-to-frame differences along T instead of positions.
        crop_size: side of the square crop in pixels the distance is reported in.

    Returns:
        (summed distance in pixels as a 0-d tensor, number of point distances summed).
    """
    _check_pair(preds, target, ndims=(4,))
    _check_crop_size(crop_size)
    indices = _check_region(region)
    if indices is not None:
        index = torch.as_tensor(indices, device=preds.device)
        preds, target = preds[..., index, :], target[..., index, :]  # (B, T, P, 2)
    if velocity:
        if preds.shape[1] < 2:
            raise ValueError(f"velocity LMD needs T >= 2 frames, got shape {tuple(preds.shape)}")
        preds, target = preds.diff(dim=1), target.diff(dim=1)  # (B, T - 1, P, 2)
    distance = torch.linalg.vector_norm(preds - target, dim=-1)  # (B, T', P)
    return distance.sum() * (crop_size / 2), distance.numel()


def landmark_distance(
    preds: Tensor,
    target: Tensor,
    region: Region = "face",
    velocity: bool = False,
    crop_size: int = 256,
) -> Tensor:
    """Landmark distance (LMD): mean Euclidean distance in pixels over points and frames.

    Args:
        preds: (B, T, 68, 2) predicted landmarks, normalized [-1, 1] `(x, y)`.
        target: (B, T, 68, 2) true landmarks, same convention.
        region: "mouth" (the 20 lip points 48–67, M-LMD) or "face" (all 68, F-LMD).
        velocity: compare frame-to-frame differences `x[:, t + 1] - x[:, t]` (T - 1 per clip).
        crop_size: side in pixels of the square crop; 1 normalized unit is `crop_size / 2` px.

    Returns:
        0-d tensor, the mean distance in pixels.
    """
    total, count = _landmark_distance_update(preds, target, region, velocity, crop_size)
    return total / count


def mouth_lmd(preds: Tensor, target: Tensor, crop_size: int = 256) -> Tensor:
    """M-LMD: `landmark_distance` over the 20 lip points 48–67. Shapes as there."""
    return landmark_distance(preds, target, region="mouth", crop_size=crop_size)


def face_lmd(preds: Tensor, target: Tensor, crop_size: int = 256) -> Tensor:
    """F-LMD: `landmark_distance` over all 68 points. Shapes as there."""
    return landmark_distance(preds, target, region="face", crop_size=crop_size)


def velocity_lmd(
    preds: Tensor, target: Tensor, region: Region = "mouth", crop_size: int = 256
) -> Tensor:
    """Velocity LMD: `landmark_distance` of frame-to-frame differences. Shapes as there."""
    return landmark_distance(preds, target, region=region, velocity=True, crop_size=crop_size)


def _pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation along the last axis, 0 where either series is constant.

    Args:
        x: (..., N) series.
        y: (..., N) series.

    Returns:
        (...,) correlations in [-1, 1].
    """
    x = x - x.mean(dim=-1, keepdim=True)
    y = y - y.mean(dim=-1, keepdim=True)
    var_x, var_y = (x * x).mean(dim=-1), (y * y).mean(dim=-1)
    cov = (x * y).mean(dim=-1)
    valid = (var_x > _VARIANCE_FLOOR) & (var_y > _VARIANCE_FLOOR)
    denom = torch.where(valid, var_x * var_y, torch.ones_like(var_x)).sqrt()
    return torch.where(valid, cov / denom, torch.zeros_like(cov)).clamp(-1.0, 1.0)


def _check_offset(max_offset: int, num_frames: int | None = None) -> None:
    if not isinstance(max_offset, int) or max_offset < 0:
        raise ValueError(f"max_offset must be a non-negative int (frames), got {max_offset!r}")
    if num_frames is not None and num_frames < 2 * max_offset + 2:
        raise ValueError(
            f"a clip of T={num_frames} frames is too short for max_offset={max_offset}: every "
            f"offset must leave at least {max_offset + 2} overlapping frames, so T must be >= "
            f"{2 * max_offset + 2}; pass longer clips or a smaller max_offset"
        )


def offset_correlations(pred_opening: Tensor, true_opening: Tensor, max_offset: int) -> Tensor:
    """Correlation of predicted and true mouth opening at each offset `k` in ±`max_offset`.

    At offset `k` the series compared are `pred_opening[t + k]` and `true_opening[t]` over the
    `T - |k|` frames where both exist.

    Args:
        pred_opening: (B, T) predicted mouth opening per frame.
        true_opening: (B, T) true mouth opening per frame.
        max_offset: largest |k| in frames; T must be >= 2 * max_offset + 2.

    Returns:
        (B, 2 * max_offset + 1) correlations, column `j` for offset `k = j - max_offset`.
    """
    if pred_opening.ndim != 2 or pred_opening.shape != true_opening.shape:
        raise ValueError(
            "pred_opening and true_opening must both have shape (B, T), got "
            f"{tuple(pred_opening.shape)} and {tuple(true_opening.shape)}"
        )
    _check_offset(max_offset, pred_opening.shape[-1])
    columns = []
    for k in range(-max_offset, max_offset + 1):
        if k >= 0:
            pred, true = pred_opening[:, k:], true_opening[:, : true_opening.shape[1] - k]
        else:
            pred, true = pred_opening[:, :k], true_opening[:, -k:]
        columns.append(_pearson(pred, true))  # (B,)
    return torch.stack(columns, dim=-1)


def mouth_opening_sync(preds: Tensor, target: Tensor, max_offset: int = 5) -> tuple[Tensor, Tensor]:
    """Per clip, mouth-opening correlation at offset 0 and the offset that maximises it.

    Args:
        preds: (B, T, 68, 2) or (T, 68, 2) predicted landmarks of whole clips, any coordinate
            unit (correlation is scale-free).
        target: true landmarks, same shape and unit.
        max_offset: offsets searched are `-max_offset..max_offset` frames; T >= 2·max_offset + 2.

    Returns:
        `(corr, offset)`: (B,) float correlation at offset 0 and (B,) int64 best offset in frames,
        positive when the prediction lags the truth. Ties go to the smallest |offset|.
    """
    _check_pair(preds, target, ndims=(3, 4))
    if preds.ndim == 3:
        preds, target = preds.unsqueeze(0), target.unsqueeze(0)  # (1, T, 68, 2)
    corr = offset_correlations(mouth_opening(preds), mouth_opening(target), max_offset)
    # argmax returns the first maximum: order the candidates 0, -1, 1, -2, 2, ... for the tie rule.
    order = sorted(range(-max_offset, max_offset + 1), key=lambda k: (abs(k), k))
    offsets = torch.tensor(order, device=corr.device)  # (2K + 1,)
    best = corr[:, offsets + max_offset].argmax(dim=-1)  # (B,)
    return corr[:, max_offset], offsets[best]


# ----------------------------------------------------------------------------------------------
# torchmetrics classes
# ----------------------------------------------------------------------------------------------


class LandmarkDistance(Metric):
    """Mean landmark distance in pixels, accumulated over batches (see `landmark_distance`).

    `update(preds, target)` takes (B, T, 68, 2) normalized landmarks; `compute()` returns the mean
    over every point distance seen since the last reset, on all ranks under DDP.

    Args:
        region: "mouth" (lips 48–67) or "face" (all 68).
        velocity: compare frame-to-frame differences along T instead of positions.
        crop_size: side in pixels of the square crop the distance is reported in.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(
        self, region: Region = "face", velocity: bool = False, crop_size: int = 256
    ) -> None:
        super().__init__()
        _check_region(region)
        _check_crop_size(crop_size)
        self.region: Region = region
        self.velocity = velocity
        self.crop_size = crop_size
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch: `preds`, `target` (B, T, 68, 2) in normalized [-1, 1] coordinates."""
        total, count = _landmark_distance_update(
            preds, target, self.region, self.velocity, self.crop_size
        )
        self.total += total.to(self.total.dtype)
        self.count += count

    def compute(self) -> Tensor:
        """Mean distance in pixels (0-d); NaN with a warning from torchmetrics if never updated."""
        return self.total / self.count


class MouthLMD(LandmarkDistance):
    """M-LMD: mean distance in pixels over the 20 lip points 48–67.

    Args:
        crop_size: side in pixels of the square crop the distance is reported in.
    """

    def __init__(self, crop_size: int = 256) -> None:
        super().__init__(region="mouth", velocity=False, crop_size=crop_size)


class FaceLMD(LandmarkDistance):
    """F-LMD: mean distance in pixels over all 68 points.

    Args:
        crop_size: side in pixels of the square crop the distance is reported in.
    """

    def __init__(self, crop_size: int = 256) -> None:
        super().__init__(region="face", velocity=False, crop_size=crop_size)


class VelocityLMD(LandmarkDistance):
    """Velocity LMD: mean distance in pixels between frame-to-frame landmark differences.

    Args:
        region: "mouth" (lips 48–67, default) or "face" (all 68).
        crop_size: side in pixels of the square crop the distance is reported in.
    """

    def __init__(self, region: Region = "mouth", crop_size: int = 256) -> None:
        super().__init__(region=region, velocity=True, crop_size=crop_size)


class MouthOpeningSync(Metric):
    """Mouth-opening sync over whole clips: correlation at offset 0 and the best A/V offset.

    `update(preds, target)` takes one clip (T, 68, 2) or a batch of equal-length clips
    (B, T, 68, 2), T >= 2·max_offset + 2. `compute()` averages over clips and returns a dict:

    - `corr`: mean Pearson correlation of predicted and true mouth opening at offset 0;
    - `offset`: mean signed best offset in frames (positive: prediction lags the truth);
    - `abs_offset`: mean |best offset| in frames (0 for a perfectly synchronised model).

    Args:
        max_offset: offsets searched are `-max_offset..max_offset` frames.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    corr_sum: Tensor
    offset_sum: Tensor
    abs_offset_sum: Tensor
    clips: Tensor

    def __init__(self, max_offset: int = 5) -> None:
        super().__init__()
        _check_offset(max_offset)
        self.max_offset = max_offset
        self.add_state("corr_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        for name in ("offset_sum", "abs_offset_sum", "clips"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add clips: `preds`, `target` (T, 68, 2) or (B, T, 68, 2), same coordinate unit."""
        corr, offset = mouth_opening_sync(preds.detach(), target.detach(), self.max_offset)
        self.corr_sum += corr.sum().to(self.corr_sum.dtype)
        self.offset_sum += offset.sum()
        self.abs_offset_sum += offset.abs().sum()
        self.clips += corr.numel()

    def compute(self) -> dict[str, Tensor]:
        """Means over all clips seen: {"corr", "offset", "abs_offset"}, each a 0-d float tensor."""
        return {
            "corr": self.corr_sum / self.clips,
            "offset": self.offset_sum / self.clips,
            "abs_offset": self.abs_offset_sum / self.clips,
        }
