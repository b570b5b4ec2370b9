"""`pmfs infer`: speech + a target face (video or image) → a talking-face mp4 (DESIGN §4).

    pmfs infer --ckpt last.ckpt --audio speech.wav --face target.mp4 --out out.mp4
    pmfs infer --ckpt last.ckpt --batch jobs.csv      # columns audio, face, out (+ optional)

The work is done by `pmfs.inference.run.run_inference` (one video) and
`pmfs.inference.batch.run_batch` (a jobs CSV: the model loaded once, each face tracked once, a
failing job recorded in `<jobs>.results.csv` while the others go on; exit code 1 if any job
failed); this module parses the options and reports. The parser is built from `InferArguments`
(the files) and `pmfs.inference.options.InferenceOptions` (the run's settings) with
`pmfs.options`, so a flag cannot drift from its option. Heavy modules (torch, numpy, PyAV) are
imported only when a run starts, so `--help` is quick.
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
    """The files of a `pmfs infer` run (the arguments of `run_inference`, or the jobs CSV of
    `run_batch`) and its log level. Exactly one mode: `audio`, `face` and `out`, or `batch`
    (`mode_error`).

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        audio: the speech.
        face: the target video or image.
        out: the .mp4 to write.
        batch: a jobs CSV (`pmfs.inference.jobs`) instead of `audio`, `face`, `out`.
        results: the results CSV of `batch` (None: `<jobs>.results.csv` next to it).
        landmarks: a .npy of the face's landmarks instead of detecting them.
        verbose: log every step.
    """

    ckpt: Path = option(help="a `pmfs fit` checkpoint of PMFS")
    audio: Path | None = option(None, help="speech: wav/mp3/m4a/flac/... (or --batch)")
    face: Path | None = option(None, help="target video or image (or --batch)")
    out: Path | None = option(None, help="the .mp4 to write (or --batch)")
    batch: Path | None = option(
        None,
        help="a CSV of jobs, one video per row: columns audio, face, out; optional emotion, "
        "level, references, landmarks (relative paths: from the CSV's folder). The model is "
        "loaded once, each face tracked once; a failing job is recorded and the others go on",
        metavar="JOBS.csv",
    )
    results: Path | None = option(
        None, help="with --batch: the results CSV (default: <JOBS>.results.csv next to it)"
    )
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


def mode_error(files: InferArguments) -> str | None:
    """Why the files name no mode or both (`--audio/--face/--out` or `--batch`), else None."""
    single = {"--audio": files.audio, "--face": files.face, "--out": files.out}
    if files.batch is not None:
        given = [flag for flag, value in single.items() if value is not None]
        given += ["--landmarks"] if files.landmarks is not None else []
        if given:
            return (
                f"--batch takes every file from its CSV; leave out {', '.join(given)} (a "
                "`landmarks` column gives a face's landmarks)"
            )
        return None
    if files.results is not None:
        return "--results goes with --batch"
    missing = [flag for flag, value in single.items() if value is None]
    if missing:
        return f"give --audio, --face and --out (missing {', '.join(missing)}), or --batch JOBS.csv"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs infer …`; returns 0 on success, 1 on bad input (the reason on stderr) or when a
    job of `--batch` failed (the summary on stdout, each job in the results CSV)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    files = options_from_args(InferArguments, args)
    problem = mode_error(files)
    if problem is not None:
        parser.error(problem)
    level = logging.INFO if files.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from pmfs.faces.detect import DetectorWeightsError

    try:
        options = options_from_args(InferenceOptions, args)
        if files.batch is not None:
            return _batch(files.ckpt, files.batch, files.results, options)
        from pmfs.inference.run import run_inference

        assert files.audio and files.face and files.out  # mode_error
        result = run_inference(
            files.ckpt, files.audio, files.face, files.out, options, landmarks=files.landmarks
        )
    except (FileNotFoundError, ValueError, DetectorWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report(result)))
    return 0


def _batch(ckpt: Path, jobs: Path, results: Path | None, options: InferenceOptions) -> int:
    """`pmfs infer --batch`: the summary line; 1 if a job failed."""
    from pmfs.inference.batch import run_batch

    outcome = run_batch(ckpt, jobs, options, results=results)
    print(outcome.summary())
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
