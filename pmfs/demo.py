"""`pmfs demo`: the README's main job on the built-in synthetic data.

Today it (1) builds the synthetic dataset (resumable: a rerun reuses finished clips), (2) writes
its contact sheet, and (3) renders `demo.mp4`: a clip of a held-out speaker, side by side with its
differentiable landmark sketch and the sketch drawn over the frame, with the clip's synthesized
speech muxed in. Training the stages and rendering generated faces join as those parts land.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from pmfs.data.cache import Cache, ClipReader
from pmfs.landmarks import pixels_to_normalized, render_sketch
from pmfs.video import write_video

log = logging.getLogger(__name__)

SKETCH_COLOUR = np.array([40, 255, 120], dtype=np.float32)


def sketch_panels(clip: ClipReader, chunk: int = 16, line_width: float = 1.5) -> np.ndarray:
    """Frames of a clip beside their landmark sketch and the sketch over the frame.

    Args:
        clip: a cached clip of N frames of S×S pixels.
        chunk: frames rendered per sketch batch (bounds memory).
        line_width: sketch line width in pixels.

    Returns:
        (N, S, 3·S, 3) uint8 RGB: frame | sketch | overlay.
    """
    size = clip.size
    frames = clip.frames(range(clip.num_frames)).astype(np.float32)  # (N, S, S, 3)
    points = torch.from_numpy(pixels_to_normalized(clip.landmarks, size))  # (N, 68, 2)
    sketches = []
    with torch.no_grad():
        for start in range(0, clip.num_frames, chunk):
            batch = points[start : start + chunk].unsqueeze(0)  # (1, n, 68, 2)
            sketches.append(render_sketch(batch, size, line_width=line_width)[0, :, 0])
    alpha = torch.cat(sketches).numpy()[..., None]  # (N, S, S, 1) in [0, 1]
    sketch = alpha * 255.0 * np.ones(3, np.float32)
    overlay = frames * (1 - alpha) + SKETCH_COLOUR * alpha
    panels = np.concatenate([frames, sketch, overlay], axis=2)
    return np.clip(panels + 0.5, 0, 255).astype(np.uint8)


def pick_demo_clip(cache: Cache) -> str:
    """The first clip of the first held-out speaker (any clip when none is held out)."""
    held_out = set(cache.extra.get("test_speakers", []))
    clips = cache.clips()
    if not clips:
        raise ValueError(f"{cache.root}: the cache has no usable clip")
    chosen = next((r for r in clips if r.speaker in held_out), clips[0])
    return chosen.clip


def build_parser() -> argparse.ArgumentParser:
    """Options of `pmfs demo`."""
    parser = argparse.ArgumentParser(prog="pmfs demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    parser.add_argument("--speakers", type=int, default=None, help="synthetic speakers")
    parser.add_argument("--clips", type=int, default=None, help="clips per synthetic speaker")
    parser.add_argument("--size", type=int, default=256, help="image size of the dataset")
    return parser


def main(argv: list[str]) -> int:
    """Run the demo; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pmfs.data.cli import main as data_main  # the generator's own CLI, same defaults

    started = time.perf_counter()
    data_dir = args.out / "data" / "synthetic"
    synth_args = ["synth", "--out", str(data_dir), "--seed", str(args.seed)]
    synth_args += ["--size", str(args.size)]
    if args.speakers is not None:
        synth_args += ["--speakers", str(args.speakers)]
    if args.clips is not None:
        synth_args += ["--clips", str(args.clips)]
    if data_main(synth_args) != 0:
        return 1
    sheet = args.out / "contact_sheet.png"
    if data_main(["sheet", "--cache", str(data_dir), "--out", str(sheet)]) != 0:
        return 1
    cache = Cache(data_dir)
    clip_id = pick_demo_clip(cache)
    clip = cache.open(clip_id)
    video = args.out / "demo.mp4"
    write_video(video, sketch_panels(clip), fps=25, audio=clip.audio, sample_rate=16000)
    elapsed = time.perf_counter() - started
    print(f"dataset       {data_dir}  ({len(cache.clips())} clips)")
    print(f"contact sheet {sheet}")
    print(f"demo video    {video}  (clip {clip_id}: frame | landmark sketch | overlay, with audio)")
    print(f"done in {elapsed:.0f} s")
    return 0
