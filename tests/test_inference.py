"""The inference library's pieces: template loading, face choice, tracking, playback, paste-back.

End-to-end runs with a checkpoint are in tests/test_infer.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pmfs.faces.crop import CropBox, crop_frame
from pmfs.inference.crop import paste_back
from pmfs.inference.template import InferenceInputError, load_template, playback_indices
from pmfs.inference.tracking import (
    Detections,
    LandmarkFileFaces,
    NoFaceError,
    largest_faces,
    track_faces,
)
from pmfs.landmarks import TEMPLATE
from pmfs.video_writer import write_video


def _face(centre: tuple[float, float], scale: float) -> np.ndarray:
    """(68, 2) pixel landmarks of the canonical face, `scale` pixels per normalized unit."""
    return (TEMPLATE * scale + np.asarray(centre)).astype(np.float32)


def _smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 low-frequency pattern (resampling it twice loses little)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = [
        127 + 100 * np.sin(x / (9 + 3 * c) + rng.uniform(0, 6)) * np.cos(y / (11 + 2 * c))
        for c in range(3)
    ]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def test_playback_ping_pongs_a_short_template_and_trims_a_long_one() -> None:
    assert playback_indices(3, 9).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    assert playback_indices(10, 4).tolist() == [0, 1, 2, 3]
    assert playback_indices(1, 5).tolist() == [0, 0, 0, 0, 0]
    assert playback_indices(2, 5).tolist() == [0, 1, 0, 1, 0]


def test_largest_face_is_chosen_and_faces_are_counted() -> None:
    small, big = _face((30, 30), 10), _face((80, 60), 25)
    points = np.full((3, 2, 68, 2), np.nan, np.float32)
    points[0] = [small, big]
    points[1, 1] = small
    detections = largest_faces(points)
    np.testing.assert_array_equal(detections.landmarks[0], big)
    np.testing.assert_array_equal(detections.landmarks[1], small)
    assert np.isnan(detections.landmarks[2]).all()
    assert detections.faces.tolist() == [2, 1, 0]


def test_track_interpolates_short_gaps_and_passes_long_ones_through() -> None:
    n = 30
    landmarks = np.stack([_face((50 + t, 50), 20) for t in range(n)])
    landmarks[3:5] = np.nan  # 2 frames: interpolated
    landmarks[10:20] = np.nan  # 10 frames > max_gap: passed through
    track = track_faces(Detections(landmarks, np.ones(n, np.int64)), Path("x.mp4"), max_gap=4)
    assert track.missing == 12 and track.multi_face == 0
    assert np.flatnonzero(track.passthrough).tolist() == list(range(10, 20))
    assert not np.isnan(track.landmarks).any()
    # linear motion survives interpolation and smoothing
    np.testing.assert_allclose(track.landmarks[4], _face((54, 50), 20), atol=1e-3)


def test_track_without_any_face_is_a_clear_error() -> None:
    empty = np.full((5, 68, 2), np.nan, np.float32)
    with pytest.raises(NoFaceError, match=r"no face found in any of the 5 frames of v\.mp4"):
        track_faces(Detections(empty, np.zeros(5, np.int64)), Path("v.mp4"))


@pytest.mark.parametrize("box", [CropBox(13, 7, 58), CropBox(-10, -6, 50), CropBox(70, 40, 64)])
def test_paste_back_inverts_the_crop(box: CropBox) -> None:
    frame = _smooth_image(90, 120)
    crop = torch.from_numpy(np.array(crop_frame(frame, box, 64))).permute(2, 0, 1).float() / 255
    out = paste_back(frame, crop, torch.ones(1, 64, 64), box)
    x0, y0 = max(box.x0, 0), max(box.y0, 0)
    x1, y1 = min(box.x0 + box.side, 120), min(box.y0 + box.side, 90)
    inner = (slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))  # away from the resampling border
    error = np.abs(out[inner].astype(float) - frame[inner].astype(float)).mean()
    assert error < 2.5, f"crop → paste_back is not the identity (mean error {error:.2f})"
    shifted = np.roll(frame, 2, axis=1)[inner].astype(float)  # a 2-pixel error is much worse
    assert np.abs(shifted - frame[inner].astype(float)).mean() > 3 * error


def test_paste_back_changes_only_the_masked_region() -> None:
    frame = _smooth_image(80, 100, seed=1)
    box = CropBox(20, 10, 48)
    mask = torch.zeros(1, 32, 32)
    mask[:, 10:20, 12:22] = 1.0  # crop pixels 10–19 → frame rows 25–39, cols 38–52
    face = torch.zeros(3, 32, 32)  # black
    out = paste_back(frame, face, mask, box)
    changed = np.any(out != frame, axis=-1)
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 100
    assert rows.min() >= 23 and rows.max() <= 41 and cols.min() >= 36 and cols.max() <= 54
    assert (out[28:37, 41:50] == 0).all()  # the mask's inside is the generated face
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_template_formats(tmp_path: Path) -> None:
    frames = np.stack([_smooth_image(48, 64, seed=i) for i in range(10)])
    write_video(tmp_path / "t.mp4", frames)
    video = load_template(tmp_path / "t.mp4", max_frames=4)
    assert video.frames.shape == (4, 48, 64, 3) and not video.is_image
    Image.fromarray(frames[0]).save(tmp_path / "t.png")
    image = load_template(tmp_path / "t.png")
    assert image.is_image and image.frames.shape == (1, 48, 64, 3)
    np.testing.assert_array_equal(image.frames[0], frames[0])
    (tmp_path / "t.xyz").write_bytes(b"not a face")
    with pytest.raises(InferenceInputError, match=r"unknown face format '\.xyz'"):
        load_template(tmp_path / "t.xyz")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InferenceInputError, match="cannot read the face video"):
        load_template(tmp_path / "bad.mp4")
    with pytest.raises(FileNotFoundError):
        load_template(tmp_path / "missing.png")


def test_landmark_file_shapes(tmp_path: Path) -> None:
    faces = np.stack([_face((40, 40), 15)] * 6)
    np.save(tmp_path / "one.npy", faces)
    frames = np.zeros((6, 80, 80, 3), np.uint8)
    assert LandmarkFileFaces(tmp_path / "one.npy")(frames).faces.tolist() == [1] * 6
    two = np.stack([faces, faces * 0.5], axis=1)  # (6, 2, 68, 2)
    np.save(tmp_path / "two.npy", two)
    result = LandmarkFileFaces(tmp_path / "two.npy")(frames)
    assert result.faces.tolist() == [2] * 6
    np.testing.assert_array_equal(result.landmarks, faces)
    # 30 fps rows are resampled to 25 fps like the frames: 6 rows → 5
    assert len(LandmarkFileFaces(tmp_path / "one.npy", source_fps=30).points) == 5
    with pytest.raises(InferenceInputError, match="landmarks of 6 frames"):
        LandmarkFileFaces(tmp_path / "one.npy")(np.zeros((9, 80, 80, 3), np.uint8))
    np.save(tmp_path / "bad.npy", np.zeros((6, 5, 2)))
    with pytest.raises(InferenceInputError, match=r"expected \(N, 68, 2\)"):
        LandmarkFileFaces(tmp_path / "bad.npy")
