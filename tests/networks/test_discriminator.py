"""Stage 3's critics: `MultiScalePatchDiscriminator` (shapes per scale, spectral norm,
gradients) and `MouthDiscriminator` (the mouth box, cropped)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from pmfs.landmarks import TEMPLATE, mouth_box, mouth_box_mask
from pmfs.networks import MouthDiscriminator, MultiScalePatchDiscriminator
from pmfs.networks.discriminator import mouth_crops


@pytest.mark.parametrize(("layers", "scales"), [(3, 2), (2, 3)])
def test_outputs_per_scale_and_block(layers: int, scales: int) -> None:
    disc = MultiScalePatchDiscriminator(in_channels=5, channels=8, layers=layers, scales=scales)
    out = disc(torch.rand(2, 5, 64, 64))
    assert len(out) == scales
    for scale, blocks in enumerate(out):
        assert len(blocks) == layers + 1
        for i, feature in enumerate(blocks[:-1]):
            side = 64 // 2 ** (scale + i + 1)
            assert feature.shape == (2, 8 * 2**i, side, side)
        side = 64 // 2 ** (scale + layers)
        assert blocks[-1].shape == (2, 1, side, side)  # patch logits


def test_gradients_reach_every_parameter_and_the_input() -> None:
    torch.manual_seed(0)
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    x = torch.rand(2, 4, 64, 64, requires_grad=True)
    loss = sum(blocks[-1].mean() for blocks in disc(x))
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_spectral_norm_bounds_every_conv() -> None:
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 * 4 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    disc.train()
    for _ in range(20):  # power iteration converges while training
        disc(torch.rand(1, 4, 32, 32))
    disc.eval()
    with torch.no_grad():
        sigmas = [torch.linalg.matrix_norm(c.weight.flatten(1), ord=2).item() for c in convs]
    assert sigmas == pytest.approx([1.0] * len(convs), abs=0.05)


def test_bad_input_raises() -> None:
    disc = MultiScalePatchDiscriminator(in_channels=4, channels=8)
    with pytest.raises(ValueError, match="divisible by 16"):
        disc(torch.rand(1, 4, 40, 40))
    with pytest.raises(ValueError, match="\\(B, 4, H, W\\)"):
        disc(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="layers"):
        MultiScalePatchDiscriminator(layers=0)


def test_mouth_crops_are_the_mouth_box_at_the_crop_size() -> None:
    """A frame that is 1 inside its mouth box and 0 outside crops to ones (but for the crop's
    one-pixel rim, where bilinear sampling meets the box's edge); the gradient of the crop
    reaches only pixels in and next to the box."""
    landmarks = torch.from_numpy(TEMPLATE.copy())[None].repeat(2, 1, 1) * 0.8
    landmarks[1] += torch.tensor([0.1, -0.05])  # the second mouth elsewhere
    frame = mouth_box_mask(mouth_box(landmarks, 128), 128).expand(-1, 3, -1, -1).clone()
    frame.requires_grad_(True)
    crops = mouth_crops(frame, landmarks, 48)
    assert crops.shape == (2, 3, 48, 48)
    assert torch.allclose(crops[..., 1:-1, 1:-1], torch.ones(()), atol=1e-5)
    crops.sum().backward()
    assert frame.grad is not None
    near = F.max_pool2d(mouth_box_mask(mouth_box(landmarks, 128), 128), 3, 1, 1) > 0
    assert frame.grad.abs().sum() > 0 and frame.grad[~near.expand_as(frame)].abs().max() == 0


@pytest.mark.parametrize(("size", "side"), [(32, 16), (128, 48), (256, 96)])
def test_the_mouth_critic_sees_crops_of_a_fixed_share_of_the_frame(size: int, side: int) -> None:
    torch.manual_seed(0)
    critic = MouthDiscriminator(channels=8, layers=3, scales=1)
    assert critic.crop_side(size) == side
    landmarks = torch.from_numpy(TEMPLATE.copy())[None].repeat(2, 1, 1) * 0.8
    frames = torch.rand(2, 3, size, size, requires_grad=True)
    (scale,) = critic(frames, landmarks)
    assert scale[-1].shape == (2, 1, side // 8, side // 8)  # patch logits of the crop
    scale[-1].mean().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
