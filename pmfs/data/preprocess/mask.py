"""Foreground (person) mask of a crop from its landmarks — a geometric prior, not segmentation.

How: per frame, in crop pixels,

1. *head*: the jaw line (points 0–16) closed over the top by the brows (17–26) lifted along the
   face's up axis (chin → nose bridge) by `HAIR_LIFT` × the chin–brow distance and widened
   by `HAIR_WIDEN` around the face centre, approximating forehead and hair;
2. *neck and shoulders*: a polygon from the jaw below the ears (points 4 and 12) down
   `NECK_LENGTH` face heights, then out to `SHOULDER_WIDTH` face widths at the bottom of the
   crop;
3. the union is filled and blurred (Gaussian, σ = `EDGE_SIGMA` × face width) into soft 0–255
   edges.

Limits: it knows only the 68 landmarks, so big hair, hats, glasses temples, raised hands, a
turned torso or unusually broad shoulders are wrong by up to tens of pixels; the top of the
head is a guess from the face proportions. It is meant for losses that weight the person over
the background, not for compositing. The synthetic generator writes exact masks instead.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HAIR_LIFT = 0.55
HAIR_WIDEN = 1.1
NECK_LENGTH = 0.35
SHOULDER_WIDTH = 2.6
EDGE_SIGMA = 0.02


def _head_polygon(points: np.ndarray) -> np.ndarray:
    """(K, 2) polygon of face + forehead/hair from (68, 2) landmarks."""
    jaw, brows = points[0:17], points[17:27]
    chin, bridge = points[8], points[27]
    up = bridge - chin
    up = up / max(float(np.linalg.norm(up)), 1e-6)
    height = abs(float(np.dot(brows.mean(axis=0) - chin, up)))  # chin → brows along up
    centre = points[27:36].mean(axis=0)
    top = brows[::-1] + up * HAIR_LIFT * height
    top = centre + (top - centre) * HAIR_WIDEN
    return np.concatenate([jaw, top])


def _body_polygon(points: np.ndarray, size: int) -> np.ndarray:
    """(6, 2) polygon of neck and shoulders reaching the bottom of the crop."""
    left, right, chin = points[4], points[12], points[8]
    width = float(np.linalg.norm(points[16] - points[0]))
    height = float(np.linalg.norm(chin - points[27]))
    neck_y = chin[1] + NECK_LENGTH * height
    cx = float(chin[0])
    half = SHOULDER_WIDTH * width / 2
    bottom = float(size + 1)
    return np.array(
        [
            left,
            [left[0], neck_y],
            [cx - half, max(neck_y + 0.3 * height, bottom)],
            [cx + half, max(neck_y + 0.3 * height, bottom)],
            [right[0], neck_y],
            right,
        ]
    )


def foreground_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Soft foreground mask of one crop.

    Args:
        landmarks: (68, 2) float32 (x, y) pixels of the crop.
        size: side S of the crop.

    Returns:
        (S, S) uint8, 255 on the person, 0 on the background, blurred edges.
    """
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for polygon in (_head_polygon(landmarks), _body_polygon(landmarks, size)):
        draw.polygon([tuple(p) for p in polygon.astype(float).tolist()], fill=255)
    width = float(np.linalg.norm(landmarks[16] - landmarks[0]))
    radius = max(0.5, EDGE_SIGMA * width)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)


def foreground_masks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Masks of a clip: (N, 68, 2) crop pixels → (N, S, S) uint8."""
    return np.stack([foreground_mask(points, size) for points in landmarks])
