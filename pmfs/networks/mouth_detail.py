"""`MouthDetail`: the renderer's mouth painted at the output size (issue 15: lips and teeth).

With a working size, the renderer's network sees the face at 64² or 128². A slightly open mouth
shows a sliver of teeth a few pixels tall at 256² output: the network cannot draw it at its own
size, references with closed mouths cannot warp it in, and upsampling the decoded RGB blurs it.
The lips' outline is blurred too, by the soft merge of K references that do not quite align.
The *shapes* are known at any resolution, though: the outer and inner lips are the target's
polygons 48–59 and 60–67, which the synthetic renderer and real faces alike draw the mouth
through. `mouth_fields` rasterises both and coordinates at the output size; `MouthDetail`
paints the mouth with a per-pixel MLP (1×1 convolutions) over those fields, the network's last
decoder features upsampled, the frame so far and the merged references: the lips as their mean
colour plus a per-pixel change, the interior as its mean colour under layers (teeth, tongue)
with learned outlines, joined along the inner lips' anti-aliased edge.

Where a layer lies is a function of inputs measured in mouth widths, not pixels, so a head trained
at 128² puts it in the same place at 256² or 512²; its outline is drawn one output pixel wide
(`paint_layers`), so edges are as sharp as the output's pixels at any resolution. A per-pixel MLP
alone would not do: its transitions, learned at 128², would be twice as wide at 256² (the first
version painted visible teeth but lost Laplacian energy). Colours start from each region's mean
colour in the frame, not from the frame's pixels: the frame inside the mouth is the blend of the
references and the decoder's RGB at the working size, and a residual over it kept that blur at
256² (docs/results.md, 5 seeds: pooled lower-face sharpness 0.47 ± 0.04 with residuals over the
frame and the interior alone painted, 0.60 ± 0.09 with both regions flat). The paint enters
the frame through the outer lips' anti-aliased coverage, so pixels outside the lips are never
touched. The MLP runs on the square window of the frame that holds the batch's mouths
(`mouth_window`), not the whole frame.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmfs.landmarks import normalized_to_pixels, pixels_to_normalized
from pmfs.masks import polygon_mask, segment_sq_distance

OUTER_LIPS = torch.arange(48, 60)
"""Landmarks of the outer-lip polygon (iBUG 68: 48 and 54 the corners)."""
INNER_LIPS = torch.arange(60, 68)
"""Landmarks of the inner-lip polygon (iBUG 68: 60 and 64 the corners, 61–63 upper, 65–67 lower)."""
UPPER_INNER = (60, 61, 62, 63, 64)
LOWER_INNER = (64, 65, 66, 67, 60)
FIELDS = 6
"""Channels of `mouth_fields`."""
LAYERS = 3
"""Layers `MouthDetail` paints over the interior's base colour."""
DISTANCE_ROWS = [3 + 4 * layer + 3 for layer in range(LAYERS)]
"""Rows of `MouthDetail`'s last convolution that give the layers' signed distances."""
OUTLINE_INIT = 0.01
"""Standard deviation of those rows' initial weights (every other row starts at 0)."""


def _polyline_distance(px: Tensor, py: Tensor, line: Tensor) -> Tensor:
    """(B, H, W) distance of the points `px` (1, 1, W), `py` (1, H, 1) to the (B, P, 2)
    polylines (`pmfs.masks.segment_sq_distance` over their P − 1 segments)."""
    ends = [line[:, i].view(-1, 2, 1, 1) for i in range(line.shape[1])]  # (B, 2, 1, 1) each
    squared = [
        segment_sq_distance(px, py, a[:, 0], a[:, 1], b[:, 0], b[:, 1]) for a, b in pairwise(ends)
    ]
    return torch.stack(squared).amin(dim=0).sqrt()


def mouth_window(landmarks: Tensor, size: int, margin: int = 2) -> tuple[int, int, int]:
    """The square of the frame that holds every mouth of the batch: `(x0, y0, side)` in pixels,
    `margin` pixels around the outer lips' extent, inside the `size`² frame."""
    pixels = normalized_to_pixels(landmarks.detach()[:, OUTER_LIPS].float(), size)  # (B, 12, 2)
    low = pixels.flatten(0, 1).amin(dim=0).floor() - margin
    high = pixels.flatten(0, 1).amax(dim=0).ceil() + margin + 1
    side = int(min(size, max(1.0, float((high - low).max()))))
    x0, y0 = (int(min(max(v, 0.0), size - side)) for v in low.tolist())
    return x0, y0, side


def _window_points(window: tuple[int, int, int], size: int, device: torch.device) -> Tensor:
    """(side, side, 2) normalized `(x, y)` centres of the window's pixels in the `size`² frame."""
    x0, y0, side = window
    grid = torch.arange(side, device=device, dtype=torch.float32)
    pixels = torch.stack(torch.meshgrid(grid + x0, grid + y0, indexing="xy"), dim=-1)
    return pixels_to_normalized(pixels, size)


@torch.no_grad()
def mouth_fields(
    landmarks: Tensor, size: int, window: tuple[int, int, int] | None = None
) -> Tensor:
    """The mouth's shape and coordinates at `size`², from the target's landmarks.

    Args:
        landmarks: (B, 68, 2) normalized `(x, y)` landmarks (`grid_sample(align_corners=False)`
            units) of the frame to render.
        size: side of the output in pixels.
        window: `(x0, y0, side)`, the square of the frame to compute (`mouth_window`); None:
            the whole frame.

    Returns:
        (B, 6, side, side): the outer- and the inner-lip polygon's coverage (each anti-aliased
        over one pixel); the pixel's position along the corner-to-corner axis and across it
        (÷ half the mouth's width, 0 at the mouth's centre); its distance to the upper and to
        the lower inner lip (÷ the mouth's width). Only the coverage depends on the pixel size.
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")
    x0, y0, side = (0, 0, size) if window is None else window
    lm = landmarks.detach().float()
    corner = lm.new_tensor([x0, y0])
    coverage = [  # (B, 1, side, side) each: the outer, then the inner lips, in window pixels
        polygon_mask(
            pixels_to_normalized(normalized_to_pixels(lm[:, lips], size) - corner, side),
            side,
            feather=1.0,
        )
        for lips in (OUTER_LIPS, INNER_LIPS)
    ]
    points = _window_points((x0, y0, side), size, lm.device)  # (side, side, 2) pixel centres
    px, py = points[None, :1, :, 0], points[None, :, :1, 1]  # (1, 1, side), (1, side, 1)
    left, right = lm[:, 60], lm[:, 64]  # (B, 2)
    half = ((right - left).norm(dim=-1) / 2).clamp_min(1e-4).view(-1, 1, 1)  # (B, 1, 1)
    along = ((right - left) / (2 * half[:, 0])).view(-1, 2, 1, 1)  # (B, 2, 1, 1) unit axis
    dx, dy = px - ((left + right) / 2)[:, :1, None], py - ((left + right) / 2)[:, 1:, None]
    u = (dx * along[:, 0] + dy * along[:, 1]) / half  # (B, side, side)
    v = (dy * along[:, 0] - dx * along[:, 1]) / half
    upper = _polyline_distance(px, py, lm[:, UPPER_INNER]) / (2 * half)
    lower = _polyline_distance(px, py, lm[:, LOWER_INNER]) / (2 * half)
    coords = torch.stack([u, v, upper, lower], dim=1)  # (B, 4, side, side)
    return torch.cat([*coverage, coords.clamp(-4.0, 4.0)], dim=1)


def paint_layers(base: Tensor, out: Tensor, width: Tensor) -> Tensor:
    """Composite `MouthDetail`'s layers over a base colour (see its docstring).

    Args:
        base: (B, 3, H, W) the colour under the layers (`MouthDetail`: the interior's mean).
        out: (B, 3 + 4·L, H, W) the MLP's output: the base colour's Δ, then per layer its
            colour's Δ (3) and its signed distance (1, mouth widths, positive inside).
        width: (B,) the mouth's width in pixels of this frame.

    Returns:
        (B, 3, H, W) the paint: each layer's outline about one pixel wide at any `width`.

    With every distance at 0 the lowest layer would never separate from the base colour: both
    start at Δ = 0, each behind half the cover, so they receive the same gradient, stay equal,
    and the layer's outline gets none (in an earlier head its weights were still exactly 0 after
    the benchmark's 400 batches). `MouthDetail` therefore starts the distances at small random
    values (`OUTLINE_INIT`).
    """
    paint = base + out[:, :3]
    for layer in out[:, 3:].split(4, dim=1):  # (B, 4, H, W): Δ colour, distance
        cover = torch.sigmoid(4 * layer[:, 3:] * width.view(-1, 1, 1, 1))
        paint = torch.lerp(paint, base + layer[:, :3], cover)
    return paint


def region_mean(image: Tensor, weight: Tensor) -> Tensor:
    """(B, 3, 1, 1) the `weight`-weighted mean colour of each image (B, 3, H, W) over a region
    (B, 1, H, W) ≥ 0; 0 where the region is empty (a closed mouth has no interior)."""
    total = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (image * weight).sum(dim=(2, 3), keepdim=True) / total


class MouthDetail(nn.Module):
    """Paints the mouth at the output size: flat colours with crisp edges.

    Per pixel, an MLP over `mouth_fields`, the decoder features upsampled, the frame so far and
    the merged references gives the lips' colour change, the interior's base colour change and
    `LAYERS` layers (teeth, tongue: whatever the data shows), each a colour change and a signed
    distance to its outline in mouth widths. A layer covers `sigmoid(4 · d · w)` of a pixel, w
    the mouth's width in pixels: its outline is as sharp as the output's pixels (about one pixel
    from 10 % to 90 %) at any resolution, while where it lies is learned in resolution-free
    units. Colours are changes to each region's mean colour in the frame so far (`region_mean`:
    the lips' over outer − inner coverage, the interior's over the inner coverage), and the two
    regions meet along the inner lips' coverage c_in; the result enters the frame through the
    outer lips' coverage c_out:

        lips = mean_lips + Δ_lips
        interior = lerp(... lerp(mean_in + Δ_0, mean_in + Δ_1, m_1) ..., mean_in + Δ_L, m_L)
        out = image + c_out · (lerp(lips, interior, c_in) − image)

    Every Δ starts at 0, so the head starts by painting the lips and the interior each in its
    mean colour, with the polygons' one-pixel edges. The layers' distances start as small random
    functions of the inputs (`OUTLINE_INIT`), not at 0: from d = 0 every layer covers half of
    every pixel, all layer colours get the same gradient, and a per-pixel colour change could
    fit the interior smoothly before any outline moved (one seed of five never formed its
    layers; with random outlines +0.62 ± 0.76 dB mouth PSNR over five seeds, docs/results.md).

    Args:
        feature_channels: C, channels of the decoder features it reads (level 0 of the U-Net).
        hidden: width of the MLP's two hidden layers.
    """

    def __init__(self, feature_channels: int, hidden: int = 32) -> None:
        super().__init__()
        if feature_channels < 1 or hidden < 1:
            raise ValueError(f"need feature_channels, hidden ≥ 1, got {feature_channels}, {hidden}")
        out = nn.Conv2d(hidden, 3 + 4 * LAYERS + 3, 1)  # interior (base, layers), then lips
        nn.init.zeros_(out.weight)  # every colour change starts at 0: the start is flat
        nn.init.zeros_(out.bias)  # type: ignore[arg-type]
        with torch.no_grad():  # each layer's outline starts as its own small random function
            for row in DISTANCE_ROWS:
                out.weight[row].normal_(0.0, OUTLINE_INIT)
        self.mlp = nn.Sequential(
            nn.Conv2d(FIELDS + feature_channels + 6, hidden, 1),
            nn.SiLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.SiLU(),
            out,
        )

    def forward(self, image: Tensor, merged: Tensor, features: Tensor, landmarks: Tensor) -> Tensor:
        """Paint the mouth into the frame.

        Args:
            image: (B, 3, H, W) the renderer's frame so far, at the output size.
            merged: (B, 3, H, W) the confidence-merged, warped references.
            features: (B, C, h, h) the decoder's last features at the network's size h ≤ H.
            landmarks: (B, 68, 2) normalized landmarks of the frame.

        Returns:
            (B, 3, H, W) the frame, changed only inside the outer-lip polygon.
        """
        size = image.shape[-1]
        x0, y0, side = window = mouth_window(landmarks, size)
        fields = mouth_fields(landmarks, size, window)  # (B, 6, side, side)
        crop = (..., slice(y0, y0 + side), slice(x0, x0 + side))
        grid = _window_points(window, size, image.device)  # (side, side, 2) pixel centres
        local = F.grid_sample(  # = bilinear upsampling to the output size, on the window only
            features,
            grid.expand(features.shape[0], -1, -1, -1),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )  # (B, C, side, side)
        frame = image[crop]  # (B, 3, side, side)
        inputs = [fields, local, frame, merged[crop]]
        out = self.mlp(torch.cat([x.to(frame.dtype) for x in inputs], dim=1))
        out = out.to(frame.dtype)  # (B, 3 + 4·L + 3, side, side); autocast may give bf16
        width = (landmarks[:, 64] - landmarks[:, 60]).detach().norm(dim=-1) * size / 2  # (B,) px
        outer, inner = fields[:, :1].to(frame.dtype), fields[:, 1:2].to(frame.dtype)
        lips = region_mean(frame, (outer - inner).clamp_min(0.0)) + out[:, -3:]
        interior = paint_layers(region_mean(frame, inner).expand_as(frame), out[:, :-3], width)
        change = outer * (torch.lerp(lips, interior, inner) - frame)  # (B, 3, side, side)
        return image + F.pad(change, (x0, size - x0 - side, y0, size - y0 - side))
