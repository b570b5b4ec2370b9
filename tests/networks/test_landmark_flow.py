"""The landmark flow (`pmfs.networks.landmark_flow`) and `FaceRendererNet`'s flow prior."""

from __future__ import annotations

import pytest
import torch

from pmfs.landmarks import TEMPLATE
from pmfs.networks import FaceRendererNet
from pmfs.networks.landmark_flow import landmark_flow
from pmfs.networks.warping import warp
from pmfs.sketch import render_sketch

SIZE = 64


def _face(batch: int = 1) -> torch.Tensor:
    """(B, 68, 2) the template face at 80 % scale."""
    return (torch.from_numpy(TEMPLATE.copy()) * 0.8).expand(batch, 68, 2).clone()


def test_a_translated_reference_gives_a_constant_flow() -> None:
    target = _face(2)
    shift = torch.tensor([0.1, -0.05])
    refs = torch.stack([target + shift, target - 2 * shift], dim=1)  # (B, 2, 68, 2)
    flow = landmark_flow(target, refs, 16)
    assert flow.shape == (2, 2, 2, 16, 16)
    torch.testing.assert_close(flow[:, 0], shift[None, :, None, None].expand(2, 2, 16, 16))
    torch.testing.assert_close(flow[:, 1], -2 * shift[None, :, None, None].expand(2, 2, 16, 16))


def test_warping_by_the_landmark_flow_moves_a_reference_onto_the_target() -> None:
    """A reference whose mouth is open and shifted: warped by the landmark flow, its sketch
    lands on the target's sketch (backward flow, `grid_sample(align_corners=False)` units)."""
    target = _face()
    ref = target.clone()
    ref[:, 48:68] += torch.tensor([0.04, 0.03])  # lips moved
    ref[:, 57, 1] += 0.05  # lower lip lowered
    sketch_target = render_sketch(target[:, None], SIZE, line_width=2.0)  # (1, 1, 1, H, W)
    sketch_ref = render_sketch(ref[:, None], SIZE, line_width=2.0)
    warped = warp(sketch_ref, landmark_flow(target, ref[:, None], SIZE))
    before = (sketch_ref - sketch_target).abs().mean()
    after = (warped - sketch_target).abs().mean()
    assert after < 0.5 * before, (after, before)


def test_the_network_flow_starts_at_the_landmark_flow() -> None:
    """Zero-initialised motion heads: the flow is exactly the prior; with the prior off (or no
    landmarks) it is the identity, as before."""
    torch.manual_seed(0)
    target = _face(2)
    refs_lm = torch.stack([target + 0.03, target - 0.02], dim=1)  # (B, K, 68, 2)
    sketches = render_sketch(target[:, None].expand(2, 3, 68, 2), SIZE)  # (B, T, 1, H, W)
    ref_sketches = render_sketch(refs_lm, SIZE)
    frames, masked = torch.rand(2, 2, 3, SIZE, SIZE), torch.rand(2, 3, SIZE, SIZE)
    kwargs = {"window": 3, "channels": 8, "levels": 3, "max_channels": 32, "res_blocks": 1}
    net = FaceRendererNet(**kwargs).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        out = net(sketches, masked, net.encode_references(frames, ref_sketches, refs_lm), target)
        bare = net(sketches, masked, net.encode_references(frames, ref_sketches))
    assert out.flow is not None and bare.flow is not None
    size = out.flow.shape[-1]  # the motion's resolution, H / 2^(levels-1)
    torch.testing.assert_close(out.flow, landmark_flow(target, refs_lm, size))
    assert bare.flow.abs().max() == 0
    off = FaceRendererNet(**kwargs, flow_prior=False).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        refs = off.encode_references(frames, ref_sketches, refs_lm)
        flow = off(sketches, masked, refs, target).flow
    assert flow is not None and flow.abs().max() == 0


def test_missing_reference_landmarks_are_named() -> None:
    net = FaceRendererNet(window=1, channels=4, levels=2, max_channels=8, res_blocks=0)
    frames, sketch = torch.rand(1, 1, 3, 32, 32), torch.rand(1, 1, 1, 32, 32)
    refs = net.encode_references(frames, sketch)
    with pytest.raises(ValueError, match="references' landmarks"):
        net(sketch, torch.rand(1, 3, 32, 32), refs, _face())
