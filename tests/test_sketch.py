"""Tests of pmfs.sketch: the line profile, the segment and sketch renderers, their gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pmfs import landmarks as lm
from pmfs.landmarks import POLYLINES, normalized_to_pixels
from pmfs.sketch import SketchRenderer, render_segments, render_sketch, stroke_intensity

# ----------------------------------------------------------------------------------------------
# Independent reference
# ----------------------------------------------------------------------------------------------


def _dense_sketch(
    starts: np.ndarray, ends: np.ndarray, height: int, width: int, line_width: float
) -> np.ndarray:
    """Brute force: every pixel centre against every segment, `1 - Π (1 - I_s)`, float64."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    keep = np.ones((height, width))
    for (ax, ay), (bx, by) in zip(starts, ends, strict=True):
        abx, aby = bx - ax, by - ay
        length_sq = abx * abx + aby * aby
        t = np.clip(((xs - ax) * abx + (ys - ay) * aby) / length_sq, 0, 1) if length_sq else 0.0
        distance = np.hypot(xs - (ax + t * abx), ys - (ay + t * aby))
        keep *= 1 - stroke_intensity(distance, line_width)
    return 1 - keep


def _segments_px(
    points_px: np.ndarray, polylines: tuple[lm.Polyline, ...] = POLYLINES
) -> tuple[np.ndarray, np.ndarray]:
    """(S, 2) start and end pixel points of the polylines' segments."""
    pairs = np.array([seg for line in polylines for seg in line.segments()])
    return points_px[pairs[:, 0]], points_px[pairs[:, 1]]


# ----------------------------------------------------------------------------------------------
# Sketch renderer
# ----------------------------------------------------------------------------------------------


def test_stroke_profile() -> None:
    d = np.linspace(0, 5, 101)
    profile = stroke_intensity(d, 1.5)
    assert profile[0] > 0.99
    lit = profile > 0
    assert (np.diff(profile[lit]) < 0).all()
    assert (profile[~lit] == 0).all()
    assert d[~lit].min() == pytest.approx(2.55, abs=0.05)  # exactly 0 beyond ≈ 1.7 line widths
    assert stroke_intensity(np.array(0.75), 1.5) == pytest.approx(0.5)
    assert stroke_intensity(np.array(1.5), 3.0) == pytest.approx(0.5)
    assert 0 < stroke_intensity(np.array(2.5), 1.5) < 1e-8
    torch.testing.assert_close(
        stroke_intensity(torch.from_numpy(d), 1.5), torch.from_numpy(profile)
    )


def test_single_segment_lights_the_expected_pixels() -> None:
    starts = torch.tensor([[[8.0, 16.0]]])
    ends = torch.tensor([[[24.0, 16.0]]])
    image = render_segments(starts, ends, 32)[0, 0]  # (32, 32), row = y
    on = float(stroke_intensity(np.array(0.0)))
    next_to = float(stroke_intensity(np.array(1.0)))
    torch.testing.assert_close(image[16, 8:25], torch.full((17,), on))
    torch.testing.assert_close(image[15, 8:25], torch.full((17,), next_to))
    torch.testing.assert_close(image[15], image[17])  # symmetric falloff
    torch.testing.assert_close(image[14], image[18])
    assert image[16, 26].item() == pytest.approx(float(stroke_intensity(np.array(2.0))), rel=1e-4)
    assert 0.0 < next_to < 0.5 < on
    assert image[16, 4].item() < 1e-6  # 4 px beyond the end
    assert image[:13].abs().max().item() == 0.0  # beyond the stroke's reach
    assert image.min().item() >= 0.0
    assert image.max().item() <= 1.0


def test_pixels_half_a_line_width_away_are_half_lit() -> None:
    starts = torch.tensor([[[2.0, 10.75]]])
    ends = torch.tensor([[[30.0, 10.75]]])
    image = render_segments(starts, ends, 24, line_width=1.5)[0, 0]
    torch.testing.assert_close(image[10, 5:20], torch.full((15,), 0.5))
    assert (image[11, 5:20] > 0.5).all()  # 0.25 px from the line
    assert (image[9, 5:20] < 0.1).all()  # 1.75 px from the line


@pytest.mark.parametrize("tile_size", [1, 5, 16, 64])
def test_render_segments_matches_a_dense_reference(tile_size: int) -> None:
    rng = np.random.default_rng(5)
    height, width = 23, 37
    starts = rng.uniform(-5, 40, (2, 6, 2))
    ends = rng.uniform(-5, 40, (2, 6, 2))
    ends[0, 0] = starts[0, 0]  # a zero-length segment is a dot
    starts[1, 1], ends[1, 1] = (-100.0, -50.0), (140.0, 60.0)  # crosses from far off-canvas
    channel = torch.tensor([0, 1, 0, 1, 1, 0])
    image = render_segments(
        torch.from_numpy(starts),
        torch.from_numpy(ends),
        (height, width),
        2.0,
        channel,
        2,
        tile_size=tile_size,
    )
    assert image.shape == (2, 2, height, width)
    assert image.dtype == torch.float64
    for m in range(2):
        for c in range(2):
            keep = (channel == c).numpy()
            expected = _dense_sketch(starts[m, keep], ends[m, keep], height, width, 2.0)
            np.testing.assert_allclose(image[m, c].numpy(), expected, atol=1e-7)


def test_render_sketch_matches_a_dense_reference_per_group() -> None:
    size = (64, 72)
    face = lm.template_tensor(dtype=torch.float64)
    face_px = normalized_to_pixels(face, size).numpy()
    single = render_sketch(face[None, None], size)[0, 0]
    grouped = render_sketch(face[None, None], size, groups=True)[0, 0]
    assert single.shape == (1, *size)
    assert grouped.shape == (len(POLYLINES), *size)
    for channel, line in enumerate(POLYLINES):
        starts, ends = _segments_px(face_px, (line,))
        expected = _dense_sketch(starts, ends, size[0], size[1], 1.5)
        np.testing.assert_allclose(grouped[channel].numpy(), expected, atol=1e-7, err_msg=line.name)
    starts, ends = _segments_px(face_px)
    expected_all = _dense_sketch(starts, ends, size[0], size[1], 1.5)
    np.testing.assert_allclose(single[0].numpy(), expected_all, atol=1e-7)
    torch.testing.assert_close(single[0], 1 - (1 - grouped).prod(0))


def test_sketch_shapes_and_module() -> None:
    faces = lm.template_tensor().expand(2, 3, 68, 2) + 0.05 * torch.randn(2, 3, 68, 2)
    assert render_sketch(faces, (40, 48)).shape == (2, 3, 1, 40, 48)
    assert render_sketch(faces, 32, groups=True).shape == (2, 3, 9, 32, 32)
    renderer = SketchRenderer(32, line_width=2.0, groups=True)
    assert renderer.num_channels == 9
    out = renderer(faces)
    assert out.shape == (2, 3, 9, 32, 32)
    assert out.dtype == torch.float32
    assert out.min().item() >= 0.0
    assert out.max().item() <= 1.0
    assert out.amax(dim=(-1, -2)).min().item() > 0.5  # every stroke is drawn
    torch.testing.assert_close(out, render_sketch(faces, 32, 2.0, groups=True))
    assert "groups=True" in repr(renderer)


def test_sketch_batch_elements_are_independent() -> None:
    gen = torch.Generator().manual_seed(6)
    faces = lm.template_tensor().expand(3, 2, 68, 2) * (
        0.6 + 0.6 * torch.rand(3, 2, 1, 1, generator=gen)
    )
    batched = render_sketch(faces, 40)
    for b in range(3):
        for n in range(2):
            torch.testing.assert_close(batched[b, n], render_sketch(faces[b, n], 40))
    moved = faces.clone()
    moved[0, 0] += 0.2
    changed = render_sketch(moved, 40)
    assert not torch.allclose(changed[0, 0], batched[0, 0])
    torch.testing.assert_close(changed[1:], batched[1:])
    torch.testing.assert_close(changed[0, 1], batched[0, 1])


def test_gradcheck_render_segments() -> None:
    gen = torch.Generator().manual_seed(7)
    starts = (torch.rand(1, 3, 2, generator=gen, dtype=torch.float64) * 10 + 1).requires_grad_()
    ends = (torch.rand(1, 3, 2, generator=gen, dtype=torch.float64) * 10 + 1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: render_segments(a, b, 12, 2.0, tile_size=4), (starts, ends)
    )


def test_gradcheck_render_sketch_reaches_the_landmarks() -> None:
    gen = torch.Generator().manual_seed(8)
    face = lm.template_tensor(dtype=torch.float64)[None, None]
    face = (face + 0.02 * torch.randn(face.shape, generator=gen, dtype=torch.float64)).detach()
    face.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: render_sketch(x, 12, 1.5, groups=True, tile_size=4), (face,)
    )


def test_image_loss_gradient_reaches_every_drawn_landmark() -> None:
    face = lm.template_tensor()[None, None].clone().requires_grad_(True)
    target = render_sketch(face.detach() + 0.01, 64)
    F.mse_loss(render_sketch(face, 64), target).backward()
    assert face.grad is not None
    assert torch.isfinite(face.grad).all()
    assert (face.grad.abs().sum(-1) > 0).all()


def test_render_sketch_handles_float64_and_large_batches() -> None:
    faces = lm.template_tensor().expand(40, 1, 68, 2) + 0.02 * torch.randn(40, 1, 68, 2)
    out = render_sketch(faces.requires_grad_(True), 256)  # stage 3's B·N at full resolution
    out.mean().backward()
    assert out.shape == (40, 1, 1, 256, 256)
    assert render_sketch(faces.double(), 16).dtype == torch.float64


def test_render_sketch_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        render_sketch(torch.zeros(1, 1, 67, 2), 16)
    with pytest.raises(ValueError, match="line_width"):
        render_sketch(torch.zeros(1, 1, 68, 2), 16, line_width=0.0)
    with pytest.raises(ValueError, match="floating"):
        render_sketch(torch.zeros(1, 1, 68, 2, dtype=torch.int64), 16)
    with pytest.raises(ValueError, match="image size"):
        SketchRenderer((16, 0))
