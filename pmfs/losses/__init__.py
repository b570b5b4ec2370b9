"""Losses of stage 3: pixel, perceptual (VGG19), hinge GAN and feature matching."""

from pmfs.losses.gan import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss
from pmfs.losses.image import masked_l1, warp_loss
from pmfs.losses.perceptual import PerceptualLoss

__all__ = [
    "PerceptualLoss",
    "discriminator_hinge_loss",
    "feature_matching_loss",
    "generator_hinge_loss",
    "masked_l1",
    "warp_loss",
]
