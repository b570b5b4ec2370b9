"""`pmfs infer`: speech + a target face (video or image) → a talking-face mp4 (DESIGN §4).

    pmfs infer --ckpt last.ckpt --audio speech.wav --face target.mp4 --out out.mp4

The work is done by `pmfs.pipeline.run_inference`; this module parses the options and reports.
Heavy modules (torch, numpy, PyAV) are imported only when a run starts, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmfs.pipeline import InferenceOptions

log = logging.getLogger(__name__)

EMOTION_NAMES = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
"""`--emotion` choices (`pmfs.batch.EMOTIONS`, repeated here to keep `--help` light)."""


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs infer` argument parser."""
    parser = argparse.ArgumentParser(
        prog="pmfs infer",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Make a talking-face video: the whole PMFS chain driven by AUDIO, the "
        "generated face pasted back into the original frames of FACE, the audio muxed. The "
        "output has the audio's length: a shorter template video is played forward and "
        "backward, a longer one trimmed; an image is animated.",
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="a `pmfs fit` checkpoint of PMFS")
    parser.add_argument("--audio", type=Path, required=True, help="speech: wav/mp3/m4a/flac/...")
    parser.add_argument("--face", type=Path, required=True, help="target video or image")
    parser.add_argument("--out", type=Path, required=True, help="the .mp4 to write")
    parser.add_argument(
        "--references", type=int, default=None, help="K reference frames (default: the ckpt's)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--landmarks",
        type=Path,
        default=None,
        help="a .npy of the face's landmarks, (N, 68, 2) or (N, F, 68, 2) pixels of its frames "
        "(NaN: no face), instead of detecting them with face-alignment",
    )
    parser.add_argument(
        "--template-frames",
        type=int,
        default=None,
        help="use only the first N frames of the face video (played forward and backward)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="use only the first SECONDS of the audio (a quick preview)",
    )
    parser.add_argument(
        "--max-gap",
        type=int,
        default=8,
        help="frames without a face interpolated; longer gaps are passed through unchanged",
    )
    parser.add_argument(
        "--crop-scale",
        type=float,
        default=None,
        help="crop side / face size, as the model's training data was cropped (default: "
        "`pmfs data preprocess`'s)",
    )
    parser.add_argument(
        "--crop-shift",
        type=float,
        default=None,
        help="downward shift of the crop centre, in face sizes (default: preprocessing's)",
    )
    parser.add_argument("--emotion", choices=EMOTION_NAMES, default=None, help="emotion label")
    parser.add_argument("--level", type=int, choices=(1, 2, 3), default=None, help="intensity")
    parser.add_argument("--chunk", type=int, default=16, help="frames per renderer pass")
    parser.add_argument("--batch-size", type=int, default=16, help="frames per detector batch")
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality (0 best … 51 worst)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    return parser


def _options(args: argparse.Namespace) -> InferenceOptions:
    """The `InferenceOptions` of parsed arguments."""
    from pmfs.batch import EMOTIONS, LEVELS
    from pmfs.pipeline import InferenceOptions

    for name in ("references", "template_frames", "chunk", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {value}")
    if args.crop_scale is not None and args.crop_scale <= 0:
        raise ValueError(f"--crop-scale must be > 0, got {args.crop_scale}")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {args.duration}")
    return InferenceOptions(
        num_references=args.references,
        device=args.device,
        template_frames=args.template_frames,
        duration=args.duration,
        max_gap=args.max_gap,
        chunk=args.chunk,
        batch_size=args.batch_size,
        crop_scale=args.crop_scale,
        crop_shift=args.crop_shift,
        emotion=None if args.emotion is None else EMOTIONS.index(args.emotion),
        level=None if args.level is None else LEVELS.index(args.level),
        crf=args.crf,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs infer …`; returns 0 on success, 1 on bad input (the reason on stderr)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from pmfs.data.preprocess.detect import DetectorWeightsError
    from pmfs.pipeline import run_inference

    try:
        result = run_inference(
            args.ckpt, args.audio, args.face, args.out, _options(args), landmarks=args.landmarks
        )
    except (FileNotFoundError, ValueError, DetectorWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    h, w = result.size
    print(
        f"wrote {result.out}: {result.frames} frames ({result.frames / 25:.2f} s) at {w}×{h}, "
        f"{result.template_frames} template frames, in {result.seconds:.1f} s "
        f"({result.frames / max(result.seconds, 1e-9):.1f} frames/s)"
    )
    if result.missing or result.multi_face:
        print(
            f"  {result.missing} template frames without a face "
            f"({result.passed_through} passed through), {result.multi_face} with several faces "
            "(the largest used)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
