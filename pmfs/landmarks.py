# Over 400 lines: one set of conventions; 45 of them are the TEMPLATE table.
"""Landmark conventions (DESIGN §2): the 68-point layout, coordinates, canonical frame, mouth.

The layout is the 68-point iBUG / 300-W one that face-alignment produces. "Right" and "left" are
the subject's: `RIGHT_EYE` (36–41) appears on the image's left in a frontal face.

Coordinates are `(x, y)` in the last axis. Two frames are used:

- *pixels*: pixel index coordinates of an H×W image, the centre of pixel (row i, column j) is at
  `(x, y) = (j, i)`; the image spans `[-0.5, W - 0.5] × [-0.5, H - 0.5]`. The cache stores these.
- *normalized*: `[-1, 1]` over the image, exactly the convention of
  `torch.nn.functional.grid_sample(..., align_corners=False)`: `x_norm = (2 x_px + 1) / W - 1`,
  so -1 and 1 are the outer edges of the border pixels. Batches and models use these.

The *canonical frame* removes head position, size and in-plane rotation: a similarity transform
(Umeyama) maps the stable points of a frame (eye corners, nose) onto `TEMPLATE`, a symmetric mean
frontal face in normalized coordinates of a 256² head crop.

`POLYLINES` are the face's strokes; `pmfs.sketch.render_sketch` draws them as soft anti-aliased
lines, differentiably and on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CONTENT_INDICES",
    "INNER_LIPS",
    "INNER_LIP_PAIRS",
    "JAW",
    "LEFT_BROW",
    "LEFT_EYE",
    "LIPS",
    "MIRROR_INDICES",
    "NOSE_BASE",
    "NOSE_BRIDGE",
    "NUM_LANDMARKS",
    "OUTER_LIPS",
    "POLYLINES",
    "POSE_INDICES",
    "RIGHT_BROW",
    "RIGHT_EYE",
    "STABLE_INDICES",
    "TEMPLATE",
    "Polyline",
    "Similarity",
    "check_landmarks",
    "from_canonical",
    "image_size_hw",
    "mouth_box",
    "mouth_box_mask",
    "mouth_opening",
    "normalized_to_pixels",
    "pixels_to_normalized",
    "template_tensor",
    "to_canonical",
    "umeyama",
]

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

# ----------------------------------------------------------------------------------------------
# Index constants. int64 arrays index np.ndarray and torch.Tensor alike (`x[..., LIPS, :]`).
# ----------------------------------------------------------------------------------------------

NUM_LANDMARKS = 68


def _span(first: int, last: int) -> np.ndarray:
    return np.arange(first, last + 1, dtype=np.int64)


JAW = _span(0, 16)
RIGHT_BROW = _span(17, 21)
LEFT_BROW = _span(22, 26)
NOSE_BRIDGE = _span(27, 30)
NOSE_BASE = _span(31, 35)
RIGHT_EYE = _span(36, 41)
LEFT_EYE = _span(42, 47)
OUTER_LIPS = _span(48, 59)
INNER_LIPS = _span(60, 67)
LIPS = _span(48, 67)

CONTENT_INDICES = np.concatenate([_span(3, 13), LIPS])
"""The 31 audio-driven points: lower jaw 3–13 and the lips 48–67, ascending."""

POSE_INDICES = np.setdiff1d(np.arange(NUM_LANDMARKS, dtype=np.int64), CONTENT_INDICES)
"""The other 37 points (upper jaw, brows, nose, eyes), ascending."""

STABLE_INDICES = np.concatenate(
    [np.array([36, 39, 42, 45], dtype=np.int64), NOSE_BRIDGE, NOSE_BASE]
)
"""Points that move little with expression, used to fit the canonical frame: eye corners
36, 39, 42, 45, nose bridge 27–30 and nose base 31–35."""

INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = ((61, 67), (62, 66), (63, 65))
"""(upper, lower) inner-lip points whose mean distance is the mouth opening."""

MIRROR_INDICES = np.concatenate(
    [
        _span(0, 16)[::-1],
        _span(17, 26)[::-1],
        NOSE_BRIDGE,
        NOSE_BASE[::-1],
        np.array([45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40], dtype=np.int64),
        np.array([54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55], dtype=np.int64),
        np.array([64, 63, 62, 61, 60, 67, 66, 65], dtype=np.int64),
    ]
)
"""Left/right correspondence: a horizontally flipped face has point `i` at `MIRROR_INDICES[i]`."""


class Polyline(NamedTuple):
    """One drawn stroke of the face: consecutive `indices` joined, last to first if `closed`."""

    name: str
    indices: tuple[int, ...]
    closed: bool

    def segments(self) -> list[tuple[int, int]]:
        """The (start, end) landmark index of each straight piece of the stroke."""
        ends = self.indices[1:] + (self.indices[:1] if self.closed else ())
        return list(zip(self.indices, ends, strict=False))


def _polyline(name: str, indices: np.ndarray, closed: bool) -> Polyline:
    return Polyline(name, tuple(int(i) for i in indices), closed)


POLYLINES: tuple[Polyline, ...] = (
    _polyline("jaw", JAW, closed=False),
    _polyline("right_brow", RIGHT_BROW, closed=False),
    _polyline("left_brow", LEFT_BROW, closed=False),
    _polyline("nose_bridge", NOSE_BRIDGE, closed=False),
    _polyline("nose_base", NOSE_BASE, closed=False),
    _polyline("right_eye", RIGHT_EYE, closed=True),
    _polyline("left_eye", LEFT_EYE, closed=True),
    _polyline("outer_lips", OUTER_LIPS, closed=True),
    _polyline("inner_lips", INNER_LIPS, closed=True),
)
"""The strokes of a sketch, in channel order of `pmfs.sketch.render_sketch(..., groups=True)`."""

# ----------------------------------------------------------------------------------------------
# Coordinates
# ----------------------------------------------------------------------------------------------


def image_size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """`size` as (height, width); an int means a square image."""
    dims = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(dims) != 2 or not all(isinstance(d, int | np.integer) and d > 0 for d in dims):
        raise ValueError(f"image size must be a positive int or (height, width), got {size!r}")
    return int(dims[0]), int(dims[1])


def _check_points(points: np.ndarray | Tensor, name: str = "points") -> None:
    if not isinstance(points, np.ndarray | Tensor):
        raise TypeError(f"{name} must be a np.ndarray or torch.Tensor, got {type(points)}")
    if points.ndim < 1 or points.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) in (x, y) order, got {points.shape}")


def check_landmarks(landmarks: np.ndarray | Tensor, name: str = "landmarks") -> None:
    """Raise a `TypeError`/`ValueError` naming `name` unless it is a (..., 68, 2) np/torch array."""
    _check_points(landmarks, name)
    if landmarks.ndim < 2 or landmarks.shape[-2] != NUM_LANDMARKS:
        raise ValueError(f"{name} must have shape (..., 68, 2), got {tuple(landmarks.shape)}")


def _affine_xy(points: ArrayT, scale: tuple[float, float], offset: tuple[float, float]) -> ArrayT:
    """`points * scale + offset` per coordinate, keeping the array type, dtype and device."""
    _check_points(points)
    if isinstance(points, Tensor):
        if not points.is_floating_point():
            points = points.float()
        factor = points.new_tensor(scale)
        shift = points.new_tensor(offset)
        return points * factor + shift
    if not np.issubdtype(points.dtype, np.floating):
        points = points.astype(np.float32)
    return points * np.asarray(scale, points.dtype) + np.asarray(offset, points.dtype)


def pixels_to_normalized(points: ArrayT, size: int | tuple[int, int]) -> ArrayT:
    """Pixel index coordinates → normalized [-1, 1] (`grid_sample(align_corners=False)`).

    Args:
        points: (..., 2) `(x, y)` pixel coordinates, the centre of pixel column j at x = j.
        size: image size, an int (square) or (height, width).

    Returns:
        (..., 2) same type (np/torch), float dtype and device: `x_norm = (2 x + 1) / W - 1`.
    """
    height, width = image_size_hw(size)
    return _affine_xy(points, (2.0 / width, 2.0 / height), (1.0 / width - 1, 1.0 / height - 1))


def normalized_to_pixels(points: ArrayT, size: int | tuple[int, int]) -> ArrayT:
    """Normalized [-1, 1] → pixel index coordinates; the inverse of `pixels_to_normalized`.

    Args:
        points: (..., 2) `(x, y)` normalized coordinates.
        size: image size, an int (square) or (height, width).

    Returns:
        (..., 2) same type, float dtype and device: `x = ((x_norm + 1) W - 1) / 2`.
    """
    height, width = image_size_hw(size)
    return _affine_xy(points, (width / 2.0, height / 2.0), ((width - 1) / 2.0, (height - 1) / 2.0))


# ----------------------------------------------------------------------------------------------
# Template of the canonical frame
# ----------------------------------------------------------------------------------------------

# Derived from the dlib 68-point mean shape published with OpenFace (cmusatyalab/openface,
# `openface/align_dlib.py`, Apache-2.0): made exactly left/right symmetric (averaged with its
# mirror image under MIRROR_INDICES), then scaled and moved so the face is 56 % of the crop wide,
# horizontally centred, with the eye centres 40 % from the top (the chin lands at 86 %, the brows
# at 31 %, as in MEAD's 256² head crops), and rounded to 4 decimals.
# fmt: off
TEMPLATE = np.array(
    [
        [-0.5600, -0.1937], [-0.5573, -0.0447], [-0.5427, +0.1055], [-0.5131, +0.2534],
        [-0.4559, +0.3911], [-0.3671, +0.5120], [-0.2589, +0.6149], [-0.1375, +0.6989],
        [+0.0000, +0.7231], [+0.1375, +0.6989], [+0.2589, +0.6149], [+0.3671, +0.5120],
        [+0.4559, +0.3911], [+0.5131, +0.2534], [+0.5427, +0.1055], [+0.5573, -0.0447],
        [+0.5600, -0.1937], [-0.4438, -0.3048], [-0.3738, -0.3596], [-0.2801, -0.3737],
        [-0.1838, -0.3581], [-0.0924, -0.3193], [+0.0924, -0.3193], [+0.1838, -0.3581],
        [+0.2801, -0.3737], [+0.3738, -0.3596], [+0.4438, -0.3048], [+0.0000, -0.2088],
        [+0.0000, -0.1114], [+0.0000, -0.0140], [+0.0000, +0.0856], [-0.1088, +0.1480],
        [-0.0567, +0.1693], [+0.0000, +0.1875], [+0.0567, +0.1693], [+0.1088, +0.1480],
        [-0.3330, -0.1994], [-0.2746, -0.2339], [-0.2030, -0.2326], [-0.1429, -0.1865],
        [-0.2087, -0.1734], [-0.2785, -0.1743], [+0.1429, -0.1865], [+0.2030, -0.2326],
        [+0.2746, -0.2339], [+0.3330, -0.1994], [+0.2785, -0.1743], [+0.2087, -0.1734],
        [-0.2175, +0.3238], [-0.1385, +0.2918], [-0.0579, +0.2777], [+0.0000, +0.2915],
        [+0.0579, +0.2777], [+0.1385, +0.2918], [+0.2175, +0.3238], [+0.1417, +0.4052],
        [+0.0628, +0.4414], [+0.0000, +0.4480], [-0.0628, +0.4414], [-0.1417, +0.4052],
        [-0.1835, +0.3291], [-0.0585, +0.3256], [+0.0000, +0.3315], [+0.0585, +0.3256],
        [+0.1835, +0.3291], [+0.0596, +0.3674], [+0.0000, +0.3747], [-0.0596, +0.3674],
    ],
    dtype=np.float32,
)
# fmt: on
"""(68, 2) float32: the mean frontal face of the canonical frame, normalized `(x, y)`."""


def template_tensor(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """`TEMPLATE` as a fresh (68, 2) tensor on `device` with `dtype`."""
    return torch.tensor(TEMPLATE, dtype=dtype, device=device)


# ----------------------------------------------------------------------------------------------
# Similarity transforms and the canonical frame
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Similarity:
    """A batch of 2-D similarity transforms `p ↦ s R p + t` (no reflection).

    Attributes:
        scale: (...,) positive scale `s`.
        rotation: (..., 2, 2) rotation matrix `R` (det +1), acting on column vectors `(x, y)`.
        translation: (..., 2) translation `t`.
    """

    scale: Tensor
    rotation: Tensor
    translation: Tensor

    def apply(self, points: Tensor) -> Tensor:
        """Transform points.

        Args:
            points: (..., M, 2) `(x, y)`; the leading dims broadcast against the transform's.

        Returns:
            (..., M, 2) `s R p + t` for every point.
        """
        _check_points(points)
        rotated = points @ self.rotation.transpose(-1, -2)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]

    def inverse(self) -> Similarity:
        """The transform `q ↦ R^T (q - t) / s`, so that `inverse().apply(apply(p)) == p`."""
        inv_scale = 1.0 / self.scale
        inv_rotation = self.rotation.transpose(-1, -2)
        rotated_t = (inv_rotation @ self.translation[..., None])[..., 0]
        return Similarity(inv_scale, inv_rotation, -inv_scale[..., None] * rotated_t)

    def matrix(self) -> Tensor:
        """(..., 2, 3) affine matrix `[s R | t]` acting on homogeneous column vectors."""
        linear = self.scale[..., None, None] * self.rotation
        return torch.cat([linear, self.translation[..., None]], dim=-1)


def umeyama(src: Tensor, dst: Tensor) -> Similarity:
    """Least-squares similarity from `src` to `dst` (Umeyama 1991), batched and reflection-safe.

    Minimises `Σ_n |dst_n - (s R src_n + t)|²` over proper rotations R (det +1). In 2-D the SVD
    of Umeyama's method has the closed form used here: with centred points, `a = Σ src·dst`,
    `b = Σ src × dst`, `R = rot(atan2(b, a))`, `s = hypot(a, b) / Σ |src|²` — no SVD, so it is
    fast on any device and differentiable.

    Args:
        src: (..., N, 2) source points, N ≥ 2, not all equal.
        dst: (..., N, 2) target points, same shape.

    Returns:
        `Similarity` with batch shape (...,) such that `sim.apply(src) ≈ dst`.
    """
    _check_points(src, "src")
    _check_points(dst, "dst")
    if src.shape != dst.shape or src.ndim < 2 or src.shape[-2] < 2:
        raise ValueError(
            f"umeyama needs src and dst of one shape (..., N ≥ 2, 2), got {tuple(src.shape)} "
            f"and {tuple(dst.shape)}"
        )
    src_mean, dst_mean = src.mean(dim=-2), dst.mean(dim=-2)
    xs, xd = src - src_mean[..., None, :], dst - dst_mean[..., None, :]
    dot = (xs * xd).sum(dim=(-1, -2))
    cross = (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0]).sum(dim=-1)
    tiny = torch.finfo(src.dtype).tiny
    norm = torch.sqrt(dot * dot + cross * cross + tiny)  # tiny: finite gradient when degenerate
    cos, sin = dot / norm, cross / norm
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    scale = norm / (xs * xs).sum(dim=(-1, -2)).clamp_min(tiny)
    translation = dst_mean - scale[..., None] * (rotation @ src_mean[..., None])[..., 0]
    return Similarity(scale, rotation, translation)


def to_canonical(landmarks: Tensor) -> tuple[Tensor, Similarity]:
    """Move each frame's landmarks into the canonical frame of `TEMPLATE`.

    Args:
        landmarks: (..., 68, 2) normalized `(x, y)` landmarks (a torch tensor).

    Returns:
        canonical: (..., 68, 2) landmarks after the similarity that best maps their
            `STABLE_INDICES` onto the template's.
        sim: that `Similarity`, batch shape (...,); `from_canonical(canonical, sim)` undoes it.
    """
    check_landmarks(landmarks)
    if not isinstance(landmarks, Tensor):
        raise TypeError("to_canonical takes a torch.Tensor; wrap arrays with torch.from_numpy")
    stable = landmarks[..., STABLE_INDICES, :]
    target = template_tensor(landmarks.device, landmarks.dtype)[STABLE_INDICES]
    sim = umeyama(stable, target.expand_as(stable))
    return sim.apply(landmarks), sim


def from_canonical(points: Tensor, sim: Similarity) -> Tensor:
    """Map canonical-frame points back to the frame `sim` came from (see `to_canonical`).

    Args:
        points: (..., M, 2) canonical `(x, y)` points, any M (e.g. the 31 content points).
        sim: the `Similarity` returned by `to_canonical`, batch shape (...,).

    Returns:
        (..., M, 2) points in the original normalized image coordinates.
    """
    return sim.inverse().apply(points)


# ----------------------------------------------------------------------------------------------
# Mouth opening
# ----------------------------------------------------------------------------------------------

_UPPER_INNER = np.array([upper for upper, _ in INNER_LIP_PAIRS], dtype=np.int64)
_LOWER_INNER = np.array([lower for _, lower in INNER_LIP_PAIRS], dtype=np.int64)


def mouth_opening(landmarks: ArrayT) -> ArrayT:
    """Mean distance of the inner-lip pairs (61, 67), (62, 66), (63, 65).

    Args:
        landmarks: (..., 68, 2) `(x, y)` landmarks, np or torch, in any coordinate unit.

    Returns:
        (...,) opening in the unit of the input (e.g. pixels, or normalized units).
    """
    check_landmarks(landmarks)
    gap = landmarks[..., _UPPER_INNER, :] - landmarks[..., _LOWER_INNER, :]  # (..., 3, 2)
    if isinstance(gap, Tensor):
        return torch.linalg.vector_norm(gap, dim=-1).mean(dim=-1)
    return np.linalg.norm(gap, axis=-1).mean(axis=-1)


def mouth_box(landmarks: Tensor, size: int, margin: float = 0.25, min_side: float = 8.0) -> Tensor:
    """The square box around the lips that mouth-region losses and metrics look at.

    The box is centred on the bounding box of the 20 lip points, its side is the larger of that
    box's sides times `1 + 2·margin` (at least `min_side` pixels, at most `size`), and it is
    shifted, not shrunk, to lie inside the image.

    Args:
        landmarks: (..., 68, 2) normalized `(x, y)` landmarks of a `size`² image.
        size: side of the square image in pixels.
        margin: extra share of the lip box's side on each side.
        min_side: smallest side in pixels (a closed mouth seen from far away still gets a box).

    Returns:
        (..., 4) float pixel *edge* coordinates `(x0, y0, x1, y1)` in `[0, size]` (a pixel
        column j is inside when `x0 <= j + 0.5 <= x1`); no gradient.
    """
    check_landmarks(landmarks)
    lips = normalized_to_pixels(landmarks[..., LIPS, :].detach(), size) + 0.5  # pixel edges
    low, high = lips.amin(dim=-2), lips.amax(dim=-2)  # (..., 2)
    centre = (low + high) / 2
    side = ((high - low).amax(dim=-1, keepdim=True) * (1 + 2 * margin)).clamp(min_side, size)
    start = (centre - side / 2).clamp(min=0.0)
    start = torch.minimum(start, size - side)
    return torch.cat([start, start + side], dim=-1)


def mouth_box_mask(boxes: Tensor, size: int) -> Tensor:
    """Hard masks of boxes from `mouth_box`.

    Args:
        boxes: (B, 4) pixel edge coordinates `(x0, y0, x1, y1)`.
        size: side of the square image.

    Returns:
        (B, 1, size, size) float32 mask, 1 on pixels whose centre lies in the box.
    """
    centres = torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5
    x0, y0, x1, y1 = (boxes[:, i, None].float() for i in range(4))  # (B, 1) each
    inside_x = (centres >= x0) & (centres <= x1)  # (B, W)
    inside_y = (centres >= y0) & (centres <= y1)  # (B, H)
    return (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]
