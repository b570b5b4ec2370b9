"""Stage 3's generator `FaceRendererNet`: shapes, warping, confidence, gradients, FLOPs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pmfs.networks import FaceRendererNet, ReferenceFeatures, RendererNetOutput, renderer_flops
from pmfs.networks.warping import warp

SIZE = 64


def _net(warping: bool = True, window: int = 3, sketch: int = 1) -> FaceRendererNet:
    return FaceRendererNet(
        window=window,
        sketch_channels=sketch,
        channels=8,
        levels=3,
        max_channels=32,
        res_blocks=1,
        warping=warping,
    )


def _inputs(
    batch: int, window: int, sketch: int, k: int, size: int = SIZE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sketches (B, T, S, H, W), masked target (B, 3, H, W), references and their sketches."""
    return (
        torch.rand(batch, window, sketch, size, size),
        torch.rand(batch, 3, size, size),
        torch.rand(batch, k, 3, size, size),
        torch.rand(batch, k, sketch, size, size),
    )


def _randomize_heads(net: FaceRendererNet, std: float = 0.05) -> None:
    """Give the zero-initialised flow/confidence heads non-trivial weights."""
    for head in (net.coarse_motion, net.refine_motion, net.confidence):
        if head is not None:
            for param in head.head.parameters():
                torch.nn.init.normal_(param, std=std)


@pytest.mark.parametrize(
    ("warping", "window", "sketch", "k"),
    [(True, 3, 1, 2), (True, 1, 3, 1), (False, 3, 1, 3), (False, 5, 2, 1)],
)
def test_output_shapes_and_ranges(warping: bool, window: int, sketch: int, k: int) -> None:
    torch.manual_seed(0)
    net = _net(warping, window, sketch)
    _randomize_heads(net)
    sketches, target, frames, ref_sketches = _inputs(2, window, sketch, k)
    refs = net.encode_references(frames, ref_sketches)
    assert [tuple(f.shape) for f in refs.features] == [
        (2, k, 8, 64, 64),
        (2, k, 16, 32, 32),
        (2, k, 32, 16, 16),
        (2, k, 32, 8, 8),
    ]
    out = net(sketches, target, refs)
    assert out.image.shape == (2, 3, SIZE, SIZE)
    assert out.image.min() >= 0 and out.image.max() <= 1
    side = 16 if warping else 8  # the refined flow level vs the coarsest level
    assert out.confidence.shape == (2, k, 1, side, side)
    torch.testing.assert_close(out.confidence.sum(dim=1), torch.ones(2, 1, side, side))
    if warping:
        assert out.flow is not None and out.flow.shape == (2, k, 2, side, side)
        assert out.warped_images is not None and out.warped_images.shape == frames.shape
    else:
        assert out.flow is None and out.warped_images is None
    assert out.blend.shape == (2, 1, SIZE, SIZE)
    assert out.blend.min() >= 0 and out.blend.max() <= 1


@pytest.mark.parametrize("warping", [True, False])
def test_output_blends_the_merged_references_with_the_decoded_rgb(warping: bool) -> None:
    """image = α · merged references + (1 − α) · decoded RGB, α = 0.5 at initialisation; with
    α forced to 1 the frame is the references' confidence-weighted mean (identity flow)."""
    torch.manual_seed(0)
    net = _net(warping, 3, 1)
    sketches, target, frames, ref_sketches = _inputs(2, 3, 1, 2)
    refs = net.encode_references(frames, ref_sketches)
    out = net(sketches, target, refs)
    torch.testing.assert_close(out.blend, torch.full_like(out.blend, 0.5))
    with torch.no_grad():
        net.to_rgb[-1].bias[3] = 40.0  # α → 1
    copied = net(sketches, target, refs).image
    torch.testing.assert_close(copied, frames.mean(dim=1), atol=1e-5, rtol=0)


def test_other_sizes_and_bad_inputs() -> None:
    net = _net()
    for size in (32, 96):
        sketches, target, frames, ref_sketches = _inputs(1, 3, 1, 2, size)
        out = net(sketches, target, net.encode_references(frames, ref_sketches))
        assert out.image.shape == (1, 3, size, size)
    sketches, target, frames, ref_sketches = _inputs(1, 3, 1, 2, 60)  # 60 % 2^3 != 0
    with pytest.raises(ValueError, match="divisible by 2\\^levels"):
        net.encode_references(frames, ref_sketches)
    sketches, target, frames, ref_sketches = _inputs(1, 3, 1, 2)
    refs = net.encode_references(frames, ref_sketches)
    with pytest.raises(ValueError, match="sketches"):
        net(sketches[:, :2], target, refs)
    with pytest.raises(ValueError, match="expand"):
        net(sketches.expand(2, -1, -1, -1, -1), target.expand(2, -1, -1, -1), refs)


@pytest.mark.parametrize("warping", [True, False])
def test_every_parameter_gets_a_gradient(warping: bool) -> None:
    """DDP needs every parameter in the graph; with random heads every gradient is non-zero."""
    torch.manual_seed(0)
    net = _net(warping)
    names = [name for name, _ in net.named_parameters()]
    assert any("motion" in name for name in names) == warping  # no flow modules without warping
    for randomize in (False, True):
        if randomize:
            _randomize_heads(net)
        net.zero_grad(set_to_none=True)
        sketches, target, frames, ref_sketches = _inputs(2, 3, 1, 2)
        out = net(sketches, target, net.encode_references(frames, ref_sketches))
        loss = out.image.mean()
        if out.warped_images is not None:
            loss = loss + out.warped_images.mean()
        loss.backward()
        missing = [name for name, p in net.named_parameters() if p.grad is None]
        assert not missing
        if randomize:
            zero = [name for name, p in net.named_parameters() if p.grad.abs().sum() == 0]  # type: ignore[union-attr]
            assert not zero
            for head in (net.coarse_motion, net.refine_motion):  # the confidence rows learn too
                if head is not None:
                    assert head.head.weight.grad is not None
                    assert head.head.weight.grad[2].abs().sum() > 0


def test_zero_initialised_flow_is_the_identity_warp() -> None:
    torch.manual_seed(0)
    net = _net()
    sketches, target, frames, ref_sketches = _inputs(2, 3, 1, 3)
    out = net(sketches, target, net.encode_references(frames, ref_sketches))
    assert out.flow is not None and out.warped_images is not None
    assert out.flow.abs().max() == 0
    torch.testing.assert_close(out.warped_images, frames, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.confidence, torch.full_like(out.confidence, 1 / 3))


def test_warp_moves_content_by_the_flow() -> None:
    """A flow of +2/W in x (one pixel) samples the right-hand neighbour; border padding."""
    image = torch.rand(1, 2, 3, 16, 16)
    flow = torch.zeros(1, 2, 2, 4, 4)
    flow[:, :, 0] = 2 / 16  # one pixel right, in normalized units
    flow[:, 1, 1] = -4 / 16  # reference 1 also two pixels up
    warped = warp(image, flow)
    torch.testing.assert_close(warped[:, 0, :, :, :-1], image[:, 0, :, :, 1:])
    torch.testing.assert_close(warped[:, 0, :, :, -1], image[:, 0, :, :, -1])  # border
    torch.testing.assert_close(warped[:, 1, :, 2:, :-1], image[:, 1, :, :-2, 1:])
    grid = F.affine_grid(torch.eye(2, 3)[None], [1, 3, 16, 16], align_corners=False)
    grid = grid + torch.tensor([2 / 16, 0.0])  # the same shift through grid_sample directly
    expected = F.grid_sample(image[:, 0], grid, padding_mode="border", align_corners=False)
    torch.testing.assert_close(warped[:, 0], expected)


def test_bicubic_warp_keeps_detail_that_bilinear_blurs() -> None:
    """A half-pixel shift of stripes 4 pixels apart: bilinear averages neighbours and keeps 0.63
    of their contrast, bicubic 0.86; whole-pixel shifts are exact in both; the network samples
    its reference images with its `image_warp`."""
    x = torch.arange(16, dtype=torch.float32)
    image = (0.5 + 0.5 * torch.cos(torch.pi * x / 2 + 0.3)).expand(1, 1, 3, 16, 16)
    flow = torch.zeros(1, 1, 2, 4, 4)
    flow[:, :, 0] = 1 / 16  # half a pixel right
    inner = (..., slice(3, -3), slice(3, -3))  # away from the border
    warped = {mode: warp(image, flow, mode)[inner] for mode in ("bilinear", "bicubic")}
    contrast = {mode: float(w.amax() - w.amin()) for mode, w in warped.items()}
    assert contrast["bilinear"] < 0.7 < 0.8 < contrast["bicubic"], contrast
    flow[:, :, 0] = 2 / 16  # one whole pixel
    torch.testing.assert_close(warp(image, flow, "bicubic")[inner], warp(image, flow)[inner])
    torch.manual_seed(0)
    net = FaceRendererNet(window=3, channels=8, levels=2, max_channels=16, image_warp="bicubic")
    out, frames = _render_with_constant_flow(net, 1 / SIZE)
    assert out.flow is not None and out.warped_images is not None
    torch.testing.assert_close(out.warped_images, warp(frames, out.flow, "bicubic"))


def _render_with_constant_flow(
    net: FaceRendererNet, dx: float
) -> tuple[RendererNetOutput, torch.Tensor]:
    """Render one sample (2 references) with the coarse head's bias set to a flow of `dx`
    (normalized units); the output and the (1, 2, 3, H, W) reference frames."""
    assert net.coarse_motion is not None
    with torch.no_grad():
        net.coarse_motion.head.bias.copy_(torch.tensor([dx, 0.0, 0.0]))  # type: ignore[union-attr]
    sketches, target, frames, ref_sketches = _inputs(1, 3, 1, 2)
    return net(sketches, target, net.encode_references(frames, ref_sketches)), frames


def test_network_flow_warps_the_reference_images() -> None:
    """A constant flow set through the coarse head's bias moves every warped reference."""
    torch.manual_seed(0)
    out, frames = _render_with_constant_flow(_net(), 2 / SIZE)
    assert out.flow is not None and out.warped_images is not None
    torch.testing.assert_close(out.flow[:, :, 0], torch.full_like(out.flow[:, :, 0], 2 / SIZE))
    torch.testing.assert_close(out.warped_images[..., :-1], frames[..., 1:])


def test_references_are_encoded_once_and_expand_to_the_batch() -> None:
    torch.manual_seed(0)
    net = _net().eval()
    _randomize_heads(net)
    calls: list[int] = []
    net.ref_encoder.register_forward_hook(lambda *_: calls.append(1))
    sketches, target, frames, ref_sketches = _inputs(3, 3, 1, 2)
    refs = net.encode_references(frames[:1], ref_sketches[:1])
    expanded = refs.expand(3)
    assert isinstance(expanded, ReferenceFeatures) and refs.expand(1) is refs
    for small, big in zip(refs.features, expanded.features, strict=True):
        assert big.shape[0] == 3 and big.data_ptr() == small.data_ptr() and big.stride(0) == 0
    assert expanded.images.data_ptr() == frames.data_ptr() and expanded.sketches.shape[0] == 3
    with torch.no_grad():
        out = net(sketches, target, expanded)
        repeated = net.encode_references(
            frames[:1].repeat(3, 1, 1, 1, 1), ref_sketches[:1].repeat(3, 1, 1, 1, 1)
        )
    assert len(calls) == 2  # once per `encode_references`, never in `forward`
    with torch.no_grad():
        torch.testing.assert_close(out.image, net(sketches, target, repeated).image)
    with pytest.raises(ValueError, match="batch 1"):
        expanded.expand(6)


def test_renderer_flops_are_positive_and_grow_with_size() -> None:
    net = _net()
    small, large = renderer_flops(net, 32, k=2), renderer_flops(net, 64, k=2, t=3)
    assert set(small) == {"forward", "encode_references"}
    assert all(value > 0 for value in small.values())
    assert large["forward"] > 3 * small["forward"]
    assert large["encode_references"] > 3 * small["encode_references"]
    assert renderer_flops(net, 32, k=4)["encode_references"] == 2 * small["encode_references"]
    with pytest.raises(ValueError, match="window"):
        renderer_flops(net, 32, t=5)
