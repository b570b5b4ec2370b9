"""Issue 15: the renderer's network at a working size, its maps applied at the output size.

The mechanism, on random-weight networks: the same weights render 64², 128² and 256² frames with
the network's features at the working size; the convolution FLOPs do not grow with the output
size; where α = 1 the output is the references' own full-size pixels (a 1-pixel checkerboard
survives, which no upsampling of a 64² image can make); the detail gain transfers the merged
references' high frequencies into the decoded RGB.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pmfs.networks import FaceRendererNet, renderer_flops
from pmfs.networks.renderer_blocks import guided_upsample, resize

WORKING = 32


def _net(working_size: int | None = WORKING) -> FaceRendererNet:
    torch.manual_seed(0)
    return FaceRendererNet(
        window=3, channels=8, levels=3, max_channels=32, res_blocks=1, working_size=working_size
    ).eval()


def _render(net: FaceRendererNet, size: int, frames: torch.Tensor | None = None) -> torch.Tensor:
    h = net.input_size(size)
    g = torch.Generator().manual_seed(1)
    if frames is None:
        frames = torch.rand(2, 2, 3, size, size, generator=g)
    refs = net.encode_references(frames, torch.rand(2, 2, 1, h, h, generator=g))
    assert [f.shape[-1] for f in refs.features] == [h, h // 2, h // 4, h // 8]
    sketches, target = torch.rand(2, 3, 1, h, h, generator=g), torch.rand(2, 3, h, h, generator=g)
    with torch.no_grad():
        out = net(sketches, target, refs)
    assert out.image.shape == (2, 3, size, size) and out.blend.shape == (2, 1, size, size)
    return out.image


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_one_network_renders_every_output_size(size: int) -> None:
    net = _net()
    assert net.input_size(size) == min(size, WORKING)
    image = _render(net, size)
    assert torch.isfinite(image).all()


def test_the_network_costs_the_same_at_every_output_size() -> None:
    net = _net()
    flops = {size: renderer_flops(net, size=size, k=2, t=3) for size in (64, 128, 256)}
    assert flops[64] == flops[128] == flops[256]  # convolutions run at the working size only
    full = renderer_flops(_net(None), size=256, k=2, t=3)
    assert full["forward"] > 40 * flops[256]["forward"]


def test_where_alpha_is_one_the_output_is_the_references_full_size_pixels() -> None:
    net = _net()
    with torch.no_grad():  # α = sigmoid(30) ≈ 1 everywhere
        net.to_rgb[-1].bias[3] = 30.0  # type: ignore[index]
    size = 128
    checker = ((torch.arange(size)[:, None] + torch.arange(size)) % 2).float()  # 1-pixel period
    frames = checker.expand(2, 2, 3, size, size).contiguous()  # every reference the same
    image = _render(net, size, frames)  # flow heads start at zero: an identity warp
    torch.testing.assert_close(image, frames[:, 0], atol=1e-4, rtol=0)
    blurred = resize(resize(frames[:, 0], WORKING), size)  # what a 32² output upsampled shows
    assert (blurred - frames[:, 0]).abs().mean() > 0.4


def test_the_detail_gain_transfers_the_references_high_frequencies() -> None:
    g = torch.Generator().manual_seed(2)
    merged = torch.rand(1, 3, 64, 64, generator=g)
    merged_small = resize(merged, 16)
    rgb_logits = torch.logit(merged_small.clamp(1e-4, 1 - 1e-4))  # the decoder's RGB = merged
    alpha_zero = torch.full((1, 1, 16, 16), -30.0)  # α ≈ 0: the decoded RGB only
    for gain, expected in ((1.0, merged), (0.0, resize(merged_small, 64))):
        out = torch.cat([rgb_logits, alpha_zero, torch.full((1, 1, 16, 16), gain)], dim=1)
        image, blend = guided_upsample(out, merged, merged_small)
        torch.testing.assert_close(image, expected, atol=1e-4, rtol=0)
        assert blend.max() < 1e-6


def test_an_untrained_gain_is_plain_bilinear_upsampling() -> None:
    net = _net()
    gain = net.to_rgb[-1]
    assert isinstance(gain, torch.nn.Conv2d) and gain.out_channels == 5
    assert not gain.weight[3:].any() and gain.bias is not None and not gain.bias[3:].any()
    assert _net(None).to_rgb[-1].out_channels == 4  # type: ignore[union-attr]


def test_a_working_size_must_fit_the_pyramid() -> None:
    with pytest.raises(ValueError, match="multiple of 2\\^levels = 8"):
        FaceRendererNet(levels=3, working_size=60)
    net = _net()
    refs = net.encode_references(torch.rand(1, 1, 3, 64, 64), torch.rand(1, 1, 1, 32, 32))
    with pytest.raises(ValueError, match="need sketches"):  # sketches at 64², not at 32²
        net(torch.rand(1, 3, 1, 64, 64), torch.rand(1, 3, 32, 32), refs)


def test_gradients_reach_the_flow_through_the_full_size_warp() -> None:
    net = _net().train()
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(1, 2, 3, 128, 128, generator=g)
    refs = net.encode_references(frames, torch.rand(1, 2, 1, WORKING, WORKING, generator=g))
    out = net(torch.rand(1, 3, 1, WORKING, WORKING), torch.rand(1, 3, WORKING, WORKING), refs)
    F.l1_loss(out.image, torch.rand(1, 3, 128, 128, generator=g)).backward()
    assert net.coarse_motion is not None and net.coarse_motion.head.weight.grad is not None
    assert net.coarse_motion.head.weight.grad.abs().sum() > 0


def test_with_a_working_size_the_flow_is_refined_one_level_finer() -> None:
    """Flow and confidence come out at h/2^(L-2) (16² for a 32² network, L = 3) against h/2^(L-1)
    for the paper's renderer; the fine head starts at zero and the loss reaches it."""
    net, full = _net(), _net(None)
    assert net.fine_motion is not None and full.fine_motion is None
    assert not any(p.any() for p in net.fine_motion.head.parameters())
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(1, 2, 3, 128, 128, generator=g)
    refs = net.encode_references(frames, torch.rand(1, 2, 1, 32, 32, generator=g))
    sketches = torch.rand(1, 3, 1, 32, 32, generator=g)
    target = torch.rand(1, 3, 32, 32, generator=g)
    out = net(sketches, target, refs)
    assert out.flow is not None and out.flow.shape == (1, 2, 2, 16, 16)
    assert out.confidence.shape == (1, 2, 1, 16, 16)
    (out.image - frames[:, 0]).square().mean().backward()
    weight = net.fine_motion.head.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    full_refs = full.encode_references(frames, torch.rand(1, 2, 1, 128, 128, generator=g))
    full_out = full(torch.rand(1, 3, 1, 128, 128), torch.rand(1, 3, 128, 128), full_refs)
    assert full_out.flow is not None and full_out.flow.shape[-1] == 128 // 4  # h/2^(L-1)
