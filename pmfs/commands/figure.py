"""`pmfs figure`: the paper's qualitative figures, drawn from `pmfs fit` checkpoints.

- `pmfs figure ablation --runs NAME=CKPT ...`: one row per variant, like the paper's ablation
  figure: ground truth | prediction | sketch | error heatmap of one frame of a test clip (or of
  `--frames N` frames spread over it, N groups of those four columns).
- `pmfs figure emotions --checkpoint CKPT`: one identity (speaker) across emotions: one clip per
  emotion the speaker has in the cache, generated from its audio, one row per emotion.

Each sub-command's options are a dataclass (`AblationOptions`, `EmotionOptions`, and the
`FigureOptions` both share) from which its parser is built (`pmfs.options`). The figures are
drawn by `pmfs.evaluation.figures`, imported only when one is drawn, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pmfs.options import add_options, option, options_from_args

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True, kw_only=True)
class FigureOptions:
    """Options of every figure: the cache, the PNG, the clip length and the device."""

    data: Path | None = option(
        None, help="the cache (default: the data root saved in the (first) checkpoint)"
    )
    out: Path = option(help="the PNG to write")
    max_frames: int | None = option(
        None, help="use the first frames of each clip only (default: all)", minimum=1
    )
    device: str | None = option(None, help="torch device (default: cuda if any)")


@dataclass(frozen=True, kw_only=True)
class AblationOptions:
    """`pmfs figure ablation`: a row per variant."""

    runs: tuple[str, ...] = option(
        help="variants in row order: NAME=path/to.ckpt, or a checkpoint path (name = run folder)",
        metavar="NAME=CKPT",
    )
    clip: str | None = option(None, help="clip id (default: first test clip)")
    frames: int = option(1, help="frames per row (1 = paper)", minimum=1)
    vmax: float | None = option(
        None,
        help="mean absolute error at the heatmap's top colour (default: face video's ERROR_SCALE)",
        above=0.0,
    )


@dataclass(frozen=True, kw_only=True)
class EmotionOptions:
    """`pmfs figure emotions`: one identity across emotions."""

    checkpoint: Path = option(help="a PMFS checkpoint", flag="--ckpt", short="--checkpoint")
    speaker: str | None = option(None, help="identity (default: first test clip's)")
    frames: int = option(4, help="generated frames per row", minimum=1)
    truth: bool = option(False, help="ground truth before each frame")


FIGURES: dict[str, tuple[type[AblationOptions] | type[EmotionOptions], str]] = {
    "ablation": (AblationOptions, "a row per variant: GT | PREDICT | SKETCH | ERROR"),
    "emotions": (EmotionOptions, "one identity across emotions, a row per emotion"),
}


def build_parser() -> argparse.ArgumentParser:
    """Options of `pmfs figure ablation` and `pmfs figure emotions`."""
    parser = argparse.ArgumentParser(prog="pmfs figure", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    for name, (options, help_text) in FIGURES.items():
        command = sub.add_parser(name, help=help_text)
        add_options(command, options)
        add_options(command, FigureOptions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs figure ...`: draw a figure; returns 0, or 1 on bad input (the reason on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        common = options_from_args(FigureOptions, args)
        figure = draw(options_from_args(FIGURES[args.figure][0], args), common)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    common.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(common.out)
    print(f"{args.figure} figure {common.out}  ({figure.width}×{figure.height} px)")
    return 0


def draw(options: AblationOptions | EmotionOptions, common: FigureOptions) -> Image.Image:
    """The figure the options ask for."""
    from pmfs.checkpoints import resolve_device
    from pmfs.evaluation.figures import ablation_figure, data_root, emotion_figure, parse_run

    device = str(resolve_device(common.device))
    if isinstance(options, AblationOptions):
        runs = [parse_run(text) for text in options.runs]
        data = common.data or data_root(runs[0].checkpoint)
        return ablation_figure(
            runs, data, options.clip, options.frames, device, options.vmax, common.max_frames
        )
    data = common.data or data_root(options.checkpoint)
    return emotion_figure(
        options.checkpoint,
        data,
        options.speaker,
        options.frames,
        options.truth,
        device,
        common.max_frames,
    )
