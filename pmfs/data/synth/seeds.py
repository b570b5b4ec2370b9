"""Seeds of the synthetic generator: every random stream is a pure function of (seed, keys).

A clip's randomness comes from `derive_rng(seed, "clip", clip_id)` and a speaker's from
`derive_rng(seed, "speaker", speaker_id)`, so a clip's content does not depend on which worker
makes it, in which order, or on how many other clips the dataset has.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: str | int) -> np.random.SeedSequence:
    """A `SeedSequence` from a master seed and any number of string/int keys.

    Args:
        seed: the dataset's master seed.
        *keys: what the stream is for, e.g. ("clip", "S01_angry_3_001").

    Returns:
        A seed sequence whose entropy is the SHA-256 of the seed and keys (stable across
        processes, platforms and Python versions; `hash()` is salted per process, this is not).
    """
    text = "\x1f".join([str(int(seed)), *(str(key) for key in keys)])
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.SeedSequence(list(np.frombuffer(digest[:16], dtype="<u4")))


def derive_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A numpy `Generator` for the stream named by `keys` (see `derive_seed`)."""
    return np.random.default_rng(derive_seed(seed, *keys))


def smooth(signal: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the last axis with edge padding (zero phase).

    Args:
        signal: (..., T) array.
        sigma: standard deviation of the kernel in samples; 0 returns a copy.

    Returns:
        (..., T) float64 array.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if sigma <= 0:
        return signal.copy()
    radius = max(1, int(np.ceil(3.5 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    pad = [(0, 0)] * (signal.ndim - 1) + [(radius, radius)]
    padded = np.pad(signal, pad, mode="edge")
    flat = padded.reshape(-1, padded.shape[-1])
    out = np.stack([np.convolve(row, kernel, mode="valid") for row in flat])
    return out.reshape(signal.shape)
