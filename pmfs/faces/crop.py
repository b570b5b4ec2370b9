"""Landmark tracks → a stable square crop (DESIGN §3).

Conventions: landmarks are (x, y) pixels of the frame they come from, pixel-index convention
(the centre of pixel i is at i); a missing frame is a row of NaN. A crop box is `(x0, y0, side)`
in integer pixels of the raw frame: the crop covers columns x0 … x0 + side − 1 and rows
y0 … y0 + side − 1 and is resized to S×S, so a raw point x maps to
`(x + 0.5 − x0) · S / side − 0.5` (`points_to_crop`).

The default placement (`pmfs.faces.TEMPLATE_CROP_SCALE`, `TEMPLATE_CROP_SHIFT`, kept in the
torch-free package module for the parsers) is `template_geometry()`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.signal import savgol_filter

from pmfs.landmarks import TEMPLATE


def template_geometry() -> tuple[float, float]:
    """(scale, shift) for `stable_box` that place a face like `pmfs.landmarks.TEMPLATE` does.

    The template (normalised [-1, 1] over the crop) is the project's canonical head crop (MEAD's
    256² crops: face 56 % of the crop wide, chin at 86 %, brows at 31 %); the synthetic generator
    places its heads the same way. Face size = larger side of the landmarks' bounding box.
    """
    lo, hi = TEMPLATE.min(axis=0), TEMPLATE.max(axis=0)
    face = float((hi - lo).max())  # in normalised units; the crop is 2 wide
    centre_y = float(lo[1] + hi[1]) / 2  # below the crop centre (> 0)
    return round(2.0 / face, 4), round(-centre_y / face, 4)


class LandmarkGapError(ValueError):
    """The face is missing for too long (or everywhere) in a clip."""


@dataclass(frozen=True)
class CropBox:
    """A square crop of the raw frame: columns x0 … x0+side−1, rows y0 … y0+side−1."""

    x0: int
    y0: int
    side: int


def missing_frames(landmarks: np.ndarray) -> np.ndarray:
    """(N,) bool: frames whose landmarks hold a NaN (no face found)."""
    return np.isnan(landmarks).reshape(len(landmarks), -1).any(axis=1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a (N,) bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, stops, strict=True))


def fill_gaps(landmarks: np.ndarray, max_gap: int) -> tuple[np.ndarray, int]:
    """Interpolate runs of missing frames of up to `max_gap` frames.

    Inner gaps are interpolated linearly between the frames around them; a gap at the start or
    end of the clip takes the nearest detected frame.

    Args:
        landmarks: (N, 68, 2) float32 with NaN rows for missing frames.
        max_gap: the longest run of missing frames that is filled.

    Returns:
        ((N, 68, 2) float32 without NaN, number of frames filled).

    Raises:
        LandmarkGapError: no frame has a face, or a run of missing frames is longer than `max_gap`.
    """
    missing = missing_frames(landmarks)
    n = len(landmarks)
    if missing.all():
        raise LandmarkGapError(f"no_face: no face found in any of the {n} frames")
    runs = _runs(missing)
    longest = max((stop - start for start, stop in runs), default=0)
    if longest > max_gap:
        raise LandmarkGapError(
            f"lost_frames: the face is lost for {longest} consecutive frames "
            f"({int(missing.sum())}/{n} in all; at most {max_gap} are interpolated)"
        )
    known = np.flatnonzero(~missing)
    flat = landmarks.reshape(n, -1).astype(np.float64)
    filled = np.empty_like(flat)
    for k in range(flat.shape[1]):  # np.interp holds the end values outside `known`
        filled[:, k] = np.interp(np.arange(n), known, flat[known, k])
    return filled.reshape(landmarks.shape).astype(np.float32), int(missing.sum())


def smooth(landmarks: np.ndarray, window: int) -> np.ndarray:
    """Savitzky–Golay smoothing over time (polynomial order 2), which keeps mouth peaks sharper
    than a moving average; `window` ≤ 2 or a clip shorter than `window` is returned unchanged.

    Args:
        landmarks: (N, 68, 2) float32 without NaN.
        window: odd number of frames (an even one is rounded up).

    Returns:
        (N, 68, 2) float32.
    """
    window = window + 1 - window % 2
    if window <= 2 or len(landmarks) < window:
        return landmarks.astype(np.float32, copy=True)
    out = savgol_filter(landmarks.astype(np.float64), window, 2, axis=0, mode="interp")
    return out.astype(np.float32)


def stable_box(landmarks: np.ndarray, scale: float, shift: float) -> CropBox:
    """One square box for the whole clip, from the median face over time.

    The face size is the median over frames of the larger side of the landmarks' bounding box
    (brows to chin, ear to ear); the box is `scale` times that, centred on the median bounding
    box centre moved down by `shift` face sizes (negative: up, leaving room for the forehead
    and hair; `template_geometry` gives the values of the project's canonical crop).

    Args:
        landmarks: (N, 68, 2) float32 pixels of the raw frame, no NaN.
        scale: box side / face size.
        shift: downward shift of the centre, in face sizes.
    """
    lo, hi = landmarks.min(axis=1), landmarks.max(axis=1)  # (N, 2)
    face = float(np.median((hi - lo).max(axis=1)))
    centre = np.median((lo + hi) / 2, axis=0) + np.array([0.0, shift * face])
    side = max(2, round(scale * face))
    x0, y0 = (np.round(centre + 0.5 - side / 2)).astype(int).tolist()
    return CropBox(int(x0), int(y0), side)


def points_to_crop(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Raw-frame pixel coordinates → crop pixel coordinates ((..., 2) float32)."""
    origin = np.array([box.x0, box.y0], dtype=np.float64)
    out = (points.astype(np.float64) + 0.5 - origin) * (size / box.side) - 0.5
    return out.astype(np.float32)


def crop_frame(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Cut `box` out of an (H, W, 3) uint8 frame and resize it to (size, size, 3).

    Parts of the box outside the frame repeat the frame's border pixels (edge padding), so a
    face near the border keeps its geometry; `meta.json` records the box so users can see it.
    """
    h, w = frame.shape[:2]
    pad = (
        (max(0, -box.y0), max(0, box.y0 + box.side - h)),
        (max(0, -box.x0), max(0, box.x0 + box.side - w)),
        (0, 0),
    )
    x0, y0 = box.x0 + pad[1][0], box.y0 + pad[0][0]
    padded = np.pad(frame, pad, mode="edge") if any(p != (0, 0) for p in pad[:2]) else frame
    region = padded[y0 : y0 + box.side, x0 : x0 + box.side]
    if box.side == size:
        return np.ascontiguousarray(region)
    resized = Image.fromarray(region).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized)
