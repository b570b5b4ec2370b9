"""Issue 15, lips and teeth: `MouthDetail` paints the mouth at the output size.

The fields are the outer- and inner-lip polygons and coordinates in mouth widths (the same at
every resolution, computed on a window or the whole frame alike); the head starts by painting the
lips and the interior each in its mean colour; whatever its weights, it changes no pixel outside
the outer lips; the lips' edges and a layer's outline are one output pixel wide at 128², 256² and
512² (features at 32²); the renderer's loss reaches the head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pmfs.landmarks import TEMPLATE, normalized_to_pixels
from pmfs.masks import polygon_mask
from pmfs.networks import FaceRendererNet, MouthDetail, mouth_fields
from pmfs.networks.mouth_detail import (
    DISTANCE_ROWS,
    INNER_LIPS,
    LAYERS,
    OUTER_LIPS,
    mouth_window,
    paint_layers,
    region_mean,
)


def _open_mouths(batch: int = 2) -> torch.Tensor:
    """(B, 68, 2) the template face with the lower inner lip dropped (an open mouth)."""
    landmarks = torch.from_numpy(TEMPLATE.copy())[None].repeat(batch, 1, 1)
    landmarks[:, 65:68, 1] += torch.linspace(0.03, 0.06, batch)[:, None]
    landmarks[1:, :, 0] += 0.05  # the second face elsewhere in the frame
    return landmarks


def test_fields_are_the_lips_and_coordinates_in_mouth_widths() -> None:
    landmarks = _open_mouths()
    fields = mouth_fields(landmarks, 128)
    assert fields.shape == (2, 6, 128, 128)
    for channel, lips in enumerate((OUTER_LIPS, INNER_LIPS)):
        expected = polygon_mask(landmarks[:, lips], 128, feather=1.0)
        assert torch.allclose(fields[:, channel : channel + 1], expected)
    # the coordinates are analytic: at 256² the pixel centres sit half-way between 128²'s,
    # so averaging 2 × 2 blocks of the linear ones (u, v) gives 128²'s exactly
    large = mouth_fields(landmarks, 256)
    pooled = F.avg_pool2d(large[:, 2:4], 2)
    inside = fields[:, 2:4].abs() < 3.9  # away from the clamp
    assert torch.allclose(pooled[inside], fields[:, 2:4][inside], atol=1e-5)
    # at the corner landmark 60, u = -1; the distance to the upper lip is 0 on its landmarks
    assert fields[:, 4].amin() < 0.02 and fields[:, 5].amin() < 0.02


def test_a_window_gives_the_whole_frame_s_values() -> None:
    landmarks = _open_mouths()
    x0, y0, side = window = mouth_window(landmarks, 256)
    assert side < 128  # the two mouths' square, much smaller than the frame
    whole = mouth_fields(landmarks, 256)
    assert torch.allclose(
        mouth_fields(landmarks, 256, window), whole[..., y0 : y0 + side, x0 : x0 + side], atol=1e-5
    )
    outside = whole[:, 0].clone()
    outside[:, y0 : y0 + side, x0 : x0 + side] = 0
    assert outside.sum() == 0  # nothing of the mouths lies outside the window


def _inputs(size: int, channels: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    image, merged = (
        torch.rand(2, 3, size, size, generator=g),
        torch.rand(2, 3, size, size, generator=g),
    )
    return image, merged, torch.rand(2, channels, 32, 32, generator=g)


def test_the_head_starts_flat_and_only_paints_inside_the_lips() -> None:
    """At the start the lips and the interior are each their mean colour in the frame (no
    pixel of the frame's own blur survives inside the mouth); whatever the weights, pixels
    outside the outer lips keep their values."""
    torch.manual_seed(0)
    head = MouthDetail(8, hidden=16)
    image, merged, features = _inputs(256)
    landmarks = _open_mouths()
    outer = polygon_mask(landmarks[:, OUTER_LIPS], 256, feather=1.0)
    inner = polygon_mask(landmarks[:, INNER_LIPS], 256, feather=1.0)
    start = head(image, merged, features, landmarks)
    for region, mean in (
        ((outer == 1) & (inner == 0), region_mean(image, outer - inner)),
        ((outer == 1) & (inner == 1), region_mean(image, inner)),
    ):
        assert region.sum() > 20
        pixels = torch.where(region, start, mean)  # (B, 3, H, W): the mean outside the region
        assert torch.allclose(pixels, mean.expand_as(pixels), atol=1e-5)
        assert not torch.allclose(
            image[region.expand_as(image)], mean.expand_as(image)[region.expand_as(image)]
        )  # the frame there was not flat
    for param in head.parameters():  # any weights at all
        torch.nn.init.normal_(param, std=0.5)
    painted = head(image, merged, features, landmarks)
    changed = (painted - image).abs().amax(dim=1, keepdim=True) > 0
    assert changed[inner > 0].all()
    assert not changed[outer == 0].any()  # pixels outside the outer lips keep their values


def test_the_layers_start_apart() -> None:
    """Colours start at 0 but each layer's outline is its own random function, so the base colour
    and the layers get different gradients from the first batch (with every distance at 0 the base
    and the lowest layer would get the same gradient forever, and the others a multiple of it)."""
    torch.manual_seed(0)
    head = MouthDetail(8, hidden=16)
    last = head.mlp[-1]
    distance = torch.zeros(last.out_channels, dtype=torch.bool)
    distance[DISTANCE_ROWS] = True
    assert last.weight[distance].abs().amin() > 0 and last.weight[~distance].abs().amax() == 0
    image, merged, features = _inputs(128)
    target = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    (head(image, merged, features, _open_mouths()) - target).abs().mean().backward()
    grad = last.weight.grad
    colours = [grad[:3], *[grad[3 + 4 * i : 6 + 4 * i] for i in range(LAYERS)]]  # base, layers
    for i, a in enumerate(colours):
        for b in colours[i + 1 :]:
            cosine = F.cosine_similarity(a.flatten(), b.flatten(), dim=0)
            assert cosine < 0.999  # not the same direction


@pytest.mark.parametrize("lips", ["inner", "outer"])
def test_the_lips_edges_are_the_output_s_pixels(lips: str) -> None:
    """A head told to paint white inside the inner lips (or the whole mouth) over a black frame:
    its output at 256² is that polygon's coverage, with its one-pixel edge, though its features
    are at 32² (no upsampling of the network's RGB can give that)."""
    head = MouthDetail(8, hidden=16)
    with torch.no_grad():
        bias = head.mlp[-1].bias
        bias[:3] = 1.0  # the interior's base colour: its mean (0) + 1
        bias[3:-3].view(LAYERS, 4)[:, 3] = -10.0  # no layer covers anything
        bias[-3:] = 1.0 if lips == "outer" else 0.0  # the lips' colour: their mean (0) + Δ
    image, merged, features = _inputs(256)
    landmarks = _open_mouths()
    out = head(torch.zeros_like(image), merged, features, landmarks).clamp(0, 1)
    polygon = OUTER_LIPS if lips == "outer" else INNER_LIPS
    coverage = polygon_mask(landmarks[:, polygon], 256, feather=1.0)
    assert (out - coverage).abs().max() < 1e-4
    assert ((coverage > 0.05) & (coverage < 0.95)).sum() < 0.5 * (coverage > 0.95).sum()


@pytest.mark.parametrize("size", [128, 256, 512])
def test_a_layer_s_outline_is_one_pixel_wide_at_every_size(size: int) -> None:
    """A layer whose signed distance is linear in mouth widths (as the MLP's output is smooth in
    them): its outline lies at the same place at every size and is at most 2 pixels wide."""
    landmarks = _open_mouths(1)
    fields = mouth_fields(landmarks, size)  # (1, 6, S, S)
    width = (landmarks[:, 64] - landmarks[:, 60]).norm(dim=-1) * size / 2  # (1,) px
    out = torch.zeros(1, 3 + 4 * LAYERS, size, size)
    out[:, 3:6] = 1.0  # layer 1 is white
    out[:, 6] = (fields[:, 2] - 0.2) / 2  # inside where u > 0.2 (u in half mouth widths)
    out[:, 10::4] = -10.0  # the other layers cover nothing
    paint = paint_layers(torch.zeros(1, 3, size, size), out, width)[0, 0]  # (S, S)
    row = paint[int(normalized_to_pixels(landmarks[0, 62], size)[1].round())]
    assert ((row > 0.1) & (row < 0.9)).sum() <= 2  # ~1.1 px from 10 % to 90 %
    crossing = int((row > 0.5).float().argmax())  # first pixel inside
    expected = normalized_to_pixels(
        landmarks[0, 60] + 0.6 * (landmarks[0, 64] - landmarks[0, 60]), size
    )[0]  # u = 0.2: 60 % of the way from corner 60 to corner 64
    assert abs(crossing - float(expected)) <= 1.0


def test_the_renderer_s_loss_reaches_the_head_and_needs_landmarks() -> None:
    torch.manual_seed(0)
    net = FaceRendererNet(
        window=3,
        channels=8,
        levels=3,
        max_channels=32,
        res_blocks=1,
        working_size=32,
        mouth_detail=16,
    )
    landmarks = _open_mouths()
    refs = net.encode_references(
        torch.rand(2, 2, 3, 128, 128),
        torch.rand(2, 2, 1, 32, 32),
        landmarks[:, None].repeat(1, 2, 1, 1),
    )
    sketches, target = torch.rand(2, 3, 1, 32, 32), torch.rand(2, 3, 32, 32)
    net(sketches, target, refs, landmarks).image.mean().backward()
    assert net.mouth_detail is not None
    assert net.mouth_detail.mlp[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mouth_detail head needs the target's landmarks"):
        net(sketches, target, refs)
    with pytest.raises(ValueError, match="mouth_detail must be ≥ 0"):
        FaceRendererNet(mouth_detail=-1)


def test_the_head_runs_under_bf16_autocast() -> None:
    """bf16-mixed training (GPU) mixes dtypes in the head's inputs; the frame keeps its own."""
    torch.manual_seed(0)
    head = MouthDetail(8, hidden=16)
    for param in head.parameters():
        torch.nn.init.normal_(param, std=0.3)
    image, merged, features = _inputs(128)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(image, merged, features.bfloat16(), _open_mouths())
    assert out.dtype == image.dtype and torch.isfinite(out).all()
    assert not torch.equal(out, image)
