"""`pmfs data preprocess {mead,cremad}`: raw MEAD / CREMA-D downloads → the PMFS cache.

The command line lives here (`add_preprocess_parser`, `run_preprocess`) so that `pmfs.data.cli`
only registers it; `python -m pmfs.data.preprocess mead --root RAW --out CACHE` runs it directly.
Heavy imports (torch, face-alignment, PyAV) happen only when a run starts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXIT_SKIPPED = 3
"""Exit code of a run that finished but recorded some clips as skipped (0: all usable)."""


def add_preprocess_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `preprocess` sub-command to an argparse sub-parser collection.

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Returns:
        The new parser; its `func` default is `run_preprocess`.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "preprocess",
        help="raw MEAD / CREMA-D → cache (landmarks, crops, masks, mel)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Preprocess a raw MEAD or CREMA-D download into a PMFS cache (DESIGN §3). "
        "Resumable: rerun the same command after a crash. Exit code 0: every clip usable; "
        f"{EXIT_SKIPPED}: finished, some clips skipped (reasons in manifest.csv); 1: error. "
        "See docs/preprocessing.md.",
    )
    _add_arguments(parser)
    parser.set_defaults(func=run_preprocess)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from pmfs.data.preprocess.settings import PreprocessSettings

    d = PreprocessSettings()
    parser.add_argument("dataset", choices=("mead", "cremad"), help="raw layout to read")
    parser.add_argument("--root", type=Path, required=True, help="the raw download")
    parser.add_argument("--out", type=Path, required=True, help="the cache folder to write")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (face-alignment)")
    parser.add_argument("--batch-size", type=int, default=16, help="frames per detector batch")
    parser.add_argument(
        "--detector",
        choices=("face-alignment", "precomputed"),
        default=d.detector,
        help="face-alignment (S3FD + 2D FAN) or the per-clip .npy landmark files of the layout",
    )
    parser.add_argument("--size", type=int, default=d.size, help="crop side in pixels")
    parser.add_argument(
        "--smooth-window",
        type=int,
        default=d.smooth_window,
        help="Savitzky-Golay window, frames (<= 2: off)",
    )
    parser.add_argument(
        "--max-gap", type=int, default=d.max_gap, help="longest gap interpolated, frames"
    )
    parser.add_argument(
        "--crop-scale", type=float, default=d.crop_scale, help="crop side / face size"
    )
    parser.add_argument(
        "--crop-shift", type=float, default=d.crop_shift, help="crop centre shift down, face sizes"
    )
    parser.add_argument(
        "--max-av-mismatch",
        type=float,
        default=d.max_av_mismatch,
        help="seconds of A/V length difference tolerated",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def settings_from_args(args: argparse.Namespace) -> Any:
    """The `PreprocessSettings` of parsed arguments."""
    from pmfs.data.preprocess.settings import PreprocessSettings

    return PreprocessSettings(
        size=args.size,
        detector=args.detector,
        smooth_window=args.smooth_window,
        max_gap=args.max_gap,
        crop_scale=args.crop_scale,
        crop_shift=args.crop_shift,
        max_av_mismatch=args.max_av_mismatch,
    )


def run_preprocess(args: argparse.Namespace) -> int:
    """Run `pmfs data preprocess` from parsed arguments; print the summary, return the exit code."""
    from pmfs.data.preprocess.detect import DetectorWeightsError
    from pmfs.data.preprocess.pipeline import preprocess

    try:
        summary = preprocess(
            args.dataset,
            args.root,
            args.out,
            settings_from_args(args),
            workers=args.workers,
            device=args.device,
            batch_size=args.batch_size,
            progress=not args.no_progress,
        )
    except (DetectorWeightsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.text())
    print(f"cache: {args.out}  (manifest: {args.out / 'manifest.csv'})")
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pmfs.data.preprocess …`: the same options as `pmfs data preprocess`."""
    parser = argparse.ArgumentParser(prog="pmfs data")
    add_preprocess_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["preprocess", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))
