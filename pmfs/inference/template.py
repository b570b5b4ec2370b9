"""The target face of `pmfs infer`: its frames read at 25 fps, and played to the audio's length.

`load_template` reads a video (any frame rate and size, resampled to 25 fps, in its original
resolution) or a still image (one frame, animated), decoding no more frames than the output
needs; `playback_indices` plays the frames forward and backward (or trims them) to the number
of output frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmfs.audio import VIDEO_FPS
from pmfs.video import iter_frames, probe_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""Face inputs read as a single image (animated)."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".flv", ".webm", ".mpg", ".mpeg", ".ts")
"""Face inputs read as a template video (any frame rate and size; resampled to 25 fps)."""


class InferenceInputError(ValueError):
    """An input of `pmfs infer` that cannot be used (the message names the file and the fix)."""


@dataclass
class Template:
    """The target face's frames.

    Attributes:
        frames: (M, H, W, 3) uint8 RGB frames at 25 fps in the original resolution (M = 1 for
            an image).
        source: the file they come from.
        is_image: True for a still image, animated by the audio.
        source_fps: frame rate of the file (25 for an image), for landmark files.
    """

    frames: np.ndarray
    source: Path
    is_image: bool
    source_fps: float = float(VIDEO_FPS)

    @property
    def num_frames(self) -> int:
        """M."""
        return int(self.frames.shape[0])


def load_template(path: str | Path, max_frames: int | None = None) -> Template:
    """Read the target face: an image, or the first `max_frames` frames of a video at 25 fps.

    Args:
        path: an image (`IMAGE_SUFFIXES`) or a video (`VIDEO_SUFFIXES`).
        max_frames: decode at most this many frames (None: the whole video). The output never
            needs more frames than the audio has, so callers pass that count.

    Raises:
        FileNotFoundError: `path` does not exist.
        InferenceInputError: unknown suffix, or an unreadable/empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Template(_read_image(path)[None], path, is_image=True)
    if suffix not in VIDEO_SUFFIXES:
        raise InferenceInputError(
            f"{path}: unknown face format {suffix!r}; give a video "
            f"({', '.join(VIDEO_SUFFIXES)}) or an image ({', '.join(IMAGE_SUFFIXES)})"
        )
    try:
        fps = probe_video(path).fps
        frames = list(itertools.islice(iter_frames(path, VIDEO_FPS), max_frames))
    except ValueError as exc:  # VideoError: corrupt, truncated, 0 bytes, no video stream
        raise InferenceInputError(f"cannot read the face video {path}: {exc}") from exc
    if not frames:
        raise InferenceInputError(f"{path} has no decodable video frame; re-export it")
    return Template(np.stack(frames), path, is_image=False, source_fps=fps)


def _read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (alpha dropped, greyscale expanded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InferenceInputError(f"cannot read the face image {path}: {exc}") from exc


def playback_indices(template_frames: int, num_frames: int) -> np.ndarray:
    """Template frame of each output frame: forward, then backward, … (ping-pong), or trimmed.

    Args:
        template_frames: M ≥ 1.
        num_frames: N output frames.

    Returns:
        (N,) int64 indices into the template: 0, 1, …, M−1, M−2, …, 0, 1, … (M = 1: all 0).
    """
    if template_frames <= 1:
        return np.zeros(num_frames, dtype=np.int64)
    period = 2 * (template_frames - 1)
    phase = np.arange(num_frames, dtype=np.int64) % period
    return np.where(phase < template_frames, phase, period - phase)
