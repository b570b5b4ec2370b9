"""Sharpness of generated faces: the variance of the Laplacian inside a region, and its ratio to
the ground truth's (issue 15).

The Laplacian (the 3×3 kernel `[[0, 1, 0], [1, -4, 1], [0, 1, 0]]` on the luma
`0.299 R + 0.587 G + 0.114 B`) responds to edges and texture and not to smooth shading; its
variance over a region is the classic focus measure (Pech-Pacheco et al., 2000). A blurred or
upsampled image has a lower variance than the real one, so `generated ÷ truth` is 1 for an image
as sharp as the truth, below 1 for a softer one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["laplacian_variance", "sharpness_ratio"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_LUMA = (0.299, 0.587, 0.114)


def laplacian_variance(images: Tensor, mask: Tensor) -> Tensor:
    """Variance of the luma's Laplacian over the pixels where `mask` > 0.5.

    Only pixels whose whole 3×3 neighbourhood lies in the mask count, so the region's own edge
    (where a pasted face meets the frame) does not.

    Args:
        images: (B, 3, H, W) in [0, 1].
        mask: (B, 1, H, W) region, 1 inside.

    Returns:
        (B,) variance per image; NaN where the region has no interior pixel.
    """
    if (
        images.ndim != 4
        or images.shape[1] != 3
        or mask.shape != (images.shape[0], 1, *images.shape[2:])
    ):
        raise ValueError(
            f"need images (B, 3, H, W) and mask (B, 1, H, W), got {tuple(images.shape)} and "
            f"{tuple(mask.shape)}"
        )
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    luma = (images * weights).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    response = F.conv2d(luma, _LAPLACIAN.to(images)[None, None])  # (B, 1, H-2, W-2)
    inside = -F.max_pool2d(-(mask > 0.5).to(images.dtype), 3, stride=1)  # eroded by 1 pixel
    inside = inside.flatten(1)
    values = response.flatten(1)
    count = inside.sum(dim=1)
    mean = (values * inside).sum(dim=1) / count
    return ((values - mean[:, None]).square() * inside).sum(dim=1) / count


def sharpness_ratio(preds: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """(B,) `laplacian_variance(preds) ÷ laplacian_variance(target)` over the same region."""
    return laplacian_variance(preds, mask) / laplacian_variance(target, mask)
