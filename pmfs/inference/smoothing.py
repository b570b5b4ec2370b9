"""Smoothers of time series of points, zero-phase for offline use (`pmfs.inference.temporal`).

- `savgol_smooth`: Savitzky–Golay, the least-squares polynomial over a centred window (scipy's
  `savgol_filter` with `mode="interp"`, in torch, on the series' device);
- `one_euro_smooth`: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012), a low-pass whose
  cutoff rises with speed, run forward and then backward over its own output, so it has no lag.

Both keep a step's onset: the smoothed step crosses half its height within a frame of the step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def savgol_coefficients(window: int, order: int) -> Tensor:
    """(W, W) float64 Savitzky–Golay matrix: row i gives the fitted value at window position i.

    The least-squares polynomial of degree `order` through W samples at positions −h…h
    (h = W // 2) evaluated at every position: `V · pinv(V)`, V the (W, order + 1) Vandermonde
    matrix. The middle row is the usual smoothing kernel; the others serve the clip's ends.
    """
    if window % 2 == 0 or not 0 <= order < window:
        raise ValueError(f"need an odd window > order, got window {window}, order {order}")
    positions = torch.arange(window, dtype=torch.float64) - window // 2
    vander = positions[:, None] ** torch.arange(order + 1, dtype=torch.float64)  # (W, order + 1)
    return vander @ torch.linalg.pinv(vander)


def savgol_smooth(x: Tensor, window: int, order: int) -> Tensor:
    """Savitzky–Golay smoothing along the first axis (scipy's `savgol_filter`, `mode="interp"`).

    Interior samples get the centred polynomial fit; the first and last h = W // 2 samples the
    fit of the first and last full window. A series shorter than the window gets the largest odd
    window that fits (returned unchanged if that is not above `order`).

    Args:
        x: (N, ...) series over time.
        window: odd window W, frames.
        order: polynomial order, < W.

    Returns:
        (N, ...) smoothed, dtype of `x`.
    """
    n = x.shape[0]
    window = min(window, n - 1 + n % 2)
    if window <= order:
        return x.clone()
    h = window // 2
    coef = savgol_coefficients(window, order).to(x.device)  # (W, W)
    flat = x.reshape(n, -1).to(torch.float64)  # (N, D)
    windows = flat.unfold(0, window, 1)  # (N − W + 1, D, W)
    out = torch.empty_like(flat)
    out[h : n - h] = windows @ coef[h]  # (N − W + 1, D)
    out[:h] = coef[:h] @ flat[:window]  # (h, D): the first window's fit
    out[n - h :] = coef[window - h :] @ flat[n - window :]
    return out.reshape(x.shape).to(x.dtype)


def _one_euro_pass(
    x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float
) -> np.ndarray:
    """One causal One-Euro pass over (N, P, 2) float64 points; each point's cutoff follows its
    speed (the norm over x, y of its filtered derivative). numpy: a frame loop of small-array
    operations is ~10× faster than with torch tensors."""
    out = np.empty_like(x)
    out[0] = x[0]
    speed = np.zeros_like(x[0])  # (P, 2) filtered derivative, units per second
    a_d = 1.0 / (1.0 + fps / (2.0 * np.pi * d_cutoff))  # smoothing factor 1 / (1 + τ / T_e)
    for t in range(1, len(x)):
        speed += a_d * ((x[t] - out[t - 1]) * fps - speed)
        cutoff = min_cutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True)  # (P, 1)
        out[t] = out[t - 1] + (x[t] - out[t - 1]) / (1.0 + fps / (2.0 * np.pi * cutoff))
    return out


def one_euro_smooth(
    x: Tensor, fps: float, min_cutoff: float, beta: float, d_cutoff: float = 1.0
) -> Tensor:
    """A One-Euro filter run forward, then backward over its output: zero phase (no lag), offline.

    Computed on the CPU in float64 (a sequential loop over frames) and returned where `x` is.

    Args:
        x: (N, P, 2) points over time.
        fps: frames per second.
        min_cutoff: cutoff of a still point, Hz.
        beta: how fast the cutoff rises with speed, Hz per (unit of x per second).
        d_cutoff: cutoff of the speed estimate, Hz.

    Returns:
        (N, P, 2) smoothed, dtype and device of `x`.
    """
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(f"one_euro_smooth takes (N, P, 2) points, got {tuple(x.shape)}")
    if x.shape[0] < 2:
        return x.clone()
    y = x.detach().to("cpu", torch.float64).numpy()
    forward = _one_euro_pass(y, fps, min_cutoff, beta, d_cutoff)
    both = _one_euro_pass(forward[::-1].copy(), fps, min_cutoff, beta, d_cutoff)[::-1]
    return torch.from_numpy(both.copy()).to(x)
