"""Issue 15 item 5: `pmfs infer` pastes only the lower face back into the frame (inside the jaw
line, below the nose), on a real face with real (dlib) landmarks: every pixel outside the face
hull keeps its value exactly — hair, background, ears, neck — where the crop's lower rectangle
(the paste before) changed cheeks and background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pmfs.faces.crop import CropBox, points_to_crop
from pmfs.inference.crop import paste_back, paste_masks
from pmfs.landmarks import pixels_to_normalized
from pmfs.masks import face_hull_mask, lower_face_mask, target_mask
from pmfs.video import iter_frames

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
VIDEO = SAMPLES / "talking_man_1080x1920.mp4"
SIZE = 256


@pytest.fixture(scope="module")
def real_face() -> tuple[np.ndarray, np.ndarray]:
    """A 640² square of a talking-man frame around his face, and its dlib landmarks (pixels)."""
    if not VIDEO.is_file():
        pytest.skip(f"the real sample is absent ({VIDEO})")
    from pmfs.faces.dlib_detector import DlibLandmarks

    frame = next(iter(iter_frames(VIDEO)))
    points = DlibLandmarks().track([frame]).landmarks[0]
    cx, cy = points.mean(0).astype(int)
    x0, y0 = max(cx - 320, 0), max(cy - 320, 0)
    square = np.ascontiguousarray(frame[y0 : y0 + 640, x0 : x0 + 640])
    assert square.shape == (640, 640, 3)
    return square, (points - [x0, y0]).astype(np.float32)


def _opened(points: np.ndarray) -> np.ndarray:
    """The face with its mouth opened: the chin and lower lip down by 6 % of the face height."""
    moved = points.copy()
    drop = 0.06 * (points[8, 1] - points[27, 1])
    lower = np.r_[4:13, 55:60, 64:68]
    moved[lower, 1] += drop * np.linspace(0.5, 1.0, len(lower))
    return moved


def _hull(points: np.ndarray, side: int) -> np.ndarray:
    """(side, side) bool: inside the face hull (jaw + brows) of frame-pixel landmarks."""
    normalized = torch.from_numpy(pixels_to_normalized(points, side))[None]
    return face_hull_mask(normalized, side, feather=0.0, dilate=0.0)[0, 0].numpy() > 0


def _paste(frame: np.ndarray, box: CropBox, mask: torch.Tensor) -> np.ndarray:
    noise = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    return paste_back(frame, noise, mask, box)


def test_the_paste_leaves_everything_outside_the_face_hull(
    real_face: tuple[np.ndarray, np.ndarray],
) -> None:
    frame, template = real_face
    generated = _opened(template)
    side = int(np.ptp(template[:, 0]) * 1.8)
    cx, cy = template.mean(0)
    box = CropBox(int(cx - side / 2), int(cy - side / 2), side)
    crop_points = [
        torch.from_numpy(pixels_to_normalized(points_to_crop(p, box, SIZE), SIZE))[None]
        for p in (generated, template)
    ]
    out = _paste(frame, box, paste_masks(*crop_points, SIZE)[0])
    changed = np.any(out != frame, axis=-1)
    hull = _hull(template, 640) | _hull(generated, 640)
    assert not (changed & ~hull).any(), f"{(changed & ~hull).sum()} pixels outside the face hull"
    lower = lower_face_mask(torch.from_numpy(pixels_to_normalized(template, 640))[None], 640)
    inside = lower[0, 0].numpy() > 0
    assert changed[inside].mean() > 0.9  # the lower face itself is replaced
    nose = template[27:31]  # the upper face is kept
    assert not changed[: int(nose[:, 1].max()) - 8].any()
    # the paste before issue 15 (the renderer's hidden lower rectangle) replaced pixels outside
    # the face: the check above is one that paste would fail
    rectangle = torch.maximum(*(target_mask(p, SIZE, "lower_half", 0.1, 8.0) for p in crop_points))
    before = np.any(_paste(frame, box, rectangle[0]) != frame, axis=-1)
    assert (before & ~hull).sum() > 2000
