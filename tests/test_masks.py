"""Tests of `pmfs.masks`: polygon rasterisation against a per-pixel pure-Python reference, and
the face/target masks' coverage properties on the template face and on moved faces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from pmfs.landmarks import (
    CONTENT_INDICES,
    LEFT_EYE,
    RIGHT_EYE,
    normalized_to_pixels,
    pixels_to_normalized,
    template_tensor,
)
from pmfs.masks import face_hull_mask, polygon_mask, target_mask

CONVEX = [(2.3, 1.7), (9.6, 2.2), (10.8, 8.1), (5.2, 10.6), (1.4, 6.9)]  # pixel (x, y)
STAR = [  # non-convex: a 5-pointed star (pixel coordinates, 12² image)
    (5.5 + r * math.cos(a), 5.5 + r * math.sin(a))
    for i in range(10)
    for r, a in [((5.2 if i % 2 == 0 else 2.1), math.pi * i / 5 - math.pi / 2)]
]
ELL = [(1.2, 1.2), (4.6, 1.2), (4.6, 7.4), (9.8, 7.4), (9.8, 10.6), (1.2, 10.6)]  # L shape


def _reference_inside(poly: list[tuple[float, float]], x: float, y: float) -> bool:
    """PNPOLY (W. R. Franklin): even-odd ray casting, one point at a time."""
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        (xi, yi), (xj, yj) = poly[i], poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _reference_distance(poly: list[tuple[float, float]], x: float, y: float) -> float:
    best = math.inf
    for (ax, ay), (bx, by) in zip(poly, poly[1:] + poly[:1], strict=True):
        length_sq = (bx - ax) ** 2 + (by - ay) ** 2
        t = min(1.0, max(0.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length_sq))
        best = min(best, math.hypot(x - ax - t * (bx - ax), y - ay - t * (by - ay)))
    return best


def _reference_mask(poly: list[tuple[float, float]], size: int, feather: float) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    for row in range(size):
        for col in range(size):
            inside = _reference_inside(poly, col, row)
            if feather == 0:
                out[row, col] = float(inside)
            else:
                signed = _reference_distance(poly, col, row) * (1 if inside else -1)
                out[row, col] = min(1.0, max(0.0, 0.5 + signed / feather))
    return out


def _as_normalized(poly: list[tuple[float, float]], size: int) -> Tensor:
    return pixels_to_normalized(torch.tensor(poly, dtype=torch.float32), size)[None]


@pytest.mark.parametrize("name", ["convex", "star", "ell"])
@pytest.mark.parametrize("feather", [0.0, 1.5, 3.0])
@pytest.mark.parametrize("reverse", [False, True])
def test_polygon_mask_matches_reference(name: str, feather: float, reverse: bool) -> None:
    poly = {"convex": CONVEX, "star": STAR, "ell": ELL}[name]
    poly = poly[::-1] if reverse else poly
    mask = polygon_mask(_as_normalized(poly, 12), 12, feather)
    assert mask.shape == (1, 1, 12, 12) and mask.dtype == torch.float32
    expected = _reference_mask(poly, 12, feather)
    np.testing.assert_allclose(mask[0, 0].numpy(), expected, atol=1e-5)
    if feather == 0:
        assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_polygon_mask_is_batched() -> None:
    convex = CONVEX + CONVEX[-1:]  # 6 vertices: the repeated one is a zero-length edge
    polys = torch.cat([_as_normalized(p, 12) for p in (convex, STAR[:6], ELL)])  # (3, 6, 2)
    for feather in (0.0, 2.0):
        batched = polygon_mask(polys, 12, feather)
        for i in range(polys.shape[0]):
            torch.testing.assert_close(batched[i], polygon_mask(polys[i : i + 1], 12, feather)[0])
    np.testing.assert_array_equal(polygon_mask(polys, 12)[0, 0], _reference_mask(CONVEX, 12, 0))


def test_feathered_edge_is_half_on_the_outline_and_monotone() -> None:
    square = [(4.0, 4.0), (11.0, 4.0), (11.0, 11.0), (4.0, 11.0)]  # edges on pixel centres
    mask = polygon_mask(_as_normalized(square, 16), 16, feather=4.0)[0, 0]
    torch.testing.assert_close(mask[5:11, 4], torch.full((6,), 0.5))
    row = mask[7]
    assert torch.all(row[:8].diff() >= 0) and torch.all(row[8:].diff() <= 0)
    assert row[1] == 0.0 and row[7] == 1.0  # 3 px outside, 3 px inside (ramp ±2 px)
    torch.testing.assert_close(row[2:7], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    hard = polygon_mask(_as_normalized(square, 16), 16)[0, 0]
    off_outline = mask != 0.5
    assert torch.equal((mask > 0.5)[off_outline].float(), hard[off_outline])


def test_polygon_mask_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="P >= 3"):
        polygon_mask(torch.zeros(1, 2, 2), 8)
    with pytest.raises(ValueError, match="feather"):
        polygon_mask(torch.zeros(1, 3, 2), 8, feather=-1.0)


# ----------------------------------------------------------------------------------------------
# Face masks
# ----------------------------------------------------------------------------------------------


def _moved_faces() -> Tensor:
    """(7, 68, 2): the template, then rotated (±25°), scaled (0.6–1.1), shifted copies."""
    template = template_tensor()
    faces = [template]
    params = [(25, 1.0, 0.0, 0.0), (-25, 0.9, 0.1, -0.05), (10, 0.6, -0.2, 0.1)]
    params += [(0, 1.1, 0.0, -0.05), (-8, 0.75, 0.15, 0.15), (18, 0.8, -0.1, -0.1)]
    for degrees, scale, dx, dy in params:
        angle = math.radians(degrees)
        rotation = torch.tensor(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )
        faces.append(scale * template @ rotation.T + torch.tensor([dx, dy]))
    return torch.stack(faces)


def _disk_values(mask: Tensor, points: Tensor, radius: float) -> Tensor:
    """(B, N, 2): min and max of `mask` (B, 1, H, W) over the pixel centres (inside the image)
    within `radius` pixels of each of the (B, N, 2) normalized points."""
    size = mask.shape[-1]
    pixels = normalized_to_pixels(points, size)  # (B, N, 2)
    reach = math.ceil(radius) + 1
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float32)
    cx = pixels[..., 0, None, None].floor() + offsets.view(1, 1, 1, -1)  # (B, N, 1, O)
    cy = pixels[..., 1, None, None].floor() + offsets.view(1, 1, -1, 1)  # (B, N, O, 1)
    near = (cx - pixels[..., 0, None, None]) ** 2 + (cy - pixels[..., 1, None, None]) ** 2
    near = (near <= radius * radius) & (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    batch = torch.arange(mask.shape[0]).view(-1, 1, 1, 1)
    values = mask[:, 0][batch, cy.clamp(0, size - 1).long(), cx.clamp(0, size - 1).long()]
    low = torch.where(near, values, torch.inf).flatten(2).amin(-1)
    high = torch.where(near, values, -torch.inf).flatten(2).amax(-1)
    return torch.stack([low, high], dim=-1)


def test_disk_values_reads_the_right_pixels() -> None:
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 5, 9] = 1.0  # row 5, column 9
    point = pixels_to_normalized(torch.tensor([[[9.0, 5.0], [9.0, 7.5]]]), 16)
    assert _disk_values(mask, point, 0.5)[0].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert _disk_values(mask, point, 1.0)[0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert _disk_values(mask, point, 2.6)[0, 1].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("kind", ["lower_half", "content_hull"])
def test_target_mask_covers_content_with_room_and_never_the_eyes(kind: str) -> None:
    faces = _moved_faces()
    size = 128
    mask = target_mask(faces, size, kind)  # type: ignore[arg-type]
    assert mask.shape == (7, 1, size, size) and mask.dtype == torch.float32
    width_px = (faces[:, 16] - faces[:, 0]).norm(dim=-1) * size / 2  # (B,)
    for b in range(faces.shape[0]):
        room = 0.05 * width_px[b].item()  # half the default margin
        content = _disk_values(mask[b : b + 1], faces[b : b + 1, CONTENT_INDICES], room)
        assert torch.all(content[..., 0] == 1.0), f"face {b}: content not covered with room"
        eyes = faces[b : b + 1, np.concatenate([RIGHT_EYE, LEFT_EYE])]
        assert torch.all(_disk_values(mask[b : b + 1], eyes, 2.0)[..., 1] == 0.0), f"face {b}"


def test_lower_half_contains_content_hull() -> None:
    faces = _moved_faces()
    lower = target_mask(faces, 128, "lower_half")
    hull = target_mask(faces, 128, "content_hull")
    assert torch.all(lower.sum((1, 2, 3)) > 1.3 * hull.sum((1, 2, 3)))
    covered = (lower * hull).sum((1, 2, 3)) / hull.sum((1, 2, 3))
    assert torch.all(covered > 0.99), covered


def test_target_mask_follows_the_face() -> None:
    """A shifted face gives the same mask shifted by the same whole number of pixels."""
    face = template_tensor()[None] * 0.8
    shifted = face + 2 * 10 / 128  # 10 pixels right and down
    for kind in ("lower_half", "content_hull"):
        mask = target_mask(face, 128, kind)
        moved = target_mask(shifted, 128, kind)
        torch.testing.assert_close(moved[..., 10:, 10:], mask[..., :-10, :-10])


def test_target_mask_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="content_hull"):
        target_mask(_moved_faces(), 32, "upper_half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(B, 68, 2\)"):
        target_mask(torch.zeros(2, 20, 2), 32)


def test_face_hull_covers_all_landmarks() -> None:
    faces = _moved_faces()
    hard = face_hull_mask(faces, 256, feather=0.0)
    soft = face_hull_mask(faces, 256)
    values = _disk_values(hard, faces, 1.0)
    assert torch.all(values[..., 0] == 1.0)  # every landmark's nearby pixels are inside
    assert torch.all(_disk_values(soft, faces, 0.75)[..., 0] >= 0.5)
    # the corners of the crop are background
    assert torch.all(hard[..., 0, 0] == 0) and torch.all(hard[..., -1, -1] == 0)
    # dilation grows the mask
    assert torch.all(
        face_hull_mask(faces, 256, 0.0, 0.15).sum((1, 2, 3)) > hard.sum((1, 2, 3)) * 1.1
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_masks_on_cuda_match_cpu() -> None:
    faces = _moved_faces()
    for kind in ("lower_half", "content_hull"):
        cpu = target_mask(faces, 64, kind, feather=2.0)
        gpu = target_mask(faces.cuda(), 64, kind, feather=2.0)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
    torch.testing.assert_close(face_hull_mask(faces.cuda(), 64).cpu(), face_hull_mask(faces, 64))
