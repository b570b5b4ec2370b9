"""Textured studio-like backgrounds, different for every clip.

A background is a colour gradient, low-frequency colour blotches (cloth, plaster, out-of-focus
rooms), one pattern among stripes, tiles, soft bokeh discs or none, a vignette and a fine film
grain. The camera is static, so one image serves every frame of a clip.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_PATTERNS = ("none", "stripes", "tiles", "bokeh", "blotches")


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A muted random colour (sRGB 0–255)."""
    hue = rng.uniform(0.0, 1.0)
    base = 0.5 + 0.5 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))
    saturation = rng.uniform(0.1, 0.55)
    value = rng.uniform(50.0, 215.0)
    return value * (1.0 - saturation + saturation * base)


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """(H, W) smooth noise in about [-1, 1]: a random grid upsampled bicubically."""
    gh, gw = max(2, height // cells + 2), max(2, width // cells + 2)
    grid = rng.normal(0.0, 1.0, (gh, gw)).astype(np.float32)
    field = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(field) / 1.5, -1.5, 1.5)


def _pattern(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """(H, W) pattern intensity in [-1, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "stripes":
        angle = rng.choice([0.0, np.pi / 2, rng.uniform(0.3, 1.2)])
        period = rng.uniform(0.06, 0.2) * width
        phase = np.cos(angle) * x + np.sin(angle) * y
        return np.tanh(3.0 * np.sin(2 * np.pi * phase / period)).astype(np.float32)
    if kind == "tiles":
        period = rng.uniform(0.1, 0.25) * width
        grout = np.minimum(np.abs(np.sin(np.pi * x / period)), np.abs(np.sin(np.pi * y / period)))
        return (np.clip(grout * 6.0, 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)
    if kind == "bokeh":
        out = np.zeros((height, width), np.float32)
        for _ in range(int(rng.integers(8, 20))):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.03, 0.1) * width
            d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / r
            out = np.maximum(out, np.clip(1.0 - d, 0.0, 1.0) ** 0.4 * rng.uniform(0.4, 1.0))
        return out * 2.0 - 1.0
    if kind == "blotches":
        return np.tanh(2.0 * _smooth_field(rng, height, width, max(4, width // 24)))
    return np.zeros((height, width), np.float32)


def make_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random textured background.

    Args:
        rng: random generator (one per clip).
        height: H in pixels.
        width: W in pixels.

    Returns:
        (H, W, 3) float32 image in [0, 255].
    """
    top, bottom, accent = _colour(rng), _colour(rng), _colour(rng)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    image = top * (1 - y) + bottom * y  # (H, 1, 3)
    image = np.broadcast_to(image, (height, width, 3)).astype(np.float32)
    blotch = _smooth_field(rng, height, width, max(8, width // 6))[..., None]
    image = image + blotch * (accent - image) * float(rng.uniform(0.15, 0.45))
    kind = str(rng.choice(_PATTERNS))
    pattern = _pattern(rng, kind, height, width)[..., None]
    image = image * (1.0 + float(rng.uniform(0.05, 0.16)) * pattern)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (0.7 * width)) ** 2 + ((yy - height / 2) / (0.7 * height)) ** 2
    image = image * (1.0 - float(rng.uniform(0.1, 0.35)) * r2)[..., None]
    image = image + rng.normal(0.0, 1.2, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 255.0).astype(np.float32)
