"""`pmfs data`: build datasets — `synth` (the built-in synthetic set), `sheet` (contact sheet),
`preprocess` (raw MEAD / CREMA-D / a folder of videos → cache), `merge` (the manifests of a
sharded preprocessing run → one).

Each sub-command's parser sets `func`, the function that runs it from the parsed arguments and
returns the exit code. The options of `synth`, `preprocess` and `merge` are dataclasses that are
also their parsers (`pmfs.options`): `SynthConfig`, `PreprocessSettings` (what changes a clip's
content), `VideoSettings` (how the videos layout is cut and split), `PreprocessRun` (how the run
goes) and `MergeRun`. Heavy imports happen inside the run functions, not at parse time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pmfs.data.preprocess.layouts import Layout
from pmfs.data.preprocess.settings import PreprocessSettings, VideoSettings
from pmfs.data.synth.config import SynthConfig
from pmfs.options import add_options, option, options_from_args

EXIT_SKIPPED = 3
"""Exit code of a preprocessing run that finished but recorded some clips as skipped (0: all
usable)."""


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
    add_options(parser, SynthConfig)
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


@dataclass(frozen=True)
class PreprocessRun:
    """How `pmfs data preprocess` runs (nothing here changes a clip's content)."""

    dataset: Layout = option(help="raw layout to read", positional=True)
    root: Path = option(help="the raw download, or the folder of videos")
    out: Path = option(help="the cache folder to write")
    workers: int = option(1, help="worker processes")
    device: str = option("cpu", help="cpu or cuda (face-alignment)")
    batch_size: int = option(16, help="frames per detector batch")
    shard: str | None = option(
        None,
        metavar="I/N",
        help="process shard I of N (jobs whose stable hash mod N is I) into its own manifest "
        "part; when all N are done, `pmfs data merge --out CACHE`",
    )
    progress: bool = option(True, help="hide the progress bar")


@dataclass(frozen=True)
class MergeRun:
    """How `pmfs data merge` runs."""

    out: Path = option(help="the cache folder the shards wrote")


class _DefaultsHelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """`--help` with each option's default, except on/off flags (their default is their absence);
    the description and epilog keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


_PREPROCESS_EPILOG = """\
layouts (docs/preprocessing.md):
  mead     <root>/<speaker>/video/front/<emotion>/level_<n>/<clip>.mp4
  cremad   <root>/VideoFlash/<actor>_<sentence>_<EMO>_<LEVEL>.flv + AudioWAV/<same>.wav
  videos   <root>/<speaker>/<video> or <root>/<video> (flat: speaker = the stem); mp4, mov, mkv,
           avi, webm; audio in the video or beside it (<stem>.wav/.flac/.m4a/.mp3); long videos
           are cut into clips at pauses; no emotion labels
sharded over a SLURM array, then merged:
  sbatch --array=0-7 --wrap \\
    'pmfs data preprocess videos --root R --out C --shard $SLURM_ARRAY_TASK_ID/8'
  pmfs data merge --out C
"""


def add_preprocess_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `preprocess` sub-command to an argparse sub-parser collection.

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Returns:
        The new parser; its `func` default is `run_preprocess`.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "preprocess",
        help="raw MEAD / CREMA-D / a folder of videos → cache (landmarks, crops, masks, mel)",
        formatter_class=_DefaultsHelpFormatter,
        description="Preprocess a raw MEAD or CREMA-D download, or a folder of talking-head\n"
        "videos, into a PMFS cache (DESIGN §3). Resumable: rerun the same command after a\n"
        f"crash. Exit code 0: every clip usable; {EXIT_SKIPPED}: finished, some clips skipped "
        "(reasons\nin manifest.csv); 1: error. See docs/preprocessing.md.",
        epilog=_PREPROCESS_EPILOG,
    )
    run_fields = tuple(f.name for f in fields(PreprocessRun))
    add_options(parser, PreprocessRun, exclude=("progress",))
    add_options(parser, PreprocessSettings)
    videos = parser.add_argument_group(
        "videos layout", "how `videos` cuts each video into clips and splits the cache"
    )
    add_options(videos, VideoSettings)
    add_options(parser, PreprocessRun, exclude=tuple(n for n in run_fields if n != "progress"))
    parser.set_defaults(func=run_preprocess)
    return parser


def run_preprocess(args: argparse.Namespace) -> int:
    """Run `pmfs data preprocess` from parsed arguments; print the summary, return the exit code."""
    from pmfs.data.cache import CacheError
    from pmfs.data.preprocess.pipeline import preprocess
    from pmfs.data.preprocess.shards import parse_shard
    from pmfs.faces.detect import DetectorWeightsError

    try:
        run = options_from_args(PreprocessRun, args)
        videos = options_from_args(VideoSettings, args)
        if run.dataset != "videos" and videos != VideoSettings():
            raise ValueError("--min-clip, --max-clip, --min-pause, --split-by and "
                             "--test-fraction apply to the videos layout only")  # fmt: skip
        summary = preprocess(
            run.dataset,
            run.root,
            run.out,
            options_from_args(PreprocessSettings, args),
            workers=run.workers,
            device=run.device,
            batch_size=run.batch_size,
            progress=run.progress,
            videos=videos if run.dataset == "videos" else None,
            shard=None if run.shard is None else parse_shard(run.shard),
        )
    except (DetectorWeightsError, FileNotFoundError, CacheError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.text())
    print(f"cache: {run.out}  (manifest: {run.out / 'manifest.csv'})")
    return summary.exit_code


def _add_merge_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge the manifests of a sharded `pmfs data preprocess` into one",
        description="Fold the manifest parts that `pmfs data preprocess --shard I/N` runs wrote "
        "into the cache's manifest.csv, write the split of a videos cache into cache.json and "
        "remove the parts. Run it once every shard has finished (a preprocess run without "
        "--shard does it first too).",
    )
    add_options(parser, MergeRun)
    parser.set_defaults(func=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    """Run `pmfs data merge`; prints what it merged, returns the exit code."""
    from pmfs.data.cache import CacheError
    from pmfs.data.preprocess.shards import merge

    run = options_from_args(MergeRun, args)
    try:
        summary = merge(run.out)
    except (FileNotFoundError, CacheError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.text(run.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs data` parser with all sub-commands."""
    parser = argparse.ArgumentParser(prog="pmfs data", description="Build PMFS datasets.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_synth_parser(subparsers)
    _add_sheet_parser(subparsers)
    add_preprocess_parser(subparsers)
    _add_merge_parser(subparsers)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    """Run `pmfs data synth`; prints a summary, returns the exit code."""
    from pmfs.data.synth.generate import build_synthetic_dataset

    try:
        summary = build_synthetic_dataset(options_from_args(SynthConfig, args))
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
