"""Hinge GAN and feature-matching losses for a multi-scale patch discriminator.

The discriminator returns, per scale, the list of its blocks' feature maps, the last one being
the patch logits (B, 1, h, w) (see `pmfs.networks.discriminator`). Every loss is averaged over
scales, so its size does not depend on how many scales there are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["discriminator_hinge_loss", "feature_matching_loss", "generator_hinge_loss"]


def _check_scales(real: list[list[Tensor]], fake: list[list[Tensor]]) -> None:
    if not fake or len(real) != len(fake):
        raise ValueError(
            f"need the same non-zero number of scales for real and fake, "
            f"got {len(real)} and {len(fake)}"
        )
    for scale, (real_blocks, fake_blocks) in enumerate(zip(real, fake, strict=True)):
        if not fake_blocks or len(real_blocks) != len(fake_blocks):
            raise ValueError(
                f"scale {scale}: real has {len(real_blocks)} blocks, fake {len(fake_blocks)}"
            )


def discriminator_hinge_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """`mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))` per scale, averaged over scales.

    Args:
        real: per scale, the discriminator's outputs on real images (last = logits).
        fake: the same on generated images (detach them before the discriminator).

    Returns:
        scalar.
    """
    _check_scales(real, fake)
    losses = [
        F.relu(1.0 - real_blocks[-1]).mean() + F.relu(1.0 + fake_blocks[-1]).mean()
        for real_blocks, fake_blocks in zip(real, fake, strict=True)
    ]
    return torch.stack(losses).mean()


def generator_hinge_loss(fake: list[list[Tensor]]) -> Tensor:
    """`−mean(D(fake))` per scale, averaged over scales.

    Args:
        fake: per scale, the discriminator's outputs on generated images (last = logits).

    Returns:
        scalar.
    """
    _check_scales(fake, fake)
    return torch.stack([-blocks[-1].mean() for blocks in fake]).mean()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """L1 between the discriminator's features of fake and real images (pix2pixHD).

    Per scale, the mean over its blocks except the logits of `mean |fake − real|`, then the
    mean over scales. `real` is treated as a constant (detached).

    Args:
        real: per scale, the features of the real image (last = logits, unused).
        fake: the same for the generated image.

    Returns:
        scalar.
    """
    _check_scales(real, fake)
    per_scale = []
    for scale, (real_blocks, fake_blocks) in enumerate(zip(real, fake, strict=True)):
        if len(fake_blocks) < 2:
            raise ValueError(f"scale {scale} has only logits, no features to match")
        distances = [
            F.l1_loss(fake_feature, real_feature.detach())
            for real_feature, fake_feature in zip(real_blocks[:-1], fake_blocks[:-1], strict=True)
        ]
        per_scale.append(torch.stack(distances).mean())
    return torch.stack(per_scale).mean()
