"""Contact sheet of a cache (`pmfs data sheet`): one frame per speaker × emotion, to see the data.

Rows are speakers (held-out test speakers marked "test"), columns are `pmfs.batch.EMOTIONS`.
Each cell shows the speaker's clip of that emotion at the highest level available, at the frame
where the mouth is most open with the eyes open (so lips, teeth and mouth interior are
visible), with the level in the corner. Landmarks are drawn over every other row (dots coloured
by group: jaw, brows, nose, eyes, lips), which shows at a glance whether they sit on the drawn
features.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pmfs.batch import EMOTIONS, UNLABELLED
from pmfs.data.cache import Cache, ClipRecord
from pmfs.landmarks import (
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    LIPS,
    NOSE_BASE,
    NOSE_BRIDGE,
    RIGHT_BROW,
    RIGHT_EYE,
    mouth_opening,
)

log = logging.getLogger(__name__)

BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
MUTED = (150, 150, 160)
GROUP_COLOURS: tuple[tuple[np.ndarray, tuple[int, int, int]], ...] = (
    (JAW, (255, 214, 64)),
    (np.concatenate([RIGHT_BROW, LEFT_BROW]), (255, 120, 40)),
    (np.concatenate([NOSE_BRIDGE, NOSE_BASE]), (80, 220, 255)),
    (np.concatenate([RIGHT_EYE, LEFT_EYE]), (90, 255, 120)),
    (LIPS, (255, 70, 160)),
)
"""Dot colour of each landmark group."""


@dataclass(frozen=True)
class SheetLayout:
    """Geometry of the sheet in pixels.

    Attributes:
        tile: side of one cell.
        label_width: width of the speaker-label column.
        header_height: height of the title and emotion-header band.
        gap: space between cells.
    """

    tile: int = 128
    label_width: int = 76
    header_height: int = 52
    gap: int = 2

    def size(self, rows: int, cols: int) -> tuple[int, int]:
        """(width, height) of a sheet of rows × cols cells."""
        width = self.label_width + cols * (self.tile + self.gap) + self.gap
        return width, self.header_height + rows * (self.tile + self.gap) + self.gap

    def cell(self, row: int, col: int) -> tuple[int, int]:
        """(x, y) of the top-left corner of a cell."""
        return (
            self.label_width + self.gap + col * (self.tile + self.gap),
            self.header_height + self.gap + row * (self.tile + self.gap),
        )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at `size` (a bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):
        return ImageFont.load_default()


def pick_clip(records: list[ClipRecord], speaker: str, emotion: str) -> ClipRecord | None:
    """The speaker's clip of `emotion` at the highest level (first clip id on ties), or None.

    Clips without labels (the videos layout) count as neutral, as they load (`UNLABELLED`).
    """
    candidates = [
        r for r in records if r.speaker == speaker and (r.emotion or UNLABELLED[0]) == emotion
    ]
    if not candidates:
        return None
    return sorted(candidates, key=lambda r: (-(r.level or 0), r.clip))[0]


def pick_frame(landmarks: np.ndarray) -> int:
    """The frame with the most open mouth among those whose eyes are open (no blink).

    Args:
        landmarks: (N, 68, 2) landmarks of a clip.
    """
    lids = landmarks[:, [37, 38, 43, 44]] - landmarks[:, [41, 40, 47, 46]]  # (N, 4, 2)
    eyes = np.linalg.norm(lids, axis=-1).mean(axis=-1)  # (N,)
    opening = np.where(eyes >= 0.7 * eyes.max(), mouth_opening(landmarks), -np.inf)
    return int(np.argmax(opening))


def _tile(cache: Cache, record: ClipRecord, tile: int, landmarks: bool) -> Image.Image:
    """The clip's `pick_frame`, resized to tile × tile, with its landmarks drawn if asked."""
    clip = cache.open(record.clip)
    index = pick_frame(clip.landmarks)
    frame = Image.fromarray(clip.frame(index)).resize((tile, tile), Image.Resampling.LANCZOS)
    if landmarks:
        scale = tile / clip.size
        points = (clip.landmarks[index] + 0.5) * scale - 0.5  # pixel-index convention
        draw = ImageDraw.Draw(frame)
        radius = max(0.6, tile / 200)
        for indices, colour in GROUP_COLOURS:
            for x, y in points[indices]:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    draw = ImageDraw.Draw(frame)
    draw.text(
        (4, tile - 4),
        f"L{record.level}" if record.level is not None else "no label",
        fill=TEXT,
        font=_font(max(9, tile // 11)),
        anchor="lb",
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    clip.close()
    return frame


def _labels(
    sheet: Image.Image, layout: SheetLayout, speakers: list[str], test: set[str], title: str
) -> None:
    draw = ImageDraw.Draw(sheet)
    draw.text((layout.gap + 4, 6), title, fill=TEXT, font=_font(15))
    header = _font(max(10, layout.tile // 9))
    for col, emotion in enumerate(EMOTIONS):
        x, _ = layout.cell(0, col)
        draw.text(
            (x + layout.tile // 2, layout.header_height - 4),
            emotion,
            fill=TEXT,
            font=header,
            anchor="mb",
        )
    for row, speaker in enumerate(speakers):
        _, y = layout.cell(row, 0)
        draw.text((8, y + layout.tile // 2), speaker, fill=TEXT, font=header, anchor="lm")
        if speaker in test:
            draw.text(
                (8, y + layout.tile // 2 + 16), "test", fill=MUTED, font=_font(11), anchor="lm"
            )


def _save_png(image: Image.Image, out: Path, colors: int) -> None:
    """Save as PNG: full RGB (`colors` 0), or a median-cut palette refined by k-means and mapped
    with Floyd–Steinberg dithering: textured backgrounds and skin stay smooth (mean error about
    4 levels) at about 40 % of the RGB size."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if colors:
        palette = image.quantize(colors, method=Image.Quantize.MEDIANCUT, kmeans=1)
        image = image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    image.save(out, optimize=True)


def make_contact_sheet(cache_root: Path, out: Path, tile: int = 128, colors: int = 256) -> Path:
    """Write the contact sheet PNG of a cache.

    Args:
        cache_root: the cache folder.
        out: the PNG to write (parent folders are created).
        tile: cell side in pixels.
        colors: palette size of the PNG (2–256), or 0 for full RGB (about 4× larger; the
            default 8 × 8 sheet is ~0.5 MB with 256 colours, ~1.3 MB in RGB).

    Returns:
        `out`.

    Raises:
        CacheNotFoundError: no cache at `cache_root`.
        ValueError: the cache has no usable clip, `tile` is below 32 or `colors` is invalid.
    """
    if tile < 32:
        raise ValueError(f"tile must be at least 32 pixels, got {tile}")
    if colors != 0 and not 2 <= colors <= 256:
        raise ValueError(f"colors must be 0 (RGB) or 2–256, got {colors}")
    cache = Cache(cache_root)
    records = cache.clips()
    if not records:
        raise ValueError(f"{cache_root}: the cache has no usable clip to show")
    speakers = sorted({r.speaker for r in records})
    test = set(cache.extra.get("test_speakers", []))
    layout = SheetLayout(tile=tile)
    sheet = Image.new("RGB", layout.size(len(speakers), len(EMOTIONS)), BACKGROUND)
    for row, speaker in enumerate(speakers):
        for col, emotion in enumerate(EMOTIONS):
            record = pick_clip(records, speaker, emotion)
            if record is not None:
                sheet.paste(
                    _tile(cache, record, tile, landmarks=row % 2 == 1), layout.cell(row, col)
                )
    title = (
        f"{cache.dataset}: {len(records)} clips, {len(speakers)} speakers. One frame per "
        "speaker and emotion (highest level, mouth most open); landmarks on every other row"
    )
    _labels(sheet, layout, speakers, test, title)
    _save_png(sheet, out, colors)
    log.info("contact sheet %s (%d × %d)", out, *sheet.size)
    return out
