"""Tests of `pmfs.losses.gan` against hand computations on tiny discriminator outputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from pmfs.losses import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss


def _outputs(*scales: tuple[list[float], list[float]]) -> list[list[Tensor]]:
    """Per scale: one feature block (1, 1, 1, n) and the logits (1, 1, 1, m)."""
    return [[torch.tensor(feat).view(1, 1, 1, -1), torch.tensor(logits).view(1, 1, 1, -1)]
            for feat, logits in scales]  # fmt: skip


def test_discriminator_hinge_by_hand() -> None:
    real = _outputs(([0.0], [2.0, 0.5]), ([0.0], [-1.0]))
    fake = _outputs(([0.0], [-3.0, 0.0]), ([0.0], [0.5]))
    # scale 0: real relu(1-2)=0, relu(1-0.5)=0.5 → 0.25; fake relu(1-3)=0, relu(1+0)=1 → 0.5
    # scale 1: real relu(1+1)=2; fake relu(1.5)=1.5 → 3.5; mean over scales (0.75 + 3.5) / 2
    assert discriminator_hinge_loss(real, fake).item() == pytest.approx((0.75 + 3.5) / 2)


def test_generator_hinge_by_hand() -> None:
    fake = _outputs(([9.0], [1.0, 3.0]), ([9.0], [-4.0]))
    assert generator_hinge_loss(fake).item() == pytest.approx((-2.0 + 4.0) / 2)


def test_feature_matching_by_hand_and_real_is_constant() -> None:
    real = [
        [torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([0.0]), torch.tensor([7.0])],
        [torch.tensor([4.0], requires_grad=True), torch.tensor([100.0])],
    ]
    fake_leaf = torch.tensor([0.0, 0.0], requires_grad=True)
    fake = [
        [fake_leaf, torch.tensor([3.0]), torch.tensor([-50.0])],  # logits never matched
        [torch.tensor([1.0]), torch.tensor([0.0])],
    ]
    # scale 0: blocks |0-1|,|0-2| → 1.5 and |3-0| → 3, mean 2.25; scale 1: 3; mean 2.625
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(2.625)
    loss.backward()
    assert real[0][0].grad is None and real[1][0].grad is None
    assert fake_leaf.grad is not None
    torch.testing.assert_close(fake_leaf.grad, torch.tensor([-0.125, -0.125]))


def test_gan_losses_check_their_inputs() -> None:
    one = _outputs(([0.0], [0.0]))
    with pytest.raises(ValueError, match="scales"):
        discriminator_hinge_loss(one, one + one)
    with pytest.raises(ValueError, match="blocks"):
        feature_matching_loss(one, [one[0][:1]])
    with pytest.raises(ValueError, match="only logits"):
        feature_matching_loss([one[0][1:]], [one[0][1:]])
    with pytest.raises(ValueError, match="scales"):
        generator_hinge_loss([])
