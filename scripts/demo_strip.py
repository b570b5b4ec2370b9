"""The README's demo image: frames of the face clip above, the same frames of `demo.mp4` below.

    python scripts/demo_strip.py outputs docs/images/demo_inference.png

Reads `<outputs>/demo_inputs/face_*.mp4` (the held-out speaker's face clip) and
`<outputs>/demo.mp4` (that face driven by another clip's speech), takes `--frames` frames evenly
spread over the demo video, and writes them as a 2-row strip at their full resolution.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pmfs.inference.template import playback_indices
from pmfs.video import read_video


def demo_strip(outputs: Path, frames: int = 6) -> np.ndarray:
    """(2·S, frames·S, 3) uint8: the face clip's frames above, demo.mp4's below."""
    faces = sorted((outputs / "demo_inputs").glob("face_*.mp4"))
    if not faces or not (outputs / "demo.mp4").is_file():
        raise FileNotFoundError(f"no demo in {outputs}: run `pmfs demo --out {outputs}` first")
    made = read_video(outputs / "demo.mp4").frames
    face = read_video(faces[0]).frames
    source = face[playback_indices(len(face), len(made))]
    picks = np.linspace(len(made) // 10, len(made) - 1 - len(made) // 10, frames).astype(int)
    top = np.concatenate(list(source[picks]), axis=1)
    bottom = np.concatenate(list(made[picks]), axis=1)
    return np.concatenate([top, bottom], axis=0)


def main(argv: list[str] | None = None) -> int:
    """Write the strip; 1 with a one-line reason when there is no demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", type=Path, help="the `pmfs demo --out` folder")
    parser.add_argument("image", type=Path, help="the PNG to write")
    parser.add_argument("--frames", type=int, default=6, help="frames in the strip")
    args = parser.parse_args(argv)
    try:
        strip = demo_strip(args.outputs, args.frames)
    except FileNotFoundError as exc:
        print(f"demo_strip: {exc}", file=sys.stderr)
        return 1
    Image.fromarray(strip).save(args.image)
    print(f"wrote {args.image} ({strip.shape[1]}×{strip.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
