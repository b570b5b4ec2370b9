"""Tests of `pmfs.losses.landmarks` against their definition."""

from __future__ import annotations

import pytest
import torch

from pmfs.losses import LandmarkLossWeights, landmark_losses

B, T = 3, 5


def test_losses_match_definition_and_zero_weight_skips() -> None:
    pred, target = torch.randn(B, T, 31, 2), torch.randn(B, T, 31, 2)
    losses = landmark_losses(pred, target, LandmarkLossWeights(l1=2.0, velocity=0.5))
    l1 = (pred - target).abs().mean()
    velocity = ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])).abs().mean()
    torch.testing.assert_close(losses["loss"], 2.0 * l1 + 0.5 * velocity)
    only_l1 = landmark_losses(pred, target, LandmarkLossWeights(l1=1.0, velocity=0.0))
    assert set(only_l1) == {"loss", "l1"}
    with pytest.raises(ValueError, match=">= 0"):
        LandmarkLossWeights(velocity=-1.0)


def test_velocity_needs_more_than_one_frame() -> None:
    pred, target = torch.randn(B, 1, 68, 2), torch.randn(B, 1, 68, 2)
    losses = landmark_losses(pred, target, LandmarkLossWeights())
    assert set(losses) == {"loss", "l1"}
    torch.testing.assert_close(losses["loss"], (pred - target).abs().mean())
