"""Tests of `pmfs.losses.image` against hand computations."""

from __future__ import annotations

import pytest
import torch

from pmfs.losses import masked_l1, warp_loss


def test_masked_l1_by_hand() -> None:
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    assert masked_l1(pred, target).item() == pytest.approx(10 / 8)
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])  # (1, 1, 2, 2)
    # channel 0: 1·1 + 0.5·3 = 2.5; channel 1: 0; weight 1.5 per channel → 2.5 / 3
    assert masked_l1(pred, target, mask).item() == pytest.approx(2.5 / 3)
    per_channel = torch.cat([mask, torch.zeros_like(mask)], dim=1)  # (1, 2, 2, 2)
    assert masked_l1(pred, target, per_channel).item() == pytest.approx(2.5 / 1.5)


def test_masked_l1_averages_per_sample() -> None:
    pred = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 3.0)])
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0, 0] = 1.0  # one pixel of error 1
    mask[1] = 1.0  # four pixels of error 3
    # (1 + 3) / 2, not the pooled 13 / 5: each sample counts the same
    assert masked_l1(pred, torch.zeros_like(pred), mask).item() == pytest.approx(2.0)
    # and a batch split in two gives the mean of the halves (as under DDP)
    halves = [
        masked_l1(pred[i : i + 1], torch.zeros_like(pred[:1]), mask[i : i + 1]) for i in (0, 1)
    ]
    assert float(sum(halves)) / 2 == pytest.approx(2.0)


def test_all_zero_mask_gives_zero_and_finite_gradient() -> None:
    pred = torch.rand(2, 3, 4, 4, requires_grad=True)
    loss = masked_l1(pred, torch.rand(2, 3, 4, 4), torch.zeros(2, 1, 4, 4))
    loss.backward()
    assert loss.item() == 0.0
    assert pred.grad is not None and torch.equal(pred.grad, torch.zeros_like(pred))


def test_masked_l1_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        masked_l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="mask"):
        masked_l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.ones(1, 4, 4))


def test_warp_loss_is_the_mean_over_references() -> None:
    generator = torch.Generator().manual_seed(0)
    warped = torch.rand(2, 3, 3, 5, 5, generator=generator)
    target = torch.rand(2, 3, 5, 5, generator=generator)
    mask = (torch.rand(2, 1, 5, 5, generator=generator) > 0.5).float()
    by_hand = sum(masked_l1(warped[:, k], target, mask) for k in range(3)) / 3
    torch.testing.assert_close(warp_loss(warped, target, mask), by_hand)
    torch.testing.assert_close(warp_loss(warped, target), (warped - target[:, None]).abs().mean())
    perfect = target[:, None].repeat(1, 3, 1, 1, 1)
    assert warp_loss(perfect, target, mask).item() == 0.0
    with pytest.raises(ValueError, match=r"\(B, K, 3, H, W\)"):
        warp_loss(warped[:, 0], target)
