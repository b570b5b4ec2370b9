"""`pmfs bench faces`: frames/s per worker of the dlib landmark path at 256², 720p and 1080p.

The frames are real: the first `--frames` frames of the talking-man sample
(`../shared/samples/talking_man_1080x1920.mp4` next to the repository, or `$PMFS_SAMPLES`, or
`--video`), else scikit-image's astronaut photo repeated. 1080p and 720p are the frames scaled so
that their short side is 1080 / 720 px (the portrait sample is 1080×1920 itself; the astronaut is
scaled to the height and padded to 16:9); 256² is a square crop around the face (twice the
detector's box) scaled to 256², as a MEAD-like crop. What is timed is
`pmfs.faces.dlib_detector.DlibLandmarks.track` over the frames held in memory — reduce, HOG
detection, tracking, the 68-point fit — in one process, i.e. one preprocessing worker (dlib runs
on one core); the detection and the fit are also timed alone. Decoding is not included.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pmfs.commands.bench.harness import machine, machine_line, median
from pmfs.options import option

log = logging.getLogger(__name__)

SAMPLE = "talking_man_1080x1920.mp4"
Size = Literal["256", "720p", "1080p"]
SHORT_SIDE: dict[str, int] = {"720p": 720, "1080p": 1080}


@dataclass(frozen=True)
class FacesOptions:
    """Options of `pmfs bench faces`."""

    json: str | None = option(None, help="write the results to this JSON file")
    sizes: tuple[Size, ...] = option(("256", "720p", "1080p"), help="frame sizes to time")
    frames: int = option(50, help="frames timed per size", minimum=1)
    video: Path | None = option(
        None,
        help=f"a talking-head video to take the frames from (default: {SAMPLE} of "
        "../shared/samples or $PMFS_SAMPLES when present, else scikit-image's astronaut)",
    )
    warmup: int = option(1, help="untimed passes first", minimum=0)
    repeats: int = option(3, help="timed passes (median)", minimum=1)


def default_video() -> Path | None:
    """The talking-man sample when it is on this machine, else None."""
    root = os.environ.get("PMFS_SAMPLES")
    folder = Path(root) if root else Path(__file__).resolve().parents[3].parent / "shared/samples"
    path = folder / SAMPLE
    return path if path.is_file() else None


def source_frames(video: Path | None, count: int) -> tuple[list[np.ndarray], str]:
    """`count` (H, W, 3) uint8 RGB frames of `video` at 25 fps, or the astronaut repeated.

    Returns:
        The frames and what they are (for the table).
    """
    if video is not None:
        from pmfs.video import iter_frames

        frames = list(itertools.islice(iter_frames(video, 25), count))
        if not frames:
            raise ValueError(f"{video} has no decodable frame")
        return frames, f"the first {len(frames)} frames of {video.name}"
    from skimage import data

    return [data.astronaut()] * count, f"scikit-image's astronaut ×{count}"


def scaled(frames: list[np.ndarray], short: int) -> list[np.ndarray]:
    """Frames scaled so that their short side is `short` px; a square one is padded to 16:9."""
    from PIL import Image

    h, w = frames[0].shape[:2]
    k = short / min(h, w)
    size = (round(w * k), round(h * k))
    out = [
        frame
        if size == (w, h)
        else np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
        for frame in frames
    ]
    if h == w:  # a photo: landscape 16:9, the border repeated
        pad = round(short * 16 / 9) - size[0]
        out = [np.pad(f, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), mode="edge") for f in out]
    return out


def face_crops(frames: list[np.ndarray], landmarks: Any, size: int = 256) -> list[np.ndarray]:
    """(size, size, 3) crops of twice the first frame's face box, the same box for every frame."""
    from pmfs.faces.crop import CropBox, crop_frame

    faces = landmarks.detect(frames[0], 0) or landmarks.detect(frames[0], 1)
    if not faces:
        raise ValueError("no face in the first frame to crop the 256² frames around")
    face = max(faces, key=lambda f: f.score)
    side = round(2 * face.side)
    cx, cy = (face.left + face.right) / 2, (face.top + face.bottom) / 2
    box = CropBox(round(cx - side / 2), round(cy - side / 2), side)
    return [crop_frame(frame, box, size) for frame in frames]


def _time_track(landmarks: Any, frames: list[np.ndarray], options: FacesOptions) -> dict[str, Any]:
    """Wall and CPU time of `track` over the frames, and of its detection and fit alone."""
    for _ in range(options.warmup):
        landmarks.track(frames)
    wall, cpu = [], []
    for _ in range(options.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        track = landmarks.track(frames)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    start = time.perf_counter()
    faces = [landmarks.detect(frame, 0) for frame in frames]
    detect_s = time.perf_counter() - start
    boxes = [max(f, key=lambda b: b.score) for f in faces if f]
    start = time.perf_counter()
    for frame, box in zip(frames, boxes, strict=False):
        landmarks.fit(frame, box)
    fit_s = time.perf_counter() - start
    n, seconds = len(frames), median(wall)
    return {
        "frames": n,
        "seconds": wall,
        "frames_per_s": n / seconds,
        "ms_per_frame": 1e3 * seconds / n,
        "cpu_ms_per_frame": 1e3 * median(cpu) / n,
        "detect_ms_per_frame": 1e3 * detect_s / n,
        "fit_ms_per_face": 1e3 * fit_s / max(len(boxes), 1),
        "retries": track.retries,
        "frames_with_face": int((~np.isnan(track.landmarks[:, 0, 0])).sum()),
    }


def faces_payload(options: FacesOptions) -> dict[str, Any] | None:
    """`pmfs bench faces`: the dlib path's frames/s per size; None when dlib is missing."""
    from pmfs.faces.dlib_detector import MAX_SIDE, DlibLandmarks, DlibModelError

    try:
        landmarks = DlibLandmarks()
    except DlibModelError as exc:
        log.error("%s", exc)
        return None
    video = options.video or default_video()
    frames, source = source_frames(video, options.frames)
    runs = []
    for size in options.sizes:
        sized = face_crops(frames, landmarks) if size == "256" else scaled(frames, SHORT_SIDE[size])
        h, w = sized[0].shape[:2]
        run = {"size": size, "width": w, "height": h, **_time_track(landmarks, sized, options)}
        log.info("faces %s (%d×%d): %.1f frames/s", size, w, h, run["frames_per_s"])
        runs.append(run)
    return {
        "benchmark": "faces",
        "machine": machine(),
        "settings": {
            "source": source,
            "max_side": MAX_SIDE,
            "warmup": options.warmup,
            "repeats": options.repeats,
        },
        "runs": runs,
    }


def faces_table(payload: dict[str, Any]) -> str:
    """A Markdown table of frames/s per worker and the time of each step, per frame size."""
    s = payload["settings"]
    lines = [
        f"dlib landmarks (HOG on a copy ≤ {s['max_side']} px, upsample 1 only when needed, one "
        f"face tracked, 68 points at full size), one process = one worker; {s['source']}; "
        f"median of {s['repeats']} after {s['warmup']} warm-up; "
        f"{machine_line(payload['machine'])}",
        "",
        "| size | frame | frames/s per worker | ms/frame | CPU ms/frame | detect ms/frame | "
        "fit ms/face | upsample-1 retries | frames with a face |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(
            f"| {r['size']} | {r['width']}×{r['height']} | {r['frames_per_s']:.1f} | "
            f"{r['ms_per_frame']:.1f} | {r['cpu_ms_per_frame']:.1f} | "
            f"{r['detect_ms_per_frame']:.1f} | {r['fit_ms_per_face']:.1f} | {r['retries']} | "
            f"{r['frames_with_face']}/{r['frames']} |"
        )
    return "\n".join(lines)
