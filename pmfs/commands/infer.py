"""`pmfs infer`: speech + a target face (video or image) → a talking-face mp4 (DESIGN §4).

    pmfs infer --ckpt last.ckpt --audio speech.wav --face target.mp4 --out out.mp4

The work is done by `pmfs.inference.run.run_inference`; this module parses the options and
reports. The parser is built from `InferArguments` (the files) and
`pmfs.inference.options.InferenceOptions` (the run's settings) with `pmfs.options`, so a flag
cannot drift from its option. Heavy modules (torch, numpy, PyAV) are imported only when a run
starts, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pmfs.inference.options import InferenceOptions
from pmfs.options import add_options, option, options_from_args

if TYPE_CHECKING:
    from pmfs.inference.run import InferenceResult


@dataclass(frozen=True)
class InferArguments:
    """The files of a `pmfs infer` run (the arguments of `run_inference`) and its log level.

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        audio: the speech.
        face: the target video or image.
        out: the .mp4 to write.
        landmarks: a .npy of the face's landmarks instead of detecting them.
        verbose: log every step.
    """

    ckpt: Path = option(help="a `pmfs fit` checkpoint of PMFS")
    audio: Path = option(help="speech: wav/mp3/m4a/flac/...")
    face: Path = option(help="target video or image")
    out: Path = option(help="the .mp4 to write")
    landmarks: Path | None = option(
        None,
        help="a .npy of the face's landmarks, (N, 68, 2) or (N, F, 68, 2) pixels of its frames "
        "(NaN: no face), instead of detecting them (--detector)",
    )
    verbose: bool = option(False, help="log every step", short="-v")


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs infer` argument parser: the fields of `InferArguments` and `InferenceOptions`."""
    parser = argparse.ArgumentParser(
        prog="pmfs infer",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Make a talking-face video: the whole PMFS chain driven by AUDIO, the "
        "generated face pasted back into the original frames of FACE, the audio muxed. The "
        "output has the audio's length: a shorter template video is played forward and "
        "backward, a longer one trimmed; an image is animated.",
    )
    add_options(parser, InferArguments)
    add_options(parser, InferenceOptions)
    return parser


def report(result: InferenceResult) -> list[str]:
    """The lines printed after a run: the landmark detector (which and why), what was written,
    how fast, and faces missing."""
    h, w = result.size
    lines = [result.detector] if result.detector else []
    lines += [
        f"wrote {result.out}: {result.frames} frames ({result.frames / 25:.2f} s) at {w}×{h}, "
        f"{result.template_frames} template frames, in {result.seconds:.1f} s "
        f"({result.frames / max(result.seconds, 1e-9):.1f} frames/s)"
    ]
    if result.missing or result.multi_face:
        lines.append(
            f"  {result.missing} template frames without a face "
            f"({result.passed_through} passed through), {result.multi_face} with several faces "
            "(one used)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs infer …`; returns 0 on success, 1 on bad input (the reason on stderr)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    files = options_from_args(InferArguments, args)
    level = logging.INFO if files.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from pmfs.faces.detect import DetectorWeightsError
    from pmfs.inference.run import run_inference

    try:
        options = options_from_args(InferenceOptions, args)
        result = run_inference(
            files.ckpt, files.audio, files.face, files.out, options, landmarks=files.landmarks
        )
    except (FileNotFoundError, ValueError, DetectorWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
