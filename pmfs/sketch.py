"""The differentiable sketch renderer: the face's strokes drawn as soft anti-aliased lines.

`render_sketch` draws the strokes of `pmfs.landmarks.POLYLINES` from normalized landmarks
(`pmfs.landmarks` states the coordinate conventions), differentiably and on any device, for
stage 3's sketch input and for gradients from the image loss to landmarks. `render_segments`
draws any straight segments given in pixel coordinates; `stroke_intensity` is the line profile.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from pmfs.landmarks import (
    NUM_LANDMARKS,
    POLYLINES,
    check_landmarks,
    image_size_hw,
    normalized_to_pixels,
)

__all__ = [
    "SketchRenderer",
    "render_segments",
    "render_sketch",
    "sketch_channels",
    "stroke_intensity",
]

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

# Every stroke as (start, end) landmark index pairs, and the stroke (channel) each belongs to.
_SEGMENTS = np.array([seg for line in POLYLINES for seg in line.segments()], dtype=np.int64)
_SEGMENT_GROUP = np.array(
    [group for group, line in enumerate(POLYLINES) for _ in line.segments()], dtype=np.int64
)

# A stroke deposits "ink density" φ(d) on pixels at distance d (pixels) from its segment, and a
# pixel's intensity is 1 - exp(-Σ φ) = 1 - Π (1 - I_s). That union is smooth, stays in [0, 1) and
# its gradient (1 - intensity) needs no division, unlike a product of (1 - I_s) factors that reach
# zero on the line. φ is a Gaussian of peak α lowered by ε and cut at zero,
#     φ(d) = max(α exp(-d² / 2σ²) - ε, 0) = ε expm1(max(log(α / ε) - d² / 2σ², 0)),
# so it is exactly 0 beyond `reach` (≈ 6.7σ, 2.5 px for 1.5-px lines): only tiles within reach
# are evaluated and the result does not depend on the tiling. The expm1 form never makes
# subnormal floats, which slow CPU arithmetic down ~100×.
_PEAK_DENSITY = 5.0  # α: a lone stroke's centre intensity is 1 - e^-5 ≈ 0.993
_DENSITY_FLOOR = 1e-9  # ε
_LOG_RATIO = math.log(_PEAK_DENSITY / _DENSITY_FLOOR)  # (reach / σ)² / 2


def _stroke_sigma(line_width: float) -> float:
    """σ such that a lone stroke's intensity is exactly 0.5 at distance `line_width / 2`."""
    if not line_width > 0:
        raise ValueError(f"line_width must be a positive number of pixels, got {line_width!r}")
    half_exponent = math.log(_PEAK_DENSITY / (math.log(2.0) + _DENSITY_FLOOR))  # φ = log 2
    return line_width / (2.0 * math.sqrt(2.0 * half_exponent))


def stroke_intensity(distance: ArrayT, line_width: float = 1.5) -> ArrayT:
    """Intensity of a lone stroke at `distance` pixels from its segment (the line profile).

    `1 - exp(-φ(d))`: ≈ 0.993 on the line, exactly 0.5 at `line_width / 2`, below 1e-6 at two
    line widths and exactly 0 from ≈ 1.7 line widths on.

    Args:
        distance: (...) distances in pixels, np or torch.
        line_width: full width in pixels at half intensity.

    Returns:
        (...) intensities in [0, 1).
    """
    inv_two_var = 1.0 / (2.0 * _stroke_sigma(line_width) ** 2)
    if isinstance(distance, Tensor):
        excess = (_LOG_RATIO - distance * distance * inv_two_var).clamp_min(0.0)
        return -torch.expm1(-_DENSITY_FLOOR * torch.expm1(excess))
    excess = np.maximum(_LOG_RATIO - distance * distance * inv_two_var, 0.0)
    return -np.expm1(-_DENSITY_FLOOR * np.expm1(excess))


def _segment_sq_distance(px: Tensor, py: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Squared distance of points to segments, broadcasting `px`, `py` against `start[..., 0]`.

    Args:
        px, py: x and y coordinates of the points, broadcastable to the output shape; pass
            them as (..., 1, W) and (..., H, 1) so that only the last few ops run on (..., H, W).
        start, end: (..., 2) segment endpoints, their leading dims broadcastable likewise.
    """
    ax, ay = start[..., 0], start[..., 1]
    abx, aby = end[..., 0] - ax, end[..., 1] - ay
    # A zero-length segment is a point: the clamp keeps t finite, then pins it to an endpoint.
    inv_length_sq = 1.0 / (abx * abx + aby * aby).clamp_min(1e-12)
    apx, apy = px - ax, py - ay
    t = (apx * (abx * inv_length_sq) + apy * (aby * inv_length_sq)).clamp(0.0, 1.0)
    dx = torch.addcmul(apx, t, abx, value=-1.0)
    dy = torch.addcmul(apy, t, aby, value=-1.0)
    return torch.addcmul(dx * dx, dy, dy)


def _active_tiles(
    starts: Tensor, ends: Tensor, height: int, width: int, tile: int, reach: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The (image, segment, tile) triples where a segment can ink a pixel of a tile.

    A tile is kept when its centre is within `reach` + half its diagonal of the segment, so no
    pixel within `reach` of the segment is missed (triangle inequality). Not differentiable,
    and it need not be: it only chooses where the density is evaluated.

    Returns:
        Three (P,) int64 tensors: image index, segment index, tile index (row-major).
    """
    device, dtype = starts.device, starts.dtype
    tiles_y, tiles_x = -(-height // tile), -(-width // tile)
    centre = (tile - 1) / 2.0
    cy = torch.arange(tiles_y, device=device, dtype=dtype) * tile + centre
    cx = torch.arange(tiles_x, device=device, dtype=dtype) * tile + centre
    grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")  # (tiles_y, tiles_x)
    with torch.no_grad():
        dist_sq = _segment_sq_distance(
            grid_x.reshape(1, 1, -1),
            grid_y.reshape(1, 1, -1),
            starts.detach()[..., None, :],
            ends.detach()[..., None, :],
        )  # (M, S, tiles)
        limit = reach + centre * math.sqrt(2.0)
        image, segment, tile_index = torch.nonzero(dist_sq <= limit * limit, as_tuple=True)
    return image, segment, tile_index


def render_segments(
    starts: Tensor,
    ends: Tensor,
    size: int | tuple[int, int],
    line_width: float = 1.5,
    channel: Tensor | None = None,
    num_channels: int = 1,
    *,
    tile_size: int = 16,
) -> Tensor:
    """Draw straight segments given in pixel coordinates as soft anti-aliased lines.

    Each pixel's intensity is `1 - Π_s (1 - stroke_intensity(d_s))` over the segments of its
    channel, `d_s` the distance of the pixel centre to segment s. Work is sparse: the canvas is
    cut into `tile_size`² tiles and a segment is evaluated only on tiles it can reach, so time
    and memory grow with the drawn length, not with (segments × pixels).

    Args:
        starts: (M, S, 2) segment start points, pixel `(x, y)` (see `normalized_to_pixels`).
        ends: (M, S, 2) segment end points.
        size: canvas size, an int (square) or (height, width).
        line_width: full stroke width in pixels at half intensity.
        channel: (S,) int64 output channel of each segment; all in channel 0 if None.
        num_channels: C, the number of output channels.
        tile_size: tile edge in pixels (performance only; the result does not depend on it).

    Returns:
        (M, C, H, W) intensities in [0, 1], same dtype and device as `starts`, differentiable
        with respect to `starts` and `ends`.
    """
    height, width = image_size_hw(size)
    if starts.shape != ends.shape or starts.ndim != 3 or starts.shape[-1] != 2:
        raise ValueError(
            "starts and ends must both be (M, S, 2), "
            f"got {tuple(starts.shape)} and {tuple(ends.shape)}"
        )
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive int, got {tile_size}")
    if channel is None:
        channel = torch.zeros(starts.shape[1], dtype=torch.int64, device=starts.device)
    unit = _stroke_sigma(line_width) * math.sqrt(2.0)  # lengths in units of σ√2: d² = exponent
    image, segment, tile = _active_tiles(
        starts, ends, height, width, tile_size, unit * math.sqrt(_LOG_RATIO)
    )
    tiles_y, tiles_x = -(-height // tile_size), -(-width // tile_size)

    offsets = torch.arange(tile_size, device=starts.device, dtype=starts.dtype)
    px = ((tile % tiles_x) * tile_size).to(starts.dtype)[:, None, None] + offsets  # (P, 1, T)
    py = ((tile // tiles_x) * tile_size).to(starts.dtype)[:, None, None] + offsets[:, None]
    seg_start = starts[image, segment][:, None, None, :] / unit  # (P, 1, 1, 2)
    seg_end = ends[image, segment][:, None, None, :] / unit
    exponent = _segment_sq_distance(px / unit, py / unit, seg_start, seg_end)  # (P, T, T)
    density = torch.expm1((_LOG_RATIO - exponent).clamp_min(0.0))  # φ / ε

    num_tiles = tiles_y * tiles_x
    target = (image * num_channels + channel.to(starts.device)[segment]) * num_tiles + tile
    total = starts.new_zeros(starts.shape[0] * num_channels * num_tiles, tile_size * tile_size)
    total = total.index_add(0, target, density.reshape(-1, tile_size * tile_size))
    total = total.reshape(-1, num_channels, tiles_y, tiles_x, tile_size, tile_size)
    total = total.permute(0, 1, 2, 4, 3, 5).reshape(
        -1, num_channels, tiles_y * tile_size, tiles_x * tile_size
    )  # (M, C, H', W'): tiles back in raster order
    return -torch.expm1(total[..., :height, :width] * -_DENSITY_FLOOR)


def sketch_channels(groups: bool) -> int:
    """Channels of `render_sketch`: one per `POLYLINES` entry if `groups`, else 1."""
    return len(POLYLINES) if groups else 1


def render_sketch(
    landmarks: Tensor,
    size: int | tuple[int, int],
    line_width: float = 1.5,
    groups: bool = False,
    *,
    tile_size: int = 16,
) -> Tensor:
    """Differentiable line drawing of the face's `POLYLINES`.

    Args:
        landmarks: (B, N, 68, 2) normalized `(x, y)` landmarks (any leading dims work); points
            off the canvas are fine, their strokes are clipped.
        size: output size, an int (square) or (height, width).
        line_width: full stroke width in pixels at half intensity.
        groups: one channel per `POLYLINES` entry (in its order) instead of a single channel.
        tile_size: see `render_segments` (performance only).

    Returns:
        (B, N, C, H, W) intensities in [0, 1] (1 = ink), dtype and device of `landmarks`,
        differentiable with respect to them; C = `sketch_channels(groups)`.
    """
    check_landmarks(landmarks)
    if not landmarks.is_floating_point():
        raise ValueError(f"landmarks must be a floating tensor, got {landmarks.dtype}")
    height, width = image_size_hw(size)
    lead = landmarks.shape[:-2]
    pixels = normalized_to_pixels(landmarks.reshape(-1, NUM_LANDMARKS, 2), (height, width))
    segments = torch.from_numpy(_SEGMENTS).to(landmarks.device)
    channel = torch.from_numpy(_SEGMENT_GROUP if groups else np.zeros_like(_SEGMENT_GROUP))
    image = render_segments(
        pixels[:, segments[:, 0]],
        pixels[:, segments[:, 1]],
        (height, width),
        line_width,
        channel.to(landmarks.device),
        sketch_channels(groups),
        tile_size=tile_size,
    )
    return image.reshape(*lead, *image.shape[1:])


class SketchRenderer(nn.Module):
    """`render_sketch` as a module (no parameters), for configs and `nn.Sequential`s.

    Args:
        size: output size, an int (square) or (height, width).
        line_width: full stroke width in pixels at half intensity.
        groups: one channel per `POLYLINES` entry instead of a single channel.
    """

    def __init__(
        self, size: int | tuple[int, int] = 256, line_width: float = 1.5, groups: bool = False
    ) -> None:
        super().__init__()
        self.size = image_size_hw(size)
        _stroke_sigma(line_width)  # validates
        self.line_width = line_width
        self.groups = groups

    @property
    def num_channels(self) -> int:
        """C of the output."""
        return sketch_channels(self.groups)

    def forward(self, landmarks: Tensor) -> Tensor:
        """(B, N, 68, 2) normalized landmarks → (B, N, C, H, W) sketches in [0, 1]."""
        return render_sketch(landmarks, self.size, self.line_width, self.groups)

    def extra_repr(self) -> str:
        return f"size={self.size}, line_width={self.line_width}, groups={self.groups}"
