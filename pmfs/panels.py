"""Media panels: the one home of what training videos and paper figures draw.

- `image_panels`: float [0, 1] images → uint8 RGB.
- `sketch_panels`: renderer / landmark sketches (1 = ink) → black ink on white paper, the one
  "ink to black on white" conversion.
- `error_heatmap`: per-pixel mean absolute error over RGB through inferno on a fixed scale
  `0 … ERROR_SCALE` (black where the prediction is exact), so heatmaps of different epochs and
  figures compare.
- Grids: `image_grid` stacks frames spread over a clip (the videos' PNG grid); `compose_grid`
  pastes labelled rows of panels under column headers on a white canvas (the figures), with
  `GridLayout` holding the pixel arithmetic.

Panels are (H, W, 3) uint8 RGB numpy arrays (with leading batch dimensions where given).
Used by `callbacks/` (validation media) and `pmfs.evaluation.figures` (`pmfs figure`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

ERROR_SCALE = 0.5
"""Mean absolute error (RGB in [0, 1]) shown as the colormap's top colour; larger is clipped."""

# inferno at t = 0, 1/8, …, 1 (RGB 0..255), used when matplotlib is not installed
_INFERNO_ANCHORS = np.array(
    [
        [0, 0, 4],
        [31, 12, 72],
        [85, 15, 109],
        [136, 34, 106],
        [186, 54, 85],
        [227, 89, 51],
        [249, 140, 10],
        [249, 201, 50],
        [252, 255, 164],
    ],
    dtype=np.float64,
)

# -- panels -----------------------------------------------------------------------------------


def image_panels(images: Tensor) -> np.ndarray:
    """Float images → uint8 RGB panels.

    Args:
        images: (..., 3, H, W) float, [0, 1] (clamped).

    Returns:
        (..., H, W, 3) uint8 RGB.
    """
    rgb = images.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return rgb.movedim(-3, -1).cpu().numpy()


def sketch_panels(sketches: Tensor) -> np.ndarray:
    """Sketches drawn as black ink on white paper, as the paper draws them.

    Args:
        sketches: (..., S, H, W) ink intensities in [0, 1] (1 = ink); the S channels (sketch
            groups or frames) are merged by their maximum.

    Returns:
        (..., H, W, 3) uint8 RGB, grey: 255 where there is no ink, 0 under full ink.
    """
    ink = sketches.detach().float().amax(dim=-3).clamp(0.0, 1.0)  # (..., H, W)
    paper = (1.0 - ink).mul(255.0).round().to(torch.uint8).cpu().numpy()
    return np.repeat(paper[..., None], 3, axis=-1)


def colormap_table() -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of inferno: matplotlib's if installed, else built in."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        t = np.linspace(0.0, 1.0, 256)
        knots = np.linspace(0.0, 1.0, len(_INFERNO_ANCHORS))
        table = np.stack([np.interp(t, knots, _INFERNO_ANCHORS[:, c]) for c in range(3)], -1)
        return table.round().astype(np.uint8)
    rgba = matplotlib.colormaps["inferno"](np.linspace(0.0, 1.0, 256))
    return (np.asarray(rgba)[:, :3] * 255.0).round().astype(np.uint8)


def error_heatmap(generated: Tensor, truth: Tensor, scale: float = ERROR_SCALE) -> Tensor:
    """Per-pixel mean absolute error over RGB, coloured.

    Args:
        generated: (N, 3, H, W) float [0, 1].
        truth: (N, 3, H, W) float [0, 1].
        scale: error shown as the colormap's top colour (fixed, so epochs compare).

    Returns:
        (N, H, W, 3) uint8 RGB; error 0 is `colormap_table()[0]`, ≥ `scale` is its last row.
    """
    if generated.shape != truth.shape or generated.ndim != 4 or generated.shape[1] != 3:
        raise ValueError(
            f"generated and truth must both be (N, 3, H, W), got {tuple(generated.shape)} and "
            f"{tuple(truth.shape)}"
        )
    error = (generated.float() - truth.float()).abs().mean(dim=1)  # (N, H, W)
    index = (error / scale).clamp(0.0, 1.0).mul(255.0).round().long().cpu()
    return torch.from_numpy(colormap_table())[index]


# -- grids ------------------------------------------------------------------------------------


def image_grid(panels: np.ndarray, rows: int) -> np.ndarray:
    """`rows` frames spread evenly over the clip (first … last), stacked top to bottom.

    Args:
        panels: (N, H, W', 3) uint8 frames (e.g. a video's side-by-side panels).
        rows: frames to show (at most N).

    Returns:
        (min(rows, N)·H, W', 3) uint8 RGB.
    """
    picks = np.linspace(0, len(panels) - 1, min(rows, len(panels))).round().astype(np.int64)
    return np.concatenate(list(panels[picks]), axis=0)


@dataclass(frozen=True)
class GridLayout:
    """Pixel arithmetic of a figure: labelled rows of square panels under column headers.

    Attributes:
        panel: side of every panel (panels of another size are resized).
        gap: white space between panels and around the grid.
        label_width: width of the row-label column (labels are written vertically).
        header_height: height of the column-header row (two lines of text).
        font_size: text size in pixels.
    """

    panel: int
    gap: int
    label_width: int
    header_height: int
    font_size: int

    @classmethod
    def for_panel(cls, panel: int) -> GridLayout:
        """Text and spacing scaled to the panel size (legible from 64² panels up)."""
        font_size = max(12, round(panel * 0.09))
        return cls(
            panel=panel,
            gap=max(4, panel // 32),
            label_width=3 * font_size,
            header_height=3 * font_size,
            font_size=font_size,
        )

    def size(self, rows: int, cols: int) -> tuple[int, int]:
        """(width, height) of a figure of `rows` × `cols` panels."""
        width = self.label_width + cols * (self.panel + self.gap) + self.gap
        height = self.header_height + rows * (self.panel + self.gap) + self.gap
        return width, height

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """(x, y) of the top-left pixel of panel (`row`, `col`)."""
        x = self.label_width + self.gap + col * (self.panel + self.gap)
        y = self.header_height + row * (self.panel + self.gap)
        return x, y


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when the system has it, else PIL's bundled default font."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """Split `text` into lines no wider than `width` pixels (a long word keeps its own line)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]


def _draw_text(
    draw: ImageDraw.ImageDraw, text: str, box: tuple[int, int, int, int], size: int
) -> None:
    """Write `text` centred in `box` (x, y, width, height), wrapped at words and "\\n", the
    font shrunk from `size` until every line fits."""
    x, y, width, height = box
    while True:
        font = _font(size)
        lines = [line for part in text.split("\n") for line in _wrap(part, font, width)]
        line_height = round(size * 1.2)
        fits = len(lines) * line_height <= height
        if size <= 6 or (fits and max(font.getlength(line) for line in lines) <= width):
            break
        size -= 1
    top = y + (height - line_height * len(lines)) / 2 + line_height / 2
    for i, line in enumerate(lines):
        centre = (x + width / 2, top + i * line_height)
        draw.text(centre, line, fill="black", font=font, anchor="mm")


def _row_label(text: str, layout: GridLayout) -> Image.Image:
    """A row label as the paper writes it: wrapped, centred, rotated to read bottom-up."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (layout.panel, layout.label_width), "white")  # label, unrotated
    _draw_text(ImageDraw.Draw(strip), text, (0, 0, *strip.size), layout.font_size)
    return strip.rotate(90, expand=True)  # (label_width, panel)


def compose_grid(
    panels: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_headers: Sequence[str],
    layout: GridLayout,
) -> Image.Image:
    """Paste rows of panels on a white canvas with row labels and column headers.

    Args:
        panels: rows × cols (h, w, 3) uint8 RGB panels; any size, resized to `layout.panel`.
        row_labels: one label per row (written vertically left of it).
        col_headers: one header per column (written above the first row; "\n" splits it
            into two lines).
        layout: the pixel arithmetic.

    Returns:
        The figure, `layout.size(rows, cols)` pixels, RGB.
    """
    from PIL import Image, ImageDraw

    cols = len(col_headers)
    if len(panels) != len(row_labels) or any(len(row) != cols for row in panels):
        raise ValueError(
            f"need one label per row and {cols} panels per row (one per header), got "
            f"{len(row_labels)} labels for rows of {[len(row) for row in panels]} panels"
        )
    figure = Image.new("RGB", layout.size(len(panels), cols), "white")
    draw = ImageDraw.Draw(figure)
    for col, header in enumerate(col_headers):
        box = (layout.origin(0, col)[0], 0, layout.panel, layout.header_height)
        _draw_text(draw, header, box, layout.font_size)
    for row, (label, images) in enumerate(zip(row_labels, panels, strict=True)):
        figure.paste(_row_label(label, layout), (0, layout.origin(row, 0)[1]))
        for col, image in enumerate(images):
            tile = Image.fromarray(image)
            if tile.size != (layout.panel, layout.panel):
                tile = tile.resize((layout.panel, layout.panel), Image.Resampling.BICUBIC)
            figure.paste(tile, layout.origin(row, col))
    return figure
