"""The value types of stage 3 (`pmfs.stages.face_renderer`): its loss weights, its
discriminator's size (both typed `init_args` in the YAML configs) and one rendered batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from pmfs.networks.face_renderer import RendererNetOutput
from pmfs.networks.renderer_blocks import resize

__all__ = ["DiscriminatorConfig", "RendererLossWeights", "RendererOutput"]


@dataclass(frozen=True)
class RendererLossWeights:
    """Weights of the image-stage losses; 0 means the term is not computed (nor its network built).

    Attributes:
        l1: L1 over the whole frame.
        mouth: L1 inside the mouth box (`pmfs.landmarks.mouth_box`), on top of `l1`.
        perceptual: VGG19 feature loss (`pmfs.losses.PerceptualLoss`).
        adversarial: hinge GAN generator term (multi-scale patch discriminator).
        feature_matching: L1 between the discriminator's features of real and generated frames.
        warp: L1 between each warped reference and the target inside the face (warping only).
        mouth_adversarial: hinge GAN generator term of a second critic that sees only the mouth
            box (`pmfs.networks.discriminator.MouthDiscriminator`).
        mouth_feature_matching: feature matching against that critic.
    """

    l1: float = 1.0
    mouth: float = 2.0
    perceptual: float = 1.0
    adversarial: float = 0.05
    feature_matching: float = 1.0
    warp: float = 0.5
    mouth_adversarial: float = 0.0
    mouth_feature_matching: float = 0.0

    def __post_init__(self) -> None:
        negative = {k: v for k, v in self.__dict__.items() if v < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")

    @property
    def gan(self) -> bool:
        """Whether a discriminator is needed."""
        return self.adversarial > 0 or self.feature_matching > 0

    @property
    def mouth_gan(self) -> bool:
        """Whether the mouth's discriminator is needed."""
        return self.mouth_adversarial > 0 or self.mouth_feature_matching > 0


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Size of a multi-scale patch discriminator (built only when a GAN term is on): the frame's
    (`adversarial`, `feature_matching`) or the mouth's (`mouth_adversarial`,
    `mouth_feature_matching`)."""

    channels: int = 64
    layers: int = 3
    scales: int = 2


@dataclass
class RendererOutput:
    """One rendered batch.

    Attributes:
        image: (B, 3, H, W) the output frame: composited into the target (keep) or as generated.
        generated: (B, 3, H, W) the generator's frame before compositing.
        sketches: (B, T, S, h, h) sketches of the window's landmarks, at the network's input
            size h (`FaceRendererNet.input_size(H)`: the working size, or H).
        hidden: (B, 1, H, W) the part of the target hidden from the generator (1 = hidden;
            rasterised at the network's input size and upsampled).
        net: the generator's full output (confidence, flow, warped references).
    """

    image: Tensor
    generated: Tensor
    sketches: Tensor
    hidden: Tensor
    net: RendererNetOutput

    def centre_sketch(self) -> Tensor:
        """(B, S, H, W): the centre frame's sketch at the output size."""
        centre = self.sketches[:, self.sketches.shape[1] // 2]
        return resize(centre, self.image.shape[-1])
