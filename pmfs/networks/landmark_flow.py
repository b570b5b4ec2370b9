"""The landmark flow: a dense backward flow from each reference to the target, interpolated from
the displacements of their 68 landmarks. `FaceRendererNet` starts its flow from it.

Why: learning a dense flow from a zero (identity) start with a photometric loss is fragile. On the
synthetic benchmark the same training reached 32.3 dB mouth PSNR or stayed near the
no-warping model's 30.4 dB depending only on floating-point rounding (the CPU's instruction set;
docs/results.md). The landmarks already say where each reference's lips, jaw and nose are
relative to the target's, so the flow starts there, and the network learns a residual.

Convention: coordinates `(x, y)` normalized to [-1, 1] with `grid_sample(align_corners=False)`
(pixel centres at `(2i + 1)/n − 1`), as `pmfs.landmarks`. A backward flow F gives each target
pixel p the reference position p + F(p); near target landmark i it is `ref_i − target_i`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pmfs.networks.warping import identity_grid

__all__ = ["landmark_flow"]


def landmark_flow(target: Tensor, refs: Tensor, size: int, sigma: float = 0.06) -> Tensor:
    """Nadaraya–Watson interpolation of the landmark displacements over a `size`² grid.

    Each pixel takes the Gaussian-weighted mean (bandwidth `sigma`, normalized units) of the
    displacements `refs − target` of all landmarks, weighted by its distance to the *target*
    landmarks; the weights are a softmax, so far from the face the nearest landmarks decide
    (no 0/0).

    Args:
        target: (B, 68, 2) landmarks of the frame to make.
        refs: (B, K, 68, 2) landmarks of its K references.
        size: side of the output grid.
        sigma: bandwidth of the Gaussian, in normalized units (2 = the image side).

    Returns:
        (B, K, 2, size, size) backward flow `(dx, dy)` in normalized units.
    """
    if target.ndim != 3 or refs.ndim != 4 or refs.shape[0] != target.shape[0]:
        raise ValueError(
            f"need target (B, N, 2) and refs (B, K, N, 2), got {tuple(target.shape)} and "
            f"{tuple(refs.shape)}"
        )
    pixels = identity_grid(size, size, target).reshape(-1, 2)  # (P, 2), P = size²
    distance = torch.cdist(pixels[None], target)  # (B, P, N)
    weights = (-(distance**2) / (2 * sigma**2)).softmax(dim=-1)  # (B, P, N)
    displacement = refs - target[:, None]  # (B, K, N, 2)
    flow = torch.einsum("bpn,bknc->bkcp", weights, displacement)  # (B, K, 2, P)
    return flow.unflatten(-1, (size, size))
