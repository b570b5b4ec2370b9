"""`pmfs data`: build datasets — `synth` (the built-in synthetic set), `sheet` (contact sheet),
`preprocess` (raw MEAD / CREMA-D → cache, registered from `pmfs.data.preprocess`).

Each sub-command's parser sets `func`, the function that runs it from the parsed arguments and
returns the exit code. Heavy imports happen inside those functions, not at parse time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pmfs.data.preprocess import add_preprocess_parser

_SYNTH_EPILOG = """\
layout:
  <out>/cache.json, manifest.csv, clips/<speaker>/<clip>/   the cache (docs/cache_format.md)
  <raw-dir>/<speaker>/video/front/<emotion>/level_<n>/<index>.mp4      with --raw:
  <raw-dir>/<speaker>/audio/<emotion>/level_<n>/<index>.m4a              MEAD's raw layout
  <raw-dir>/<speaker>/landmarks/front/<emotion>/level_<n>/<index>.npy    (raw-frame pixels)
  <raw-dir> defaults to <out>/raw. Raw frames are wider than the crop; each cached clip's
  meta.json holds crop_box = [x0, y0, w, h] (cache landmarks = raw landmarks - (x0, y0)).

Clip ids are "{speaker}_{emotion}_{level}_{index:03d}" (e.g. S01_angry_3_001); the last
quarter of the speakers are held out (cache.json extra.test_speakers). The same seed gives the
same bytes whatever --workers; a rerun with the same options skips finished clips.
Default: 8 speakers x 12 clips of 2-4 s at 256^2: about 73 s of CPU (40-60 s on 2 cores),
185 MB (+15 MB with --raw).
See docs/synthetic.md.
"""


def _add_synth_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate the built-in synthetic talking-face dataset",
        description="Generate the built-in synthetic talking-face dataset: formant speech and "
        "a rendered face driven by one articulatory track per clip (DESIGN §3).",
        epilog=_SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="the cache folder to write")
    parser.add_argument("--speakers", type=int, default=8, help="number of speakers (default 8)")
    parser.add_argument("--clips", type=int, default=12, help="clips per speaker (default 12)")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--raw", action="store_true", help="also write the raw MEAD layout")
    parser.add_argument("--raw-dir", type=Path, default=None, help="raw layout folder (<out>/raw)")
    parser.add_argument("--workers", type=int, default=0, help="processes (default: all CPUs)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="shortest clip (2.0)")
    parser.add_argument("--max-seconds", type=float, default=4.0, help="longest clip (4.0)")
    parser.add_argument(
        "--test-speakers",
        type=int,
        default=None,
        help="speakers held out at the end (default: a quarter, at least 1)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a cache at --out that was built with other settings",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_synth)


def _add_sheet_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sheet",
        help="contact sheet PNG of a cache (speakers × emotions)",
        description="Write a contact sheet of a cache: rows = speakers, columns = emotions, one "
        "frame each (mouth most open), landmarks over every other row.",
    )
    parser.add_argument("--cache", type=Path, required=True, help="the cache folder")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--tile", type=int, default=128, help="cell size in pixels (128)")
    parser.add_argument(
        "--colors",
        type=int,
        default=256,
        help="PNG palette size, dithered (256); 0 keeps full RGB (about 4x larger)",
    )
    parser.set_defaults(func=run_sheet)


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs data` parser with all sub-commands."""
    parser = argparse.ArgumentParser(prog="pmfs data", description="Build PMFS datasets.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_synth_parser(subparsers)
    _add_sheet_parser(subparsers)
    add_preprocess_parser(subparsers)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    """Run `pmfs data synth`; prints a summary, returns the exit code."""
    from pmfs.data.synth import SynthConfig, build_synthetic_dataset

    try:
        config = SynthConfig(
            out=args.out,
            speakers=args.speakers,
            clips=args.clips,
            size=args.size,
            seed=args.seed,
            raw=args.raw,
            raw_dir=args.raw_dir,
            workers=args.workers,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            test_speakers=args.test_speakers,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        summary = build_synthetic_dataset(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"cache: {summary.cache}  ({summary.clips} clips, {summary.made} made now, "
        f"{summary.frames} frames, {summary.cache_bytes / 1e6:.1f} MB)"
    )
    if summary.raw is not None:
        print(f"raw:   {summary.raw}  ({summary.raw_bytes / 1e6:.1f} MB)")
    print(f"time:  {summary.seconds:.1f} s")
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    """Run `pmfs data sheet`; returns the exit code."""
    from pmfs.data.cache import CacheError
    from pmfs.data.sheet import make_contact_sheet

    try:
        path = make_contact_sheet(args.cache, args.out, tile=args.tile, colors=args.colors)
    except (FileNotFoundError, CacheError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"contact sheet: {path}")
    return 0


def main(argv: list[str]) -> int:
    """Entry of `pmfs data ...` (dispatched by `pmfs.cli`); returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))
