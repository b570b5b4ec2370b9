"""`renderer_flops`: the FLOPs of one frame of `FaceRendererNet` (what `pmfs bench infer` prints
beside its frames/s, issue 15)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from pmfs.landmarks import TEMPLATE
from pmfs.networks.face_renderer import FaceRendererNet


def renderer_flops(
    net: FaceRendererNet, size: int = 256, k: int = 3, t: int | None = None
) -> dict[str, int]:
    """FLOPs of one frame (batch 1), counted by `torch.utils.flop_counter.FlopCounterMode`,
    the landmark flow included (template landmarks).

    Args:
        net: the renderer (its device is used).
        size: frame side H = W.
        k: number of references K.
        t: window T; must equal `net.window` (None: `net.window`).

    Returns:
        `{"forward": FLOPs of `forward` with references pre-encoded, "encode_references": FLOPs
        of encoding the K references once}`.
    """
    t = net.window if t is None else t
    if t != net.window:
        raise ValueError(f"t={t} differs from the network's window {net.window}")
    device = next(net.parameters()).device
    h = net.input_size(size)
    frames = torch.rand(1, k, 3, size, size, device=device)
    ref_sketches = torch.rand(1, k, net.sketch_channels, h, h, device=device)
    sketches = torch.rand(1, t, net.sketch_channels, h, h, device=device)
    target = torch.rand(1, 3, h, h, device=device)
    face = torch.from_numpy(TEMPLATE.copy()).to(device)[None]  # (1, 68, 2)
    with torch.no_grad():
        with FlopCounterMode(display=False) as encode:
            refs = net.encode_references(frames, ref_sketches, face.expand(k, 68, 2)[None])
        with FlopCounterMode(display=False) as forward:
            net(sketches, target, refs, face)
    return {
        "forward": forward.get_total_flops(),
        "encode_references": encode.get_total_flops(),
    }
