"""Shared pieces of the landmark stages: loss weights, targets in the canonical frame, the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import MetricCollection

from pmfs.landmarks import CONTENT_INDICES, from_canonical, to_canonical
from pmfs.metrics import FaceLMD, MouthLMD, VelocityLMD


@dataclass(frozen=True)
class LandmarkLossWeights:
    """Weights of the landmark losses; a weight of 0 means the term is not computed.

    Attributes:
        l1: mean absolute error of the points.
        velocity: mean absolute error of the frame-to-frame differences (needs T > 1).
    """

    l1: float = 1.0
    velocity: float = 0.5

    def __post_init__(self) -> None:
        if self.l1 < 0 or self.velocity < 0:
            raise ValueError(
                f"loss weights must be >= 0, got l1={self.l1}, velocity={self.velocity}"
            )


def canonical_content(landmarks: Tensor) -> Tensor:
    """(..., 68, 2) normalized landmarks → (..., 31, 2) content points in the canonical frame."""
    return to_canonical(landmarks)[0][..., CONTENT_INDICES, :]


def place_content(content: Tensor, landmarks: Tensor) -> Tensor:
    """Put canonical content points into a frame's landmarks, for metrics of stage 1.

    Args:
        content: (..., 31, 2) canonical content points.
        landmarks: (..., 68, 2) normalized landmarks whose canonical frame `content` is in.

    Returns:
        (..., 68, 2) `landmarks` with the content points replaced by `content` mapped back into
        the image through the inverse of the landmarks' own canonical similarity.
    """
    placed = landmarks.clone()
    placed[..., CONTENT_INDICES, :] = from_canonical(content, to_canonical(landmarks)[1])
    return placed


def landmark_metrics(prefix: str, face: bool) -> MetricCollection:
    """M-LMD and mouth velocity LMD (+ F-LMD if `face`), pixels of the 256 crop, keys `prefix…`."""
    metrics = {"m_lmd": MouthLMD(), "v_lmd": VelocityLMD(region="mouth")}
    if face:
        metrics["f_lmd"] = FaceLMD()
    return MetricCollection(metrics, prefix=prefix)  # type: ignore[arg-type]


def landmark_losses(
    pred: Tensor, target: Tensor, weights: LandmarkLossWeights
) -> dict[str, Tensor]:
    """Weighted L1 and velocity losses of point sequences.

    Args:
        pred: (B, T, N, 2) predicted points.
        target: (B, T, N, 2) true points, same frame and unit.
        weights: term weights; a zero weight skips the term.

    Returns:
        `{"loss": total}` plus one unweighted entry per computed term ("l1", "velocity").
    """
    terms: dict[str, Tensor] = {}
    total = pred.new_zeros(())
    if weights.l1 > 0:
        terms["l1"] = (pred - target).abs().mean()
        total = total + weights.l1 * terms["l1"]
    if weights.velocity > 0 and pred.shape[1] > 1:
        velocity = torch.diff(pred, dim=1) - torch.diff(target, dim=1)
        terms["velocity"] = velocity.abs().mean()
        total = total + weights.velocity * terms["velocity"]
    return {"loss": total, **terms}
