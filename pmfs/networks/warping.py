"""Backward warping and confidence merging of reference images and features (stage 3).

Convention: flows are normalized offsets `(dx, dy)` in `grid_sample(align_corners=False)` units
([-1, 1] spans the image's outer pixel edges); output pixel p samples the source at p + F(p).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["identity_grid", "merge", "warp"]


def identity_grid(height: int, width: int, like: Tensor) -> Tensor:
    """(1, H, W, 2) pixel-centre coordinates `(x, y)` in [-1, 1] (align_corners=False)."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)[None]


def warp(source: Tensor, flow: Tensor, mode: Literal["bilinear", "bicubic"] = "bilinear") -> Tensor:
    """Backward-warp `source` by a flow of normalized offsets.

    Output pixel p samples `source` at p + flow(p), in `grid_sample(align_corners=False)`
    coordinates (`(x, y)`, [-1, 1] spans the image's outer pixel edges), border padding. The flow
    is resized bilinearly to the source's resolution (normalized offsets are resolution-free).

    Args:
        source: (B, K, C, H, W).
        flow: (B, K, 2, h, w) offsets `(dx, dy)`.
        mode: the sampling kernel. Bilinear averages neighbours at a fractional offset (a
            half-pixel shift halves a one-pixel edge's contrast); bicubic keeps more of an
            image's detail (it may overshoot [0, 1] slightly at edges).

    Returns:
        (B, K, C, H, W) warped source.
    """
    B, K, C, H, W = source.shape
    flow = flow.flatten(0, 1)  # (B·K, 2, h, w)
    if flow.shape[-2:] != (H, W):
        flow = F.interpolate(flow, size=(H, W), mode="bilinear", align_corners=False)
    grid = identity_grid(H, W, flow) + flow.permute(0, 2, 3, 1)  # (B·K, H, W, 2)
    warped = F.grid_sample(
        source.reshape(B * K, C, H, W),
        grid,
        mode=mode,
        padding_mode="border",
        align_corners=False,
    )
    return warped.view(B, K, C, H, W)


def merge(values: Tensor, logits: Tensor) -> Tensor:
    """Softmax-over-K weighted sum: (B, K, C, H, W), (B, K, 1, h, w) logits → (B, C, H, W).

    The weights are computed at the logits' resolution and interpolated bilinearly to the
    values' (a convex combination of weights summing to 1 still sums to 1), then accumulated
    one reference at a time, so no (B, K, C, H, W) product is made.
    """
    H, W = values.shape[-2:]
    weights = logits.softmax(dim=1)  # (B, K, 1, h, w)
    if weights.shape[-2:] != (H, W):
        weights = F.interpolate(
            weights.flatten(1, 2), size=(H, W), mode="bilinear", align_corners=False
        )[:, :, None]  # (B, K, 1, H, W)
    merged = values[:, 0] * weights[:, 0]
    for k in range(1, values.shape[1]):
        merged = torch.addcmul(merged, values[:, k], weights[:, k])
    return merged
