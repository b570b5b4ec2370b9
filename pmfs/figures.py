"""`pmfs figure`: the paper's qualitative figures, drawn from `pmfs fit` checkpoints.

- `pmfs figure ablation --runs NAME=CKPT ...`: one row per variant, like the paper's ablation
  figure: ground truth | prediction | sketch | error heatmap of one frame of a test clip (or of
  `--frames N` frames spread over it, N groups of those four columns).
- `pmfs figure emotions --checkpoint CKPT`: one identity (speaker) across emotions: one clip per
  emotion the speaker has in the cache, generated from its audio, one row per emotion.

Panels are composed with PIL on a white canvas (`GridLayout` holds the arithmetic): variant or
emotion labels are written vertically left of each row, column headers above the first row.
The error heatmap is the face-video callback's (`callbacks.face_video.error_heatmap`): per-pixel
mean absolute error over RGB through inferno on a fixed scale, black where the prediction is exact.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay inside functions so that `--help` is instant
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from torch import Tensor

    from pmfs.clip import ClipInputs
    from pmfs.data.cache import Cache
    from pmfs.stages import PMFS

log = logging.getLogger(__name__)

ABLATION_HEADERS: tuple[str, ...] = ("GT", "PREDICT", "SKETCH", "ERROR")
"""Column headers of one frame of the ablation figure, in panel order."""

# -- panels -----------------------------------------------------------------------------------


def image_panel(image: Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] image → (H, W, 3) uint8 RGB."""
    array = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (array * 255.0 + 0.5).astype("uint8")


def sketch_panel(sketch: Tensor) -> np.ndarray:
    """A renderer sketch as black ink on white, as the paper draws it.

    Args:
        sketch: (S, H, W) ink intensities in [0, 1] (S groups, merged by max).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    ink = sketch.detach().float().amax(dim=0).clamp(0, 1).cpu().numpy()  # (H, W)
    grey = ((1.0 - ink) * 255.0 + 0.5).astype("uint8")
    return grey[..., None].repeat(3, axis=-1)


def error_panel(prediction: Tensor, truth: Tensor, vmax: float | None = None) -> np.ndarray:
    """The video callback's error heatmap of one frame (`callbacks.face_video.error_heatmap`).

    Args:
        prediction: (3, H, W) float [0, 1].
        truth: (3, H, W) float [0, 1].
        vmax: mean absolute error shown as the colormap's top colour (None: the callback's
            `ERROR_SCALE`, so figures and training videos compare).

    Returns:
        (H, W, 3) uint8 RGB, inferno: black where the prediction is exact.
    """
    from callbacks.face_video import ERROR_SCALE, error_heatmap

    scale = ERROR_SCALE if vmax is None else vmax
    if scale <= 0:
        raise ValueError(f"the error range (--vmax) must be positive, got {scale}")
    return error_heatmap(prediction[None].cpu(), truth[None].cpu(), scale)[0].numpy()


def spread_indices(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over a clip; one frame → the middle one."""
    import numpy as np

    if count < 1 or num_frames < 1:
        raise ValueError(f"need ≥ 1 frame of a ≥ 1-frame clip, got {count} of {num_frames}")
    if count == 1:
        return [num_frames // 2]
    return np.linspace(0, num_frames - 1, count).round().astype(int).tolist()


# -- layout -----------------------------------------------------------------------------------


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


# -- models and clips -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One variant of an ablation figure: its row label and its `pmfs fit` checkpoint."""

    name: str
    checkpoint: Path


def parse_run(text: str) -> Run:
    """`NAME=CKPT`, or a checkpoint path named after its run folder.

    The text is split at its first "=" unless it is an existing file, so names may hold "/"
    ("w/o Background=runs/no_bg/last.ckpt") and Lightning's `epoch=3-step=100.ckpt` files can be
    given alone. The run folder of `runs/no_warp/checkpoints/last.ckpt` (and of
    `runs/no_warp/last.ckpt`) is `no_warp`.
    """
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).is_file():
        return Run(name, Path(path))
    checkpoint = Path(text)
    folder = checkpoint.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return Run(folder.name or checkpoint.stem, checkpoint)


def require_checkpoint(checkpoint: Path) -> None:
    """Raise FileNotFoundError naming `checkpoint` when it is not a file."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist (a `pmfs fit` .ckpt)")


def load_pmfs(checkpoint: Path, device: str) -> PMFS:
    """The whole-chain model of a checkpoint, in eval mode on `device`."""
    from pmfs.checkpoints import CheckpointError, load_model
    from pmfs.stages import PMFS

    require_checkpoint(checkpoint)
    model = load_model(checkpoint, map_location=device)
    if not isinstance(model, PMFS):
        raise CheckpointError(
            f"{checkpoint} holds a {type(model).__name__}, not the whole chain (pmfs.PMFS); "
            f"figures need a `pmfs fit` checkpoint of a PMFS model (e.g. experiments/demo.yaml)"
        )
    return model.to(device)


def default_clip(cache: Cache, checkpoint: Path) -> str:
    """The first clip of the first test speaker, as the checkpoint's data module holds them out.

    Test speakers: the data module's `test_speakers`, else MEAD's standard ones or the synthetic
    cache's `extra["test_speakers"]`; the cache's first clip when none of them is in the cache.
    """
    from data_modules.talking_face import MEAD_TEST_SPEAKERS
    from pmfs.checkpoints import data_config

    held_out = data_config(checkpoint).get("test_speakers")
    if held_out is None:
        mead = cache.dataset == "mead"
        held_out = MEAD_TEST_SPEAKERS if mead else cache.extra.get("test_speakers", [])
    clips = cache.clips()
    if not clips:
        raise ValueError(f"{cache.root}: the cache has no usable clip")
    return next((r.clip for r in clips if r.speaker in held_out), clips[0].clip)


def model_clip(
    cache: Cache, clip_id: str, checkpoint: Path, max_frames: int | None = None
) -> ClipInputs:
    """A cache clip prepared as the checkpoint's data module prepares it.

    Image size, number of references, background and reference source ("random": the
    references come from the speaker's next other clip) are read from the checkpoint.
    """
    from dataclasses import replace

    from pmfs.checkpoints import data_config
    from pmfs.clip import clip_inputs_from_cache

    config = data_config(checkpoint)
    count = int(config.get("num_references", 3))
    background = str(config.get("background", "keep"))

    def inputs(clip: str, frames: int | None, size: int | None) -> ClipInputs:
        reader = cache.open(clip)
        try:
            side = reader.size if size is None else size
            return clip_inputs_from_cache(reader, side, count, frames, background)
        finally:
            reader.close()

    size = config.get("image_size")
    clip = inputs(clip_id, max_frames, None if size is None else int(size))
    if config.get("reference_source") != "random":
        return clip
    other = _other_clip(cache, clip_id)
    if other is None:
        log.warning("%s: no other clip of its speaker; references from the clip itself", clip_id)
        return clip
    refs = inputs(other, None, clip.size)
    return replace(clip, ref_frames=refs.ref_frames, ref_landmarks=refs.ref_landmarks)


def _other_clip(cache: Cache, clip_id: str) -> str | None:
    """The clip after `clip_id` among its speaker's clips (cyclic), None when it is alone."""
    speaker = next(r.speaker for r in cache.clips() if r.clip == clip_id)
    ids = [r.clip for r in cache.clips() if r.speaker == speaker]
    if len(ids) < 2:
        return None
    return ids[(ids.index(clip_id) + 1) % len(ids)]


# -- figures ----------------------------------------------------------------------------------


def ablation_row(
    model: PMFS, clip: ClipInputs, frames: Sequence[int], vmax: float | None = None
) -> list[np.ndarray]:
    """GT | prediction | sketch | error panels of `frames` of a clip generated from its audio.

    Returns:
        4 · len(frames) (H, W, 3) uint8 panels, frame by frame.
    """
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        output = model.generate_clip(clip.to(device))
    panels: list[np.ndarray] = []
    for i in frames:
        truth, prediction = clip.frames[i], output.frames[i].cpu()
        panels += [image_panel(truth), image_panel(prediction), sketch_panel(output.sketches[i])]
        panels.append(error_panel(prediction, truth, vmax))
    return panels


def ablation_figure(
    runs: Sequence[Run],
    cache_root: Path,
    clip_id: str | None = None,
    num_frames: int = 1,
    device: str = "cpu",
    vmax: float | None = None,
    max_frames: int | None = None,
) -> Image.Image:
    """The paper's ablation figure: a row per variant, GT | PREDICT | SKETCH | ERROR.

    Args:
        runs: the variants, in row order.
        cache_root: the cache holding the clip.
        clip_id: the clip (None: the first test clip).
        num_frames: frames per row, spread over the clip (1: its middle frame, as the paper).
        device: where the models run.
        vmax: error at the top of the heatmap's colormap (None: the video callback's).
        max_frames: use the first frames of the clip only (None: all; bounds the run time).

    Returns:
        The figure; panels at the largest image size among the variants.
    """
    from pmfs.data.cache import Cache

    if not runs:
        raise ValueError("an ablation figure needs at least one run (--runs NAME=CKPT ...)")
    for run in runs:
        require_checkpoint(run.checkpoint)
    cache = Cache(cache_root)
    clip_id = clip_id or default_clip(cache, runs[0].checkpoint)
    rows, panel = [], 0
    for run in runs:
        model = load_pmfs(run.checkpoint, device)
        clip = model_clip(cache, clip_id, run.checkpoint, max_frames)
        frames = spread_indices(clip.num_frames, num_frames)
        rows.append(ablation_row(model, clip, frames, vmax))
        panel = max(panel, clip.size)
        log.info("%s: %s, frames %s", run.name, clip_id, frames)
    headers = _frame_headers(ABLATION_HEADERS, frames if num_frames > 1 else None)
    return compose_grid(rows, [run.name for run in runs], headers, GridLayout.for_panel(panel))


def _frame_headers(names: Sequence[str], frames: Sequence[int] | None) -> list[str]:
    """`names` once (one frame), or once per frame with its index."""
    if frames is None:
        return list(names)
    return [f"{name}\nframe {i}" for i in frames for name in names]


def emotion_clips(cache: Cache, speaker: str) -> dict[str, str]:
    """One clip per emotion of a speaker (its first of the highest level), in EMOTIONS order."""
    from pmfs.batch import EMOTIONS

    records = [r for r in cache.clips() if r.speaker == speaker]
    if not records:
        speakers = sorted({r.speaker for r in cache.clips()})
        raise ValueError(f"{cache.root}: no clip of speaker {speaker!r}; speakers: {speakers}")
    chosen: dict[str, str] = {}
    for record in sorted(records, key=lambda r: (-r.level, r.clip)):
        chosen.setdefault(record.emotion, record.clip)
    order = {name: i for i, name in enumerate(EMOTIONS)}
    return dict(sorted(chosen.items(), key=lambda item: order.get(item[0], len(order))))


def emotion_figure(
    checkpoint: Path,
    cache_root: Path,
    speaker: str | None = None,
    num_frames: int = 4,
    truth: bool = False,
    device: str = "cpu",
    max_frames: int | None = None,
) -> Image.Image:
    """One identity across emotions: a row per emotion of frames generated from its clip's audio.

    Args:
        checkpoint: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        cache_root: the cache.
        speaker: the identity (None: the speaker of the first test clip).
        num_frames: generated frames per row, the same indices in every clip, spread over the
            shortest one.
        truth: put the ground-truth frame before each generated one.
        device: where the model runs.
        max_frames: use the first frames of each clip only (None: all; bounds the run time).

    Returns:
        The figure; rows labelled "<emotion> level <n>".
    """
    from pmfs.data.cache import Cache

    require_checkpoint(checkpoint)
    cache = Cache(cache_root)
    if speaker is None:
        first = default_clip(cache, checkpoint)
        speaker = next(r.speaker for r in cache.clips() if r.clip == first)
    model = load_pmfs(checkpoint, device)
    chosen = emotion_clips(cache, speaker)
    clips = {e: model_clip(cache, c, checkpoint, max_frames) for e, c in chosen.items()}
    frames = spread_indices(min(clip.num_frames for clip in clips.values()), num_frames)
    rows, labels = [], []
    for emotion, clip in clips.items():
        rows.append(emotion_row(model, clip, frames, truth))
        labels.append(f"{emotion} {_level(cache, chosen[emotion])}")
        log.info("%s %s: %s, frames %s", speaker, emotion, chosen[emotion], frames)
    names = ("GT", "PREDICT") if truth else ("PREDICT",)
    headers = _frame_headers(names, frames if num_frames > 1 else None)
    panel = max(clip.size for clip in clips.values())
    return compose_grid(rows, labels, headers, GridLayout.for_panel(panel))


def emotion_row(
    model: PMFS, clip: ClipInputs, frames: Sequence[int], truth: bool = False
) -> list[np.ndarray]:
    """`frames` of a clip generated from its audio, each after its ground truth if `truth`.

    Returns:
        (1 + `truth`) · len(frames) (H, W, 3) uint8 panels.
    """
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        output = model.generate_clip(clip.to(device))
    row: list[np.ndarray] = []
    for i in frames:
        row += [image_panel(clip.frames[i])] if truth else []
        row.append(image_panel(output.frames[i]))
    return row


def _level(cache: Cache, clip_id: str) -> str:
    """ "level N" of a clip, from its manifest row."""
    return f"level {next(r.level for r in cache.clips() if r.clip == clip_id)}"


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Options of `pmfs figure ablation` and `pmfs figure emotions`."""
    parser = argparse.ArgumentParser(prog="pmfs figure", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    ablation = sub.add_parser("ablation", help="a row per variant: GT | PREDICT | SKETCH | ERROR")
    ablation.add_argument(
        "--runs", nargs="+", required=True, metavar="NAME=CKPT",
        help="variants in row order: NAME=path/to.ckpt, or a checkpoint path (name = run folder)",
    )  # fmt: skip
    ablation.add_argument("--clip", default=None, help="clip id (default: first test clip)")
    ablation.add_argument("--frames", type=int, default=1, help="frames per row (1 = paper)")
    ablation.add_argument(
        "--vmax", type=float, default=None,
        help="mean absolute error at the heatmap's top colour (default: face video's ERROR_SCALE)",
    )  # fmt: skip
    emotions = sub.add_parser("emotions", help="one identity across emotions, a row per emotion")
    emotions.add_argument(
        "--ckpt", "--checkpoint", dest="checkpoint", type=Path, required=True,
        help="a PMFS checkpoint",
    )  # fmt: skip
    emotions.add_argument("--speaker", default=None, help="identity (default: first test clip's)")
    emotions.add_argument("--frames", type=int, default=4, help="generated frames per row")
    emotions.add_argument("--truth", action="store_true", help="ground truth before each frame")
    for command in (ablation, emotions):
        command.add_argument(
            "--data", type=Path, default=None,
            help="the cache (default: the data root saved in the (first) checkpoint)",
        )  # fmt: skip
        command.add_argument("--out", type=Path, required=True, help="the PNG to write")
        command.add_argument(
            "--max-frames", type=int, default=None,
            help="use the first frames of each clip only (default: all)",
        )  # fmt: skip
        command.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs figure ...`: draw a figure; returns 0, or 1 on bad input (the reason on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        figure = draw(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out)
    print(f"{args.figure} figure {args.out}  ({figure.width}×{figure.height} px)")
    return 0


def draw(args: argparse.Namespace) -> Image.Image:
    """The figure the parsed command line asks for."""
    from pmfs.checkpoints import resolve_device

    device = str(resolve_device(args.device))
    if args.figure == "ablation":
        runs = [parse_run(text) for text in args.runs]
        data = args.data or _data_root(runs[0].checkpoint)
        figure = ablation_figure(
            runs, data, args.clip, args.frames, device, args.vmax, args.max_frames
        )
    else:
        data = args.data or _data_root(args.checkpoint)
        figure = emotion_figure(
            args.checkpoint, data, args.speaker, args.frames, args.truth, device, args.max_frames
        )
    return figure


def _data_root(checkpoint: Path) -> Path:
    """The cache a checkpoint was trained on (its DataModule's `root`)."""
    from pmfs.checkpoints import data_config

    require_checkpoint(checkpoint)
    root = data_config(checkpoint).get("root")
    if root is None:
        raise ValueError(f"{checkpoint} records no data root; pass the cache with --data")
    return Path(root)
