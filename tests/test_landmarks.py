"""Tests of pmfs.landmarks: index conventions, coordinates, canonical frame, mouth measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pmfs import landmarks as lm
from pmfs.landmarks import (
    CONTENT_INDICES,
    INNER_LIP_PAIRS,
    MIRROR_INDICES,
    NUM_LANDMARKS,
    POLYLINES,
    POSE_INDICES,
    STABLE_INDICES,
    TEMPLATE,
    Similarity,
    from_canonical,
    mouth_box,
    mouth_box_mask,
    mouth_opening,
    normalized_to_pixels,
    pixels_to_normalized,
    to_canonical,
    umeyama,
)

# ----------------------------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------------------------


def _umeyama_svd(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama (1991) as published: SVD of the cross-covariance with the reflection fix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sv) @ d) / (xs**2).sum(1).mean())
    return scale, rotation, mu_d - scale * rotation @ mu_s


def _random_similarity(batch: tuple[int, ...], gen: torch.Generator) -> Similarity:
    f64 = torch.float64
    scale = 0.5 + 1.5 * torch.rand(batch, generator=gen, dtype=f64)
    angle = (torch.rand(batch, generator=gen, dtype=f64) * 2 - 1) * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    return Similarity(scale, rotation, torch.randn((*batch, 2), generator=gen, dtype=f64))


# ----------------------------------------------------------------------------------------------
# Index constants
# ----------------------------------------------------------------------------------------------


def test_groups_match_the_ibug_layout() -> None:
    expected = {
        "JAW": (0, 16),
        "RIGHT_BROW": (17, 21),
        "LEFT_BROW": (22, 26),
        "NOSE_BRIDGE": (27, 30),
        "NOSE_BASE": (31, 35),
        "RIGHT_EYE": (36, 41),
        "LEFT_EYE": (42, 47),
        "OUTER_LIPS": (48, 59),
        "INNER_LIPS": (60, 67),
        "LIPS": (48, 67),
    }
    for name, (first, last) in expected.items():
        assert list(getattr(lm, name)) == list(range(first, last + 1)), name
    assert NUM_LANDMARKS == 68


def test_content_and_pose_split_the_68_points() -> None:
    content, pose = list(CONTENT_INDICES), list(POSE_INDICES)
    assert len(content) == 31
    assert len(pose) == 37
    assert content == [*range(3, 14), *range(48, 68)]
    assert pose == sorted(pose)
    assert not set(content) & set(pose)
    assert set(content) | set(pose) == set(range(68))
    assert CONTENT_INDICES.dtype == np.int64
    assert POSE_INDICES.dtype == np.int64


def test_stable_points_are_eye_corners_and_nose() -> None:
    assert set(STABLE_INDICES.tolist()) == {36, 39, 42, 45, *range(27, 36)}
    assert len(STABLE_INDICES) == 13
    assert set(STABLE_INDICES.tolist()) <= set(POSE_INDICES.tolist())
    assert INNER_LIP_PAIRS == ((61, 67), (62, 66), (63, 65))


def test_polylines_draw_every_landmark_once() -> None:
    drawn = [i for line in POLYLINES for i in line.indices]
    assert sorted(drawn) == list(range(68))
    names = [line.name for line in POLYLINES]
    assert len(set(names)) == len(names) == 9
    closed = {line.name for line in POLYLINES if line.closed}
    assert closed == {"right_eye", "left_eye", "outer_lips", "inner_lips"}
    by_name = {line.name: line for line in POLYLINES}
    assert by_name["outer_lips"].segments()[-1] == (59, 48)
    assert by_name["jaw"].segments()[-1] == (15, 16)
    assert sum(len(line.segments()) for line in POLYLINES) == 16 + 4 + 4 + 3 + 4 + 6 + 6 + 12 + 8


def test_mirror_indices_pair_left_and_right() -> None:
    assert sorted(MIRROR_INDICES.tolist()) == list(range(68))
    assert (MIRROR_INDICES[MIRROR_INDICES] == np.arange(68)).all()
    assert MIRROR_INDICES[36] == 45
    assert MIRROR_INDICES[0] == 16
    assert MIRROR_INDICES[48] == 54
    assert MIRROR_INDICES[62] == 62


# ----------------------------------------------------------------------------------------------
# Coordinates
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("size", [256, (48, 80)])
def test_pixel_normalized_round_trip(kind: str, size: int | tuple[int, int]) -> None:
    points = np.random.default_rng(0).uniform(-20, 300, (3, 68, 2))
    if kind == "numpy":
        norm = pixels_to_normalized(points, size)
        back = normalized_to_pixels(norm, size)
        assert isinstance(norm, np.ndarray)
        assert norm.dtype == np.float64
    else:
        norm_t = pixels_to_normalized(torch.from_numpy(points), size)
        back_t = normalized_to_pixels(norm_t, size)
        assert isinstance(norm_t, torch.Tensor)
        assert norm_t.dtype == torch.float64
        norm, back = norm_t.numpy(), back_t.numpy()
    np.testing.assert_allclose(back, points, atol=1e-9)
    assert not np.allclose(norm, points)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_conversion_matches_align_corners_false(kind: str) -> None:
    height, width = 4, 8  # (x, y): x spans the width
    px = np.array([[-0.5, -0.5], [0.0, 0.0], [width - 0.5, height - 0.5], [3.5, 1.5]])
    expected = np.array([[-1, -1], [-1 + 1 / width, -1 + 1 / height], [1, 1], [0, 0]])
    if kind == "numpy":
        out = pixels_to_normalized(px.astype(np.float32), (height, width))
        assert out.dtype == np.float32
    else:
        out_t = pixels_to_normalized(torch.tensor(px, dtype=torch.float32), (height, width))
        assert out_t.dtype == torch.float32
        out = out_t.numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_integer_pixels_become_float32() -> None:
    assert pixels_to_normalized(np.array([[1, 2]]), 8).dtype == np.float32
    assert pixels_to_normalized(torch.tensor([[1, 2]]), 8).dtype == torch.float32


def test_grid_sample_reads_the_pixel_at_a_converted_point() -> None:
    height, width, row, col = 5, 7, 3, 5
    image = torch.zeros(1, 1, height, width)
    image[0, 0, row, col] = 1.0
    points_px = torch.tensor([[col, row], [col - 0.5, row], [col, row - 1.0]], dtype=torch.float32)
    grid = pixels_to_normalized(points_px, (height, width)).reshape(1, 1, 3, 2)
    sampled = F.grid_sample(image, grid, mode="bilinear", align_corners=False)[0, 0, 0]
    torch.testing.assert_close(sampled, torch.tensor([1.0, 0.5, 0.0]))


def test_conversion_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        pixels_to_normalized(np.zeros((4, 3)), 8)
    with pytest.raises(ValueError, match="image size"):
        normalized_to_pixels(np.zeros((4, 2)), 0)
    with pytest.raises(ValueError, match="image size"):
        normalized_to_pixels(np.zeros((4, 2)), (8, -1))
    with pytest.raises(ValueError, match="image size"):
        normalized_to_pixels(np.zeros((4, 2)), (8, 8, 3))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Template
# ----------------------------------------------------------------------------------------------


def test_template_is_a_symmetric_centred_frontal_face() -> None:
    assert TEMPLATE.shape == (68, 2)
    assert TEMPLATE.dtype == np.float32
    mirrored = TEMPLATE[MIRROR_INDICES] * np.array([-1, 1], dtype=np.float32)
    np.testing.assert_allclose(mirrored, TEMPLATE, atol=1e-6)
    x_min, x_max = TEMPLATE[:, 0].min(), TEMPLATE[:, 0].max()
    assert 0.5 <= x_max - x_min <= 0.6 * 2  # face width within the central 60 % of the crop
    assert x_min == pytest.approx(-x_max)
    eye_line = (TEMPLATE[lm.RIGHT_EYE, 1].mean() + 1) / 2  # fraction from the top
    assert eye_line == pytest.approx(0.40, abs=0.01)
    assert (np.abs(TEMPLATE) < 0.8).all()


def test_template_anatomy_is_ordered_top_to_bottom() -> None:
    def y(group: np.ndarray) -> float:
        return float(TEMPLATE[group, 1].mean())

    assert y(lm.RIGHT_BROW) < y(lm.RIGHT_EYE) < y(lm.NOSE_BASE) < y(lm.LIPS) < TEMPLATE[8, 1]
    assert TEMPLATE[36, 0] < TEMPLATE[39, 0] < 0 < TEMPLATE[42, 0] < TEMPLATE[45, 0]
    assert mouth_opening(TEMPLATE) > 0


# ----------------------------------------------------------------------------------------------
# Umeyama and the canonical frame
# ----------------------------------------------------------------------------------------------


def test_umeyama_recovers_a_known_similarity_batched() -> None:
    gen = torch.Generator().manual_seed(1)
    truth = _random_similarity((3, 4), gen)
    src = torch.randn(3, 4, 10, 2, generator=gen, dtype=torch.float64)
    dst = truth.apply(src)
    sim = umeyama(src, dst)
    assert sim.scale.shape == (3, 4)
    assert sim.rotation.shape == (3, 4, 2, 2)
    assert sim.translation.shape == (3, 4, 2)
    torch.testing.assert_close(sim.scale, truth.scale)
    torch.testing.assert_close(sim.rotation, truth.rotation)
    torch.testing.assert_close(sim.translation, truth.translation)
    torch.testing.assert_close(sim.apply(src), dst)


def test_umeyama_matches_the_svd_reference_on_noisy_points() -> None:
    rng = np.random.default_rng(2)
    src = rng.normal(size=(6, 12, 2))
    dst = 1.7 * src @ np.array([[0.6, -0.8], [0.8, 0.6]]).T + 0.3 + rng.normal(0, 0.2, src.shape)
    dst[-1] = src[-1] * np.array([-1, 1])  # a mirror image: the best *rotation*, not a reflection
    sim = umeyama(torch.from_numpy(src), torch.from_numpy(dst))
    for i in range(len(src)):
        scale, rotation, translation = _umeyama_svd(src[i], dst[i])
        assert sim.scale[i].item() == pytest.approx(scale, rel=1e-9)
        np.testing.assert_allclose(sim.rotation[i].numpy(), rotation, atol=1e-9)
        np.testing.assert_allclose(sim.translation[i].numpy(), translation, atol=1e-9)
    assert torch.linalg.det(sim.rotation) == pytest.approx(1.0)


def test_similarity_inverse_and_matrix() -> None:
    gen = torch.Generator().manual_seed(3)
    sim = _random_similarity((5,), gen)
    points = torch.randn(5, 7, 2, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(sim.inverse().apply(sim.apply(points)), points)
    torch.testing.assert_close(sim.apply(sim.inverse().apply(points)), points)
    homogeneous = torch.cat([points, torch.ones(5, 7, 1, dtype=torch.float64)], -1)
    torch.testing.assert_close(homogeneous @ sim.matrix().transpose(-1, -2), sim.apply(points))


def test_umeyama_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        umeyama(torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        umeyama(torch.zeros(4, 3), torch.zeros(4, 3))


def test_to_canonical_undoes_a_known_pose_and_round_trips() -> None:
    gen = torch.Generator().manual_seed(4)
    face = lm.template_tensor(dtype=torch.float64).expand(2, 3, 68, 2).clone()
    face[..., lm.LIPS, 1] += torch.rand(2, 3, 1, generator=gen, dtype=torch.float64) * 0.1
    pose = _random_similarity((2, 3), gen)
    observed = pose.apply(face)
    canonical, sim = to_canonical(observed)
    torch.testing.assert_close(canonical, face)  # the stable points fit exactly
    torch.testing.assert_close(sim.scale, 1 / pose.scale)
    torch.testing.assert_close(from_canonical(canonical, sim), observed)
    content = canonical[..., CONTENT_INDICES, :]
    torch.testing.assert_close(from_canonical(content, sim), observed[..., CONTENT_INDICES, :])


def test_to_canonical_of_the_template_is_the_identity() -> None:
    canonical, sim = to_canonical(lm.template_tensor())
    torch.testing.assert_close(canonical, lm.template_tensor())
    assert sim.scale.item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(TypeError, match="torch"):
        to_canonical(TEMPLATE)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Mouth opening and mouth box
# ----------------------------------------------------------------------------------------------


def test_mouth_opening_of_a_constructed_face() -> None:
    face = TEMPLATE.astype(np.float64)
    gaps = [(0.03, 0.04), (0.0, 0.2), (-0.06, 0.08)]
    for (upper, lower), gap in zip(INNER_LIP_PAIRS, gaps, strict=True):
        face[lower] = face[upper] + gap  # distances 0.05, 0.2, 0.1
    assert mouth_opening(face) == pytest.approx((0.05 + 0.2 + 0.1) / 3)
    batch = np.stack([face, TEMPLATE, face * 2])[None].repeat(2, 0)  # (2, 3, 68, 2)
    expected = np.array([0.35 / 3, float(mouth_opening(TEMPLATE)), 0.7 / 3])
    np.testing.assert_allclose(mouth_opening(batch), np.stack([expected, expected]))
    torch.testing.assert_close(
        mouth_opening(torch.from_numpy(batch)), torch.from_numpy(mouth_opening(batch))
    )


def test_closed_mouth_has_zero_opening_and_finite_gradient() -> None:
    face = lm.template_tensor()
    face[[67, 66, 65]] = face[[61, 62, 63]]
    face.requires_grad_(True)
    opening = mouth_opening(face)
    opening.backward()
    assert opening.item() == 0.0
    assert face.grad is not None
    assert torch.isfinite(face.grad).all()


def test_mouth_box_is_a_square_around_the_lips_inside_the_image() -> None:
    face = torch.from_numpy(TEMPLATE.copy())[None]  # (1, 68, 2)
    box = mouth_box(face, 64, margin=0.25)[0]
    lips_px = normalized_to_pixels(face[0, 48:68], 64) + 0.5
    assert box[2] - box[0] == pytest.approx(float(box[3] - box[1]))
    assert (lips_px[:, 0] >= box[0]).all() and (lips_px[:, 0] <= box[2]).all()
    assert (lips_px[:, 1] >= box[1]).all() and (lips_px[:, 1] <= box[3]).all()
    width = float(lips_px[:, 0].max() - lips_px[:, 0].min())
    assert float(box[2] - box[0]) == pytest.approx(1.5 * width, rel=1e-5)
    # A mouth at the image's corner is shifted inside, not shrunk.
    corner = face.clone()
    corner[..., 0] += 1.0 - float(face[0, 48:68, 0].max())
    moved = mouth_box(corner, 64)[0]
    assert float(moved[2]) == pytest.approx(64.0) and float(moved[2] - moved[0]) == pytest.approx(
        float(box[2] - box[0])
    )
    mask = mouth_box_mask(torch.stack([box, moved]), 64)
    assert mask.shape == (2, 1, 64, 64)
    side = round(float(box[2] - box[0]))
    assert abs(float(mask[0].sum()) - side * side) <= 2 * side + 1
    assert mask[1, 0, :, -1].any() and not mask[1, 0, :, 0].any()
