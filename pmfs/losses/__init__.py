"""Losses: landmark (stages 1 and 2); pixel, perceptual (VGG19), hinge GAN and feature matching
(stage 3)."""

from pmfs.losses.gan import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss
from pmfs.losses.image import masked_l1, warp_loss
from pmfs.losses.landmarks import LandmarkLossWeights, landmark_losses
from pmfs.losses.perceptual import PerceptualLoss

__all__ = [
    "LandmarkLossWeights",
    "PerceptualLoss",
    "discriminator_hinge_loss",
    "feature_matching_loss",
    "generator_hinge_loss",
    "landmark_losses",
    "masked_l1",
    "warp_loss",
]
