"""Tests of `pmfs.losses.PerceptualLoss`: value, gradients, freezing, and what checkpoints hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from vgg_weights import random_vgg19_state, write_random_vgg19

from pmfs.losses import PerceptualLoss

LAYERS = ("relu1_1", "relu2_1")


class Holder(nn.Module):
    """A stand-in for a stage: one trainable layer and the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 3, 1)
        self.perceptual = PerceptualLoss(None, LAYERS, (0.5, 2.0))


def test_value_by_hand_and_zero_for_identical_inputs() -> None:
    loss = PerceptualLoss(None, LAYERS, (0.5, 2.0))
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 2, 3, 16, 16, generator=generator)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    fake, real = loss.vgg((pred - mean) / std), loss.vgg((target - mean) / std)
    by_hand = 0.5 * F.l1_loss(fake[0], real[0]) + 2.0 * F.l1_loss(fake[1], real[1])
    torch.testing.assert_close(loss(pred, target), by_hand)
    assert loss(target, target).item() == 0.0
    with pytest.raises(ValueError, match="one weight per layer"):
        PerceptualLoss(None, LAYERS, (1.0,))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        loss(pred[:, :1], target[:, :1])


def test_gradients_reach_pred_only() -> None:
    loss = PerceptualLoss(None, LAYERS, (0.5, 2.0))
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    target = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss.vgg.parameters())


def test_vgg_is_not_in_the_state_dict_but_moves_with_the_module() -> None:
    holder = Holder()
    assert set(holder.state_dict()) == {"head.weight", "head.bias"}
    assert [name for name, _ in holder.named_parameters()] == ["head.weight", "head.bias"]
    fresh = Holder()
    fresh.load_state_dict(holder.state_dict())  # strict: nothing missing, nothing unexpected
    holder.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in holder.perceptual.vgg.parameters())
    pred = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    assert holder.perceptual(pred, pred.flip(-1)).dtype == torch.float64
    holder.train()
    assert holder.perceptual.training and not holder.perceptual.vgg.training
    assert "vgg19" in repr(holder)


def test_random_vgg_is_the_same_in_every_process() -> None:
    torch.manual_seed(3)
    first = PerceptualLoss(None, LAYERS, (1.0, 1.0))
    torch.manual_seed(4)
    second = PerceptualLoss(None, LAYERS, (1.0, 1.0))
    for a, b in zip(first.vgg.parameters(), second.vgg.parameters(), strict=True):
        assert torch.equal(a, b)


def test_imagenet_weights_come_from_torch_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"vgg19-dcbb9e9d\.pth"):
        PerceptualLoss()
    write_random_vgg19(tmp_path, seed=5)
    loss = PerceptualLoss()
    state = random_vgg19_state(seed=5)
    assert torch.equal(loss.vgg.state_dict()["features.28.weight"], state["features.28.weight"])
    pred = torch.rand(1, 3, 16, 16)
    assert loss(pred, pred).item() == 0.0 and loss(pred, 1 - pred).item() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_moves_to_cuda() -> None:
    holder = Holder().cuda()
    assert all(p.is_cuda for p in holder.perceptual.vgg.parameters())
    pred = torch.rand(2, 3, 32, 32, device="cuda", requires_grad=True)
    cpu = Holder().perceptual(pred.detach().cpu(), pred.detach().cpu().flip(-1))
    value = holder.perceptual(pred, pred.detach().flip(-1))
    value.backward()
    assert pred.grad is not None
    torch.testing.assert_close(value.cpu(), cpu, rtol=1e-3, atol=1e-5)
