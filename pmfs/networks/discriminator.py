"""`MultiScalePatchDiscriminator`: stage 3's pix2pixHD-style multi-scale patch GAN critic.

`scales` patch discriminators D_s, D_s seeing the input average-pooled s times by 2. Each is a
stack of `layers` stride-2 4×4 convs with spectral norm and LeakyReLU(0.2), then a 3×3 conv to one
channel of patch logits. Every block's output is returned, for the feature matching loss
(`pmfs.losses.gan.feature_matching_loss`); the last of each scale is the logits map.

`MouthDiscriminator` is the same critic on the mouth box alone (issue 15): on the whole frame the
mouth is a few hundred of its pixels, and a renderer trained with L1 paints teeth grey and the
inside of the mouth brown where it is unsure where their edges lie, which lowers the contrast of
the mouth's edges. full.yaml and demo.yaml weigh it 0.03 (hinge) and 0.3 (feature matching).
With the demo's coarse-to-fine frames (256² from batch 200) the lower face at 256² keeps
0.93 ± 0.04 of the truth's Laplacian energy on the synthetic benchmark (seeds 0–4), against 0.62
trained on 128² frames without it (docs/results.md; without it:
experiments/ablations/no_mouth_gan.yaml).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pmfs.landmarks import mouth_box

MOUTH_CROP_SHARE = 3 / 8
"""Side of `MouthDiscriminator`'s crop ÷ the frame's: 48² at 128², 96² at 256², a little more than
the mouth box of an aligned face (33–42 px at 128² for the template face), so the crop keeps
every pixel of the box."""


class PatchDiscriminator(nn.Module):
    """One scale: `layers` stride-2 4×4 spectral-norm convs + a 1-channel 3×3 patch conv.

    Args:
        in_channels: input channels.
        channels: channels of the first block; doubled per block, capped at 8·channels.
        layers: stride-2 blocks; the logits map is 1/2^layers of the input size.
    """

    def __init__(self, in_channels: int, channels: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = in_channels
        for layer in range(layers):
            c_out = channels * 2 ** min(layer, 3)
            conv = spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            blocks.append(nn.Sequential(conv, nn.LeakyReLU(0.2)))
            c_in = c_out
        blocks.append(spectral_norm(nn.Conv2d(c_in, 1, 3, padding=1)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, C, H, W) → `layers` features (B, C_i, H/2^(i+1), W/2^(i+1)), then logits
        (B, 1, H/2^layers, W/2^layers)."""
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs


class MultiScalePatchDiscriminator(nn.Module):
    """Patch discriminators on the input at `scales` resolutions (full, 1/2, 1/4, …).

    Args:
        in_channels: channels of the input: the image (3) + the centre frame's sketch (S).
        channels: channels of each discriminator's first block.
        layers: stride-2 blocks of each discriminator.
        scales: number of discriminators; input side must be divisible by 2^(scales-1+layers).
    """

    def __init__(
        self, in_channels: int = 4, channels: int = 64, layers: int = 3, scales: int = 2
    ) -> None:
        super().__init__()
        if in_channels < 1 or channels < 1 or layers < 1 or scales < 1:
            raise ValueError(
                f"need in_channels, channels, layers, scales ≥ 1, got "
                f"{in_channels=}, {channels=}, {layers=}, {scales=}"
            )
        self.in_channels, self.layers = in_channels, layers
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, channels, layers) for _ in range(scales)
        )

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        """Score real or generated frames.

        Args:
            x: (B, in_channels, H, W) the image in [0, 1] concatenated with the centre sketch.

        Returns:
            per scale s (input pooled s times by 2): the outputs of each block; the last is the
            patch logits (B, 1, H/2^(s+layers), W/2^(s+layers)).
        """
        step = 2 ** (len(self.discriminators) - 1 + self.layers)
        if (
            x.ndim != 4
            or x.shape[1] != self.in_channels
            or x.shape[-1] % step
            or x.shape[-2] % step
        ):
            raise ValueError(
                f"need (B, {self.in_channels}, H, W) with H, W divisible by {step}, "
                f"got {tuple(x.shape)}"
            )
        outputs = []
        for scale, discriminator in enumerate(self.discriminators):
            if scale:
                x = F.avg_pool2d(x, 2, count_include_pad=False)  # (B, C, H/2^s, W/2^s)
            outputs.append(discriminator(x))
        return outputs


def mouth_crops(images: Tensor, landmarks: Tensor, side: int) -> Tensor:
    """The mouth boxes of a batch, resampled to one size (differentiable in `images`).

    Args:
        images: (B, C, H, H) frames.
        landmarks: (B, 68, 2) normalized landmarks of the frames.
        side: side of the crops in pixels.

    Returns:
        (B, C, side, side): each frame's `pmfs.landmarks.mouth_box`, sampled bilinearly.

    One batched sampling at the box's sub-pixel edges, for the training step; the metrics'
    `pmfs.metrics.image.crop_mouths` cuts whole pixels and resizes image by image instead.
    """
    size = images.shape[-1]
    box = mouth_box(landmarks, size).float() * (2 / size) - 1  # (B, 4) normalized edges
    theta = torch.zeros(images.shape[0], 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2] = (box[:, 2] - box[:, 0]) / 2, (box[:, 2] + box[:, 0]) / 2
    theta[:, 1, 1], theta[:, 1, 2] = (box[:, 3] - box[:, 1]) / 2, (box[:, 3] + box[:, 1]) / 2
    grid = F.affine_grid(theta, [images.shape[0], 1, side, side], align_corners=False)
    return F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


class MouthDiscriminator(nn.Module):
    """A `MultiScalePatchDiscriminator` that sees only the mouth box of each frame.

    The crop's side is `MOUTH_CROP_SHARE` of the frame's (rounded to what the critic's strides
    need), so its patches are a few pixels of the frame wide at any image size.

    Args:
        channels: channels of the first block.
        layers: stride-2 blocks.
        scales: number of discriminators (crop, crop/2, ...).
    """

    def __init__(self, channels: int = 32, layers: int = 3, scales: int = 1) -> None:
        super().__init__()
        self.critic = MultiScalePatchDiscriminator(3, channels, layers, scales)
        self.step = 2 ** (scales - 1 + layers)

    def crop_side(self, size: int) -> int:
        """Side of the crop for `size`² frames: a multiple of the critic's total stride."""
        return max(1, round(size * MOUTH_CROP_SHARE / self.step)) * self.step

    def forward(self, images: Tensor, landmarks: Tensor) -> list[list[Tensor]]:
        """Score the mouths of real or generated frames.

        Args:
            images: (B, 3, H, H) frames in [0, 1].
            landmarks: (B, 68, 2) their normalized landmarks.

        Returns:
            as `MultiScalePatchDiscriminator.forward`, for the (B, 3, s, s) crops
            (s = `crop_side(H)`).
        """
        return self.critic(mouth_crops(images, landmarks, self.crop_side(images.shape[-1])))
