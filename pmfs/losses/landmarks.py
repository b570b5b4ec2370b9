"""Losses of the landmark stages (1 and 2): L1 of the points and of their frame-to-frame motion."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LandmarkLossWeights", "landmark_losses"]


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
