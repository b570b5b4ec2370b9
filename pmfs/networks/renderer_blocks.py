"""Building blocks of `FaceRendererNet` (`face_renderer.py`): normalised convolutions, residual
blocks, the U-Net's pyramid encoder, the per-reference motion head, and the guided upsampling that
takes the renderer's maps from the working size to the output size.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups where they divide `channels`, else one group (LayerNorm-like)."""
    return nn.GroupNorm(8 if channels % 8 == 0 else 1, channels)


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (stride 1 or 2) → GroupNorm → SiLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        group_norm(out_channels),
        nn.SiLU(),
    )


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(SiLU(GN(conv(SiLU(GN(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            group_norm(channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            group_norm(channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) → (N, C, H, W)."""
        return x + self.body(x)


def level_channels(channels: int, levels: int, max_channels: int) -> list[int]:
    """Channels of pyramid levels 0..levels: `channels·2^l` capped at `max_channels`."""
    return [min(channels * 2**level, max_channels) for level in range(levels + 1)]


class PyramidEncoder(nn.Module):
    """U-Net encoder: a full-resolution conv stem, then `levels` stride-2 stages.

    Args:
        in_channels: input channels.
        widths: channels of levels 0..L (level l at 1/2^l resolution).
    """

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        self.stem = conv_block(in_channels, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(conv_block(c_in, c_out, stride=2), conv_block(c_out, c_out))
            for c_in, c_out in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, C_in, H, W) → per level l: (N, C_l, H/2^l, W/2^l), l = 0..L."""
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features


class MotionHead(nn.Module):
    """Per-reference head over target and reference features: (flow and) confidence logit.

    The first layer is split into a target part, computed once per frame, and a reference part,
    computed per reference: conv(concat(t, r)) = conv_t(t) + conv_r(r).

    Args:
        target_channels: channels of the target features.
        ref_channels: channels of the reference features (+ any extra inputs).
        hidden: hidden channels.
        out_channels: 3 (flow x, flow y, confidence logit) or 1 (confidence logit).
    """

    def __init__(
        self, target_channels: int, ref_channels: int, hidden: int, out_channels: int
    ) -> None:
        super().__init__()
        self.from_target = nn.Conv2d(target_channels, hidden, 3, padding=1)
        self.from_ref = nn.Conv2d(ref_channels, hidden, 3, padding=1, bias=False)
        self.body = nn.Sequential(group_norm(hidden), nn.SiLU(), conv_block(hidden, hidden))
        self.head = nn.Conv2d(hidden, out_channels, 3, padding=1)
        for param in self.head.parameters():  # identity warp, uniform confidence at the start
            nn.init.zeros_(param)

    def forward(self, target: Tensor, ref: Tensor) -> Tensor:
        """(B, C_t, h, w), (B, K, C_r, h, w) → (B, K, out_channels, h, w)."""
        B, K = ref.shape[:2]
        hidden = self.from_target(target)[:, None] + self.from_ref(ref.flatten(0, 1)).unflatten(
            0, (B, K)
        )  # (B, K, hidden, h, w)
        out = self.head(self.body(hidden.flatten(0, 1)))  # (B·K, out, h, w)
        return out.unflatten(0, (B, K))


def resize(x: Tensor, size: int) -> Tensor:
    """(N, C, H, W) → (N, C, size, size): antialiased bilinear when shrinking, bilinear when
    growing, the input itself when the size already matches."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1]
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
    )


def guided_upsample(out: Tensor, merged: Tensor, merged_small: Tensor) -> tuple[Tensor, Tensor]:
    """The renderer's output at the output size from its maps at the working size.

    α and the decoded RGB are smooth where they matter (α is a soft matte; the RGB paints what no
    reference shows), so they are upsampled bilinearly; the merged references are real pixels
    at the output size. A learned per-pixel *detail gain* g transfers the references' high
    frequencies into the decoded RGB — `rgb = up(rgb_h) + up(g) · (merged − up(merged_h))`, a
    guided-filter-like head that costs a few element-wise operations per output pixel instead
    of convolutions (the gain starts at zero: plain bilinear upsampling). The frame is then
    `α · merged + (1 − α) · rgb`, as at full resolution.

    Args:
        out: (B, 5, h, h) logits: RGB (3), blend α (1), and the detail gain (1, linear).
        merged: (B, 3, H, W) the confidence-merged, warped references at the output size.
        merged_small: (B, 3, h, h) the same at the working size (`resize(merged, h)`).

    Returns:
        The (B, 3, H, W) frame and its (B, 1, H, W) α.
    """
    small = torch.cat([torch.sigmoid(out[:, :4]), out[:, 4:5], merged_small], dim=1)
    big = resize(small, merged.shape[-1])  # (B, 8, H, W): one interpolation for every map
    blend = big[:, 3:4]
    rgb = big[:, :3] + big[:, 4:5] * (merged - big[:, 5:8])
    return torch.lerp(rgb, merged, blend), blend


def upsample_motion(motion: Tensor, like: Tensor) -> Tensor:
    """(B, K, C, h, w) motion (flow + confidence logit) → (B, K, C, H', W') bilinearly at the
    size of `like` (..., H', W'); normalized flow needs no rescaling."""
    return F.interpolate(
        motion.flatten(0, 1), size=like.shape[-2:], mode="bilinear", align_corners=False
    ).unflatten(0, motion.shape[:2])
