"""Drawing primitives of the diagrams under docs/images: a palette, Pillow's bundled font, boxes,
arrows and dashed lines on a white canvas (`scripts/draw_architecture.py` draws with them).

Pillow only (matplotlib is not a dependency of the project) and Pillow's bundled font
(`ImageFont.load_default(size=...)`), so a picture does not depend on the fonts of the machine;
nothing is random, so two runs with the same Pillow write the same pixels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

Point = tuple[float, float]
Color = tuple[int, int, int]

INK: Color = (33, 37, 41)
GREY: Color = (85, 90, 96)
DATA: Color = (231, 240, 250)
DATA_EDGE: Color = (60, 110, 170)
BATCH: Color = (255, 244, 214)
BATCH_EDGE: Color = (190, 140, 20)
STAGE: Color = (226, 244, 230)
STAGE_EDGE: Color = (40, 130, 70)
PART: Color = (248, 252, 248)
CURR: Color = (200, 60, 40)
CURR2: Color = (120, 60, 170)
NOTE: Color = (245, 245, 245)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at `size` pixels (the same on every machine with this Pillow)."""
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Box:
    """A rounded box; `x, y` is its top-left corner, all in pixels."""

    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> Point:
        """Centre of the top edge."""
        return (self.x + self.w / 2, self.y)

    @property
    def bottom(self) -> Point:
        """Centre of the bottom edge."""
        return (self.x + self.w / 2, self.y + self.h)

    @property
    def left(self) -> Point:
        """Centre of the left edge."""
        return (self.x, self.y + self.h / 2)

    @property
    def right(self) -> Point:
        """Centre of the right edge."""
        return (self.x + self.w, self.y + self.h / 2)


class Canvas:
    """A white image with the few drawing primitives the diagram needs."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.image = Image.new("RGB", size, (255, 255, 255))
        self.draw = ImageDraw.Draw(self.image)

    def text(
        self, xy: Point, text: str, size: int = 17, color: Color = INK, anchor: str = "la"
    ) -> None:
        """Write one line of text; `anchor` is Pillow's (e.g. "mm" centres it on `xy`)."""
        self.draw.text(xy, text, fill=color, font=font(size), anchor=anchor)

    def lines(
        self, xy: Point, lines: Sequence[str], step: int, size: int = 17, color: Color = INK
    ) -> None:
        """Lines of text, the first at `xy`, each `step` pixels below the one before."""
        for i, line in enumerate(lines):
            self.text((xy[0], xy[1] + i * step), line, size=size, color=color)

    def box(
        self,
        box: Box,
        title: str,
        lines: Sequence[str] = (),
        fill: Color = DATA,
        edge: Color = DATA_EDGE,
        title_size: int = 20,
        size: int = 16,
        dashed: bool = False,
    ) -> None:
        """A rounded box with a bold-ish title and left-aligned lines under it."""
        rect = (box.x, box.y, box.x + box.w, box.y + box.h)
        self.draw.rounded_rectangle(
            rect, radius=10, fill=fill, outline=None if dashed else edge, width=2
        )
        if dashed:
            corners = [
                (box.x, box.y),
                (box.x + box.w, box.y),
                (box.x + box.w, box.y + box.h),
                (box.x, box.y + box.h),
                (box.x, box.y),
            ]
            self.dashed(corners, edge, width=2)
        self.draw.text(
            (box.x + 12, box.y + 8),
            title,
            fill=edge,
            font=font(title_size),
            stroke_width=1,
            stroke_fill=edge,
        )
        y = box.y + 14 + title_size
        for line in lines:
            self.text((box.x + 12, y), line, size=size)
            y += size + 5

    def dashed(self, points: Sequence[Point], color: Color, width: int = 2, dash: int = 9) -> None:
        """A dashed polyline through `points`."""
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            length = math.hypot(x1 - x0, y1 - y0)
            steps = max(int(length // dash), 1)
            for i in range(0, steps, 2):
                a, b = i / steps, min((i + 1) / steps, 1.0)
                self.draw.line(
                    [
                        (x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                        (x0 + b * (x1 - x0), y0 + b * (y1 - y0)),
                    ],
                    fill=color,
                    width=width,
                )

    def arrow(
        self,
        points: Sequence[Point],
        color: Color = INK,
        width: int = 3,
        dashed: bool = False,
        head: float = 13.0,
    ) -> None:
        """A polyline through `points` with an arrowhead at the last point."""
        if dashed:
            self.dashed(points, color, width)
        else:
            self.draw.line(list(points), fill=color, width=width, joint="curve")
        (x0, y0), (x1, y1) = points[-2], points[-1]
        angle = math.atan2(y1 - y0, x1 - x0)
        wing = [
            (x1 - head * math.cos(angle - s * 0.45), y1 - head * math.sin(angle - s * 0.45))
            for s in (1, -1)
        ]
        self.draw.polygon([(x1, y1), *wing], fill=color)

    def circle(self, centre: Point, radius: float, label: str, color: Color) -> None:
        """A labelled circle (the scheduled-sampling switches)."""
        x, y = centre
        self.draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            fill=(255, 255, 255),
            outline=color,
            width=3,
        )
        self.text(centre, label, size=17, color=color, anchor="mm")
