"""Stage 3's `MultiScalePatchDiscriminator`: shapes per scale, spectral norm, gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from pmfs.networks import MultiScalePatchDiscriminator


@pytest.mark.parametrize(("layers", "scales"), [(3, 2), (2, 3)])
def test_outputs_per_scale_and_block(layers: int, scales: int) -> None:
    disc = MultiScalePatchDiscriminator(in_channels=5, channels=8, layers=layers, scales=scales)
    out = disc(torch.rand(2, 5, 64, 64))
    assert len(out) == scales
    for scale, blocks in enumerate(out):
        assert len(blocks) == layers + 1
        for i, feature in enumerate(blocks[:-1]):
            side = 64 // 2 ** (scale + i + 1)
            assert feature.shape == (2, 8 * 2**i, side, side)
        side = 64 // 2 ** (scale + layers)
        assert blocks[-1].shape == (2, 1, side, side)  # patch logits


def test_gradients_reach_every_parameter_and_the_input() -> None:
    torch.manual_seed(0)
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    x = torch.rand(2, 4, 64, 64, requires_grad=True)
    loss = sum(blocks[-1].mean() for blocks in disc(x))
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_spectral_norm_bounds_every_conv() -> None:
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 * 4 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    disc.train()
    for _ in range(20):  # power iteration converges while training
        disc(torch.rand(1, 4, 32, 32))
    disc.eval()
    with torch.no_grad():
        sigmas = [torch.linalg.matrix_norm(c.weight.flatten(1), ord=2).item() for c in convs]
    assert sigmas == pytest.approx([1.0] * len(convs), abs=0.05)


def test_bad_input_raises() -> None:
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    with pytest.raises(ValueError, match="divisible by 16"):
        disc(torch.rand(1, 4, 40, 40))
    with pytest.raises(ValueError, match="\\(B, 4, H, W\\)"):
        disc(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="layers"):
        MultiScalePatchDiscriminator(layers=0)
