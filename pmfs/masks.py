"""Region masks of stage 3: polygons rasterised on the device.

Stage 3 hides part of the target frame from the generator (`target_mask`) and, with
`background: keep`, pastes the generated face back into the real frame through a feathered
face-hull mask (`face_hull_mask`). Inference pastes only the lower face (`lower_face_mask`: the
jaw line below the nose) back into the original frame. All are polygons built from the 68
landmarks and rasterised by `polygon_mask`.

Coordinates: landmarks and polygon vertices are normalized `(x, y)` in [-1, 1] over the image
(`grid_sample(align_corners=False)`, see `pmfs.landmarks`); pixel (row i, column j) is tested at
its centre, the normalized point `((2j + 1) / W - 1, (2i + 1) / H - 1)`. Masks are float32 in
[0, 1], on the landmarks' device, and carry no gradient.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from pmfs.landmarks import JAW, LEFT_BROW, OUTER_LIPS, RIGHT_BROW, normalized_to_pixels

__all__ = ["TargetMask", "face_hull_mask", "lower_face_mask", "polygon_mask", "target_mask"]

TargetMask = Literal["lower_half", "content_hull"]

# Face outline: the jaw from the right ear (0) to the left ear (16), then back over the brows
# from the left brow's outer tip (26) to the right brow's outer tip (17).
_FACE_OUTLINE = torch.cat(
    [
        torch.from_numpy(JAW),
        torch.from_numpy(LEFT_BROW).flip(0),
        torch.from_numpy(RIGHT_BROW).flip(0),
    ]
)
# Content outline: the lower jaw 3 → 13, then back over the upper outer lip 54 → 48.
_CONTENT_OUTLINE = torch.cat([torch.arange(3, 14), torch.from_numpy(OUTER_LIPS[:7]).flip(0)])
# Lower face: the jaw from 2 to 14 (the jaw points level with the nose's base and below),
# closed across the nose's base from the left nostril (35) to the right (31).
_LOWER_FACE = torch.cat([torch.arange(2, 15), torch.arange(35, 30, -1)])
_NOSE_TOP, _NOSE_TIP, _CHIN = 27, 30, 8


def _check_polygons(polygons: Tensor, size: int, feather: float) -> None:
    if polygons.ndim != 3 or polygons.shape[-1] != 2 or polygons.shape[1] < 3:
        raise ValueError(
            f"polygons must be (B, P, 2) with P >= 3 vertices, got {tuple(polygons.shape)}"
        )
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0 pixels, got {feather}")


def _check_face(landmarks: Tensor) -> None:
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")


@torch.no_grad()
def polygon_mask(polygons: Tensor, size: int, feather: float = 0.0) -> Tensor:
    """Rasterise closed polygons into soft masks.

    Inside-ness is the even-odd crossing test of each pixel centre (a horizontal ray to +x),
    which for simple polygons equals the winding-number test; vertex order may be either way
    and polygons may be non-convex. With `feather > 0` the edge is a linear ramp of that width
    in pixels centred on the outline: `clamp(0.5 + s / feather, 0, 1)` with `s` the signed
    distance of the pixel centre to the outline (positive inside), so a centre on the outline
    gets 0.5. Work is vectorized over batch and pixels; the only loop is over the P edges.

    Args:
        polygons: (B, P, 2) vertices, normalized `(x, y)`; the last vertex joins the first.
        size: side of the square output in pixels.
        feather: width of the soft edge in pixels (0: hard, 1 where the centre is inside).

    Returns:
        (B, 1, size, size) float32 in [0, 1] on the polygons' device.
    """
    return _rasterise(polygons, size, feather)


def _rasterise(polygons: Tensor, size: int, feather: float, grow: Tensor | None = None) -> Tensor:
    """`polygon_mask`, optionally grown by `grow` (B,) pixels: the outline is moved outward to
    the set of points at that distance (an exact dilation by a disk, corners rounded)."""
    _check_polygons(polygons, size, feather)
    points = normalized_to_pixels(polygons.detach().float(), size)  # pixel centres at integers
    inside, distance = _inside_and_distance(points, size, feather > 0 or grow is not None)
    if distance is None:
        return inside.float()[:, None]
    signed = torch.where(inside, distance, -distance)  # (B, H, W), positive inside
    if grow is not None:
        signed = signed + grow.view(-1, 1, 1)
    if feather == 0:
        return (signed >= 0).float()[:, None]
    return (0.5 + signed / feather).clamp(0.0, 1.0)[:, None]


def _inside_and_distance(
    points: Tensor, size: int, with_distance: bool
) -> tuple[Tensor, Tensor | None]:
    """Crossing test (B, H, W) bool of pixel centres against (B, P, 2) pixel-coordinate
    polygons and, if asked, the (B, H, W) distance in pixels to the nearest edge."""
    grid = torch.arange(size, device=points.device, dtype=torch.float32)
    px, py = grid.view(1, 1, size), grid.view(1, size, 1)  # (1, 1, W), (1, H, 1)
    inside = torch.zeros(points.shape[0], size, size, dtype=torch.bool, device=points.device)
    distance_sq = torch.full_like(inside, float("inf"), dtype=torch.float32)
    ends = points.roll(-1, dims=1)
    for edge in range(points.shape[1]):
        ax, ay = points[:, edge, 0].view(-1, 1, 1), points[:, edge, 1].view(-1, 1, 1)
        bx, by = ends[:, edge, 0].view(-1, 1, 1), ends[:, edge, 1].view(-1, 1, 1)
        straddles = (ay > py) != (by > py)  # (B, H, 1): the edge spans this row
        rise = torch.where(straddles, by - ay, torch.ones_like(by - ay))
        crossing_x = ax + (py - ay) * (bx - ax) / rise  # (B, H, 1)
        inside ^= straddles & (px < crossing_x)
        if with_distance:
            distance_sq = torch.minimum(distance_sq, segment_sq_distance(px, py, ax, ay, bx, by))
    return inside, distance_sq.sqrt() if with_distance else None


def segment_sq_distance(
    px: Tensor, py: Tensor, ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor
) -> Tensor:
    """(B, H, W) squared distance of pixel centres `px` (1, 1, W), `py` (1, H, 1) to the
    segments `a → b`, each coordinate (B, 1, 1)."""
    abx, aby = bx - ax, by - ay
    length_sq = (abx * abx + aby * aby).clamp_min(1e-12)  # a zero-length edge is a point
    apx, apy = px - ax, py - ay
    t = ((apx * abx + apy * aby) / length_sq).clamp(0.0, 1.0)  # (B, H, W)
    dx, dy = apx - t * abx, apy - t * aby
    return dx * dx + dy * dy


def _face_width(landmarks: Tensor) -> Tensor:
    """(B, 1, 1) distance between the jaw's ends (ear to ear): a scale that ignores the mouth."""
    return (landmarks[:, 16] - landmarks[:, 0]).norm(dim=-1).view(-1, 1, 1)


@torch.no_grad()
def face_hull_mask(
    landmarks: Tensor, size: int, feather: float = 4.0, dilate: float = 0.05
) -> Tensor:
    """The face region used to composite the generated face into the real frame.

    The outline is the jaw line (0 → 16) closed over the brows (26 → 17), scaled about its
    vertex centroid by `1 + dilate`. Every one of the 68 landmarks lies inside it: the brows
    and jaw are the outline itself and, once pushed out, sit `dilate` × their distance to the
    centroid inside the edge; eyes, nose and lips are enclosed by the outline.

    Args:
        landmarks: (B, 68, 2) normalized `(x, y)` landmarks of a `size`² image.
        size: side of the square image in pixels.
        feather: width in pixels of the soft edge (see `polygon_mask`).
        dilate: outward push as a share of each vertex's distance to the centroid.

    Returns:
        (B, 1, size, size) float32 mask in [0, 1].
    """
    _check_face(landmarks)
    outline = landmarks.detach()[:, _FACE_OUTLINE.to(landmarks.device)].float()  # (B, 27, 2)
    centre = outline.mean(dim=1, keepdim=True)
    return polygon_mask(centre + (outline - centre) * (1.0 + dilate), size, feather)


@torch.no_grad()
def lower_face_mask(landmarks: Tensor, size: int, feather: float = 0.0) -> Tensor:
    """The lower face: the jaw line (2 → 14) closed across the base of the nose (35 → 31).

    What a talking face changes — lips, chin, the cheeks' lower part — and nothing outside the
    face: hair, background and the neck below the jaw are outside it. With `feather` the soft
    edge lies inside the outline: the mask is 0 outside it and within one pixel inside it, then
    rises to 1 over `feather` pixels. So a paste through this mask, even resampled bilinearly to
    another resolution, leaves every pixel outside the outline untouched.

    Args:
        landmarks: (B, 68, 2) normalized `(x, y)` landmarks of a `size`² image.
        size: side of the square image in pixels.
        feather: width in pixels of the soft edge, inside the outline.

    Returns:
        (B, 1, size, size) float32 mask in [0, 1].
    """
    _check_face(landmarks)
    outline = landmarks.detach()[:, _LOWER_FACE.to(landmarks.device)].float()  # (B, 18, 2)
    if feather == 0:
        return polygon_mask(outline, size)
    inward = torch.full((outline.shape[0],), -1.0 - feather / 2, device=outline.device)
    return _rasterise(outline, size, feather, grow=inward)


@torch.no_grad()
def target_mask(
    landmarks: Tensor,
    size: int,
    kind: TargetMask = "lower_half",
    margin: float = 0.1,
    feather: float = 0.0,
) -> Tensor:
    """Where the target frame is hidden from the generator (1 = hidden).

    `margin` is a share of the face width (the distance between jaw points 0 and 16), so the
    mask follows the face's scale and rotation:

    - "lower_half": a rectangle in the face's own frame (down = nose top 27 → chin 8): from the
      line through the nose tip (30, the nose bridge's lower end) down to `margin` below the
      lowest jaw point, and across the jaw's width plus `margin` on each side. Lips, jaw and
      cheeks are hidden; eyes, brows and the nose above its tip stay visible.
    - "content_hull": the outline of the content points (lower jaw 3 → 13 closed over the upper
      outer lip 54 → 48), dilated by `margin` (every pixel within that distance of the outline
      is hidden too, so every content point has at least that much room on every side).

    Args:
        landmarks: (B, 68, 2) normalized `(x, y)` landmarks of a `size`² image.
        size: side of the square image in pixels.
        kind: "lower_half" or "content_hull".
        margin: room around the content, as a share of the face width.
        feather: width in pixels of the soft edge (see `polygon_mask`).

    Returns:
        (B, 1, size, size) float32 mask in [0, 1].
    """
    _check_face(landmarks)
    points = landmarks.detach().float()
    room = margin * _face_width(points)  # (B, 1, 1) normalized units
    if kind == "lower_half":
        return polygon_mask(_lower_half_polygon(points, room), size, feather)
    if kind == "content_hull":
        outline = points[:, _CONTENT_OUTLINE.to(points.device)]
        return _rasterise(outline, size, feather, grow=room.view(-1) * size / 2)
    raise ValueError(f"target mask kind must be 'lower_half' or 'content_hull', got {kind!r}")


def _lower_half_polygon(points: Tensor, room: Tensor) -> Tensor:
    """(B, 4, 2) corners of the "lower_half" rectangle of (B, 68, 2) landmarks."""
    down = points[:, _CHIN] - points[:, _NOSE_TOP]
    down = down / down.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 2)
    across = torch.stack([down[:, 1], -down[:, 0]], dim=-1)  # (B, 2) ⟂ down
    origin = points[:, _NOSE_TIP]
    local = points - origin[:, None]  # (B, 68, 2)
    jaw_across = (local[:, JAW] * across[:, None]).sum(-1)  # (B, 17)
    jaw_down = (local[:, JAW] * down[:, None]).sum(-1)
    left = jaw_across.amin(dim=1) - room[:, 0, 0]
    right = jaw_across.amax(dim=1) + room[:, 0, 0]
    bottom = jaw_down.amax(dim=1) + room[:, 0, 0]
    top = torch.zeros_like(bottom)
    corners_across = torch.stack([left, right, right, left], dim=1)  # (B, 4)
    corners_down = torch.stack([top, top, bottom, bottom], dim=1)
    return (
        origin[:, None]
        + corners_across[..., None] * across[:, None]
        + corners_down[..., None] * down[:, None]
    )
