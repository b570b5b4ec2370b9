"""An anti-aliased polygon rasteriser in numpy, exact at the landmarks' sub-pixel positions.

Pixel convention (that of the cache and `pmfs.landmarks`): the centre of pixel (row i, column j)
is at `(x, y) = (j, i)`, so pixel j covers `[j - 0.5, j + 0.5)`. Polygon vertices are used at
their exact float positions (no rounding to a supersampling grid, unlike PIL's `ImageDraw`).

Coverage is computed per pixel as the mean, over `SUBROWS` horizontal sample lines inside the
pixel, of the exact length of the line's span inside the polygon (non-zero winding rule): along a
line every edge crossing is a step of the winding number, whose integral over each pixel is
accumulated with two scatter-adds and one cumulative sum. Vertically the coverage is sampled at
`SUBROWS` points, horizontally it is exact.

`Canvas` paints colours through coverages onto a float RGB image and accumulates a soft person
(foreground) mask from the layers marked as person.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SUBROWS = 4
"""Sample lines per pixel row."""

Colour = tuple[float, float, float] | np.ndarray


@dataclass
class Coverage:
    """Fractional coverage of a box of pixels.

    Attributes:
        y0: top row of the box.
        x0: left column of the box.
        values: (h, w) float32 coverage in [0, 1].
    """

    y0: int
    x0: int
    values: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1), end-exclusive."""
        return self.y0, self.x0, self.y0 + self.values.shape[0], self.x0 + self.values.shape[1]

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates of the box: (h, 1) y and (1, w) x."""
        h, w = self.values.shape
        return (np.arange(h) + self.y0)[:, None], (np.arange(w) + self.x0)[None, :]

    def feathered(self, radius: int, height: int, width: int) -> Coverage:
        """This coverage blurred by two passes of a (2·radius + 1)² box filter (soft edges).

        The box grows by 2·radius on each side (clipped to the image), so nothing is cut off.
        """
        if radius < 1:
            return self
        grow = 2 * radius
        y0, x0 = max(self.y0 - grow, 0), max(self.x0 - grow, 0)
        y1, x1 = min(self.box[2] + grow, height), min(self.box[3] + grow, width)
        values = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        values[self.y0 - y0 : self.box[2] - y0, self.x0 - x0 : self.box[3] - x0] = self.values
        for axis in (0, 1, 0, 1):
            values = _box_blur(values, radius, axis)
        return Coverage(y0, x0, values)

    def clipped_by(self, other: Coverage | None) -> Coverage | None:
        """The product of two coverages over the intersection of their boxes (None if empty)."""
        if other is None:
            return None
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1, x1 = min(self.box[2], other.box[2]), min(self.box[3], other.box[3])
        if y1 <= y0 or x1 <= x0:
            return None
        a = self.values[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        b = other.values[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
        return Coverage(y0, x0, a * b)


def _box_blur(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over a window of 2·radius + 1 along `axis` (zero outside), same shape."""
    size = 2 * radius + 1
    padded = np.pad(values, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)])
    total = np.cumsum(padded, axis=axis, dtype=np.float32)
    upper = np.take(total, np.arange(size, total.shape[axis]), axis=axis)
    lower = np.take(total, np.arange(0, total.shape[axis] - size), axis=axis)
    return (upper - lower) * np.float32(1.0 / size)


Rings = np.ndarray | Sequence[np.ndarray]
"""One polygon (K, 2) or several rings [(K_i, 2), ...] rasterised together (union)."""


def _edges(rings: Rings) -> tuple[np.ndarray, np.ndarray]:
    """(E, 2) start and (E, 2) end points of the closed rings' edges."""
    if isinstance(rings, np.ndarray):
        points = np.asarray(rings, dtype=np.float64)
        return points, np.concatenate((points[1:], points[:1]))
    parts = [np.asarray(r, dtype=np.float64) for r in rings]
    starts = np.concatenate(parts)
    ends = np.concatenate([np.concatenate((r[1:], r[:1])) for r in parts])
    return starts, ends


def polygon_coverage(rings: Rings, height: int, width: int) -> Coverage | None:
    """Anti-aliased coverage of a polygon or a union of rings (non-zero winding).

    Args:
        rings: (K, 2) vertices `(x, y)` in pixels (the last joins the first), or a sequence of
            such rings, e.g. both eyes at once; orientation does not matter.
        height: image height (rows).
        width: image width (columns).

    Returns:
        The coverage over the rings' pixel box clipped to the image, or None if nothing of
        them is inside the image.
    """
    points, ends = _edges(rings)
    low, high = points.min(axis=0), points.max(axis=0)
    x0, x1 = max(math.floor(low[0] + 0.5), 0), min(math.floor(high[0] + 0.5) + 1, width)
    y0, y1 = max(math.floor(low[1] + 0.5), 0), min(math.floor(high[1] + 0.5) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    h, w = y1 - y0, x1 - x0
    rows = h * SUBROWS
    first = y0 - 0.5 + 0.5 / SUBROWS  # y of sample line 0
    ya, yb = points[:, 1], ends[:, 1]
    # Sample lines crossed by each edge: lo <= line < hi (half-open, so no double counts;
    # horizontal edges cross none).
    la = np.ceil((ya - first) * SUBROWS - 1e-9)
    lb = np.ceil((yb - first) * SUBROWS - 1e-9)
    lo = np.minimum(np.maximum(np.minimum(la, lb), 0), rows).astype(np.int64)
    count = np.minimum(np.maximum(np.maximum(la, lb), 0), rows).astype(np.int64) - lo
    total = int(count.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(count.shape[0]), count)
    line = np.arange(total) + np.repeat(lo - (np.cumsum(count) - count), count)
    dy = yb - ya
    slope = (ends[:, 0] - points[:, 0]) / np.where(dy == 0.0, 1.0, dy)
    u = (points[:, 0] - slope * ya - x0)[edge] + (first + line / SUBROWS) * slope[edge]
    sign = np.sign(dy)[edge]  # winding step of each crossing
    k = np.floor(u + 0.5)  # box pixel holding the crossing
    part = (k + 0.5 - u) * sign  # the step's share inside pixel k
    # Columns: 0 = left of the box, 1..w = pixels, w+1 and w+2 = right of it (dropped).
    stride = w + 3
    column = np.minimum(np.maximum(k, -1), w).astype(np.int64) + 1 + line * stride
    steps = np.bincount(
        np.concatenate((column, column + 1)),
        np.concatenate((part, sign - part)),
        minlength=rows * stride,
    )
    winding = np.cumsum(steps.reshape(rows, stride).astype(np.float32), axis=1)[:, 1 : w + 1]
    np.abs(winding, out=winding)
    np.minimum(winding, 1.0, out=winding)
    values = winding.reshape(h, SUBROWS, w).sum(axis=1)
    values *= np.float32(1.0 / SUBROWS)
    return Coverage(y0, x0, values)


def stroke_outline(points: np.ndarray, half_width: np.ndarray | float) -> np.ndarray:
    """Polygon around a polyline with a half-width per vertex (offset along vertex normals).

    Args:
        points: (K, 2) polyline, K ≥ 2.
        half_width: (K,) or scalar half-widths in pixels; taper them to ~0 for pointed ends.

    Returns:
        (2K, 2) outline: the left side forward, then the right side backward.
    """
    points = np.asarray(points, dtype=np.float64)
    seg = points[1:] - points[:-1]
    seg /= np.maximum(np.hypot(seg[:, 0], seg[:, 1]), 1e-9)[:, None]
    tangent = np.empty_like(points)
    tangent[0], tangent[-1] = seg[0], seg[-1]
    tangent[1:-1] = seg[:-1] + seg[1:]
    scale = np.asarray(half_width, dtype=np.float64) / np.maximum(
        np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9
    )
    normal = np.empty_like(points)
    normal[:, 0] = -tangent[:, 1] * scale
    normal[:, 1] = tangent[:, 0] * scale
    return np.concatenate((points + normal, (points - normal)[::-1]))


def ellipse_outline(
    centre: np.ndarray, radii: tuple[float, float], angle: float = 0.0, num: int = 24
) -> np.ndarray:
    """(num, 2) polygon of an ellipse (radii in pixels, `angle` in radians)."""
    t = _circle(num)
    x, y = radii[0] * t[:, 0], radii[1] * t[:, 1]
    c, s = math.cos(angle), math.sin(angle)
    return np.stack((centre[0] + c * x - s * y, centre[1] + s * x + c * y), axis=1)


@functools.cache
def _circle(num: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, num, endpoint=False)
    return np.stack((np.cos(t), np.sin(t)), axis=1)


def blob_coverage(
    centre: np.ndarray, radii: tuple[float, float], height: int, width: int, angle: float = 0.0
) -> Coverage | None:
    """A soft elliptical spot: exp(-2 d²) for elliptical distance d (0.14 at the radii)."""
    reach = 1.6 * max(radii)
    cx, cy = float(centre[0]), float(centre[1])
    x0, x1 = max(math.floor(cx - reach + 0.5), 0), min(math.floor(cx + reach + 0.5) + 1, width)
    y0, y1 = max(math.floor(cy - reach + 0.5), 0), min(math.floor(cy + reach + 0.5) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    ys = np.arange(y0 - cy, y1 - cy, dtype=np.float32)[:, None]
    xs = np.arange(x0 - cx, x1 - cx, dtype=np.float32)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = (c * xs + s * ys) * np.float32(1.0 / max(radii[0], 1e-3))
    v = (c * ys - s * xs) * np.float32(1.0 / max(radii[1], 1e-3))
    return Coverage(y0, x0, np.exp(-2.0 * (u * u + v * v)))


class Canvas:
    """A float RGB image being painted, plus the person mask.

    Args:
        background: (H, W, 3) image (any numeric dtype, 0–255) to paint over; it is copied.
    """

    def __init__(self, background: np.ndarray) -> None:
        self.image = np.array(background, dtype=np.float32)
        self.mask = np.zeros(self.image.shape[:2], dtype=np.float32)

    @property
    def height(self) -> int:
        """H."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """W."""
        return int(self.image.shape[1])

    def polygon(self, rings: Rings) -> Coverage | None:
        """Coverage of a polygon (or a union of rings) on this canvas."""
        return polygon_coverage(rings, self.height, self.width)

    def paint(
        self, cov: Coverage | None, colour: Colour, alpha: float = 1.0, person: bool = False
    ) -> None:
        """Blend `colour` ((3,) or (h, w, 3) over the coverage's box) in with `alpha · cov`."""
        if cov is None:
            return
        y0, x0, y1, x1 = cov.box
        a = cov.values if alpha == 1.0 else cov.values * np.float32(alpha)
        region = self.image[y0:y1, x0:x1]
        region += a[..., None] * (np.asarray(colour, dtype=np.float32) - region)
        if person:
            m = self.mask[y0:y1, x0:x1]
            m += cov.values * (1.0 - m)

    def fill(
        self,
        rings: Rings,
        colour: Colour,
        alpha: float = 1.0,
        person: bool = False,
        clip: Coverage | None = None,
        feather: int = 0,
    ) -> Coverage | None:
        """Fill a polygon (or a union of rings), optionally soft-edged and only inside `clip`.

        Args:
            rings: the polygon or rings, pixels.
            colour: (3,) colour, or (h, w, 3) over the coverage's box.
            alpha: opacity.
            person: add the coverage to the person mask.
            clip: only paint inside this coverage.
            feather: blur radius of the edges in pixels (0: crisp).

        Returns:
            The coverage painted (feathered and clipped as asked).
        """
        cov = self.polygon(rings)
        if feather and cov is not None:
            cov = cov.feathered(feather, self.height, self.width)
        if clip is not None and cov is not None:
            cov = cov.clipped_by(clip)
        self.paint(cov, colour, alpha, person)
        return cov

    def stroke(
        self,
        lines: np.ndarray | Sequence[np.ndarray],
        half_width: np.ndarray | float,
        colour: Colour,
        alpha: float = 1.0,
        clip: Coverage | None = None,
    ) -> None:
        """Draw polylines of varying half-width (same profile for each), optionally clipped.

        Args:
            lines: (K, 2) polyline or a sequence of polylines of K points each.
            half_width: (K,) or scalar half-widths in pixels.
            colour: (3,) colour.
            alpha: opacity.
            clip: only paint inside this coverage.
        """
        polylines = [lines] if isinstance(lines, np.ndarray) else list(lines)
        self.fill([stroke_outline(p, half_width) for p in polylines], colour, alpha, clip=clip)

    def blob(
        self,
        centre: np.ndarray,
        radii: tuple[float, float],
        colour: Colour,
        alpha: float,
        angle: float = 0.0,
        clip: Coverage | None = None,
    ) -> None:
        """Paint a soft elliptical spot (shading, highlights), optionally only inside `clip`."""
        cov = blob_coverage(centre, radii, self.height, self.width, angle)
        self.paint(cov if clip is None else cov and cov.clipped_by(clip), colour, alpha)

    def to_uint8(self) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) uint8 mask (0–255), rounded."""
        image = np.clip(self.image + 0.5, 0, 255).astype(np.uint8)
        mask = np.clip(self.mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return image, mask
