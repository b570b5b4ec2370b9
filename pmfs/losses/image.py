"""Pixel losses of stage 3: masked L1 on the generated frame and on the warped references."""

from __future__ import annotations

from torch import Tensor

__all__ = ["masked_l1", "warp_loss"]

_MIN_WEIGHT = 1e-12  # an all-zero mask gives 0 / 1e-12 = 0, never 0 / 0


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error, each element weighted by the mask at its pixel, averaged per sample.

    Per sample b: `Σ m · |pred − target| / Σ m` over channels and pixels (the mask broadcast over
    channels); then the mean over the batch. Every sample counts the same whatever the size of
    its mask (a small mouth as much as a large one), and the value does not depend on how a batch
    is split (B samples on one process = B/2 on each of two DDP processes). A sample with an
    all-zero mask contributes 0 (not NaN) and a zero gradient.

    Args:
        pred: (B, C, H, W).
        target: (B, C, H, W).
        mask: (B, 1, H, W) or (B, C, H, W) non-negative weights; None weighs all pixels alike.

    Returns:
        scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    error = (pred - target).abs()
    if mask is None:
        return error.mean()
    if mask.ndim != pred.ndim or mask.shape[0] != pred.shape[0] or mask.shape[2:] != pred.shape[2:]:
        raise ValueError(
            f"mask must be (B, 1, H, W) or (B, C, H, W) for images {tuple(pred.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    weight = mask.to(error.dtype).expand_as(error)
    per_sample = (error * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(
        _MIN_WEIGHT
    )
    return per_sample.mean()


def warp_loss(warped: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Masked L1 of each warped reference to the target, averaged over the K references.

    Args:
        warped: (B, K, 3, H, W) reference images warped to the target frame.
        target: (B, 3, H, W) the target frame.
        mask: (B, 1, H, W) weights (e.g. the face or the hidden region), None for all pixels.

    Returns:
        scalar: the mean over k of `masked_l1(warped[:, k], target, mask)`.
    """
    if warped.ndim != 5 or warped.shape[:1] + warped.shape[2:] != target.shape:
        raise ValueError(
            f"warped must be (B, K, 3, H, W) for a target {tuple(target.shape)}, "
            f"got {tuple(warped.shape)}"
        )
    refs = warped.shape[1]
    targets = target.unsqueeze(1).expand_as(warped).flatten(0, 1)  # (B·K, 3, H, W)
    masks = None
    if mask is not None:
        masks = mask.unsqueeze(1).expand(-1, refs, *mask.shape[1:]).flatten(0, 1)  # (B·K, 1, H, W)
    # (B·K) samples of equal standing: the mean over them is the mean over K of the batch means.
    return masked_l1(warped.flatten(0, 1), targets, masks)
