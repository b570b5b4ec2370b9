"""Video writing with PyAV (DESIGN §2, Video): H.264 + AAC, atomically.

Written videos are H.264 (libx264, yuv420p, CRF configurable) + AAC mono, in an mp4 written
atomically (`name.tmp.mp4`, then `os.replace`). yuv420p needs even sizes: odd heights/widths are
padded by repeating the last row/column (or refused with `pad_odd=False`). Frames follow the
conventions of `pmfs.video`: RGB uint8, (H, W, 3) each; row 0 is the top of the image.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, to_mono_16k
from pmfs.video import PathLike, fps_fraction

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
"""Containers `write_video` writes (H.264 + AAC)."""
AAC_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


def write_video(
    path: PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = VIDEO_FPS,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
    *,
    preset: str = "medium",
    pad_odd: bool = True,
) -> None:
    """Write an H.264 (yuv420p) + AAC mp4, atomically (`name.tmp.mp4`, then `os.replace`).

    Args:
        path: Output file, .mp4 (or .mov/.m4v/.mkv); parent folders are created.
        frames: (N, H, W, 3) uint8 RGB, or an iterable of (H, W, 3) uint8 frames (streamed).
        fps: Frame rate.
        audio: (S,) mono (or (S, C), averaged) float waveform at `sample_rate`, or None.
        sample_rate: Rate of `audio`; rates AAC cannot store are resampled to 16 kHz.
        crf: libx264 constant rate factor (0 lossless … 51 worst; 18 is visually lossless).
        preset: libx264 speed preset ("ultrafast" … "veryslow").
        pad_odd: Pad odd heights/widths to even by repeating the last row/column; if False,
            raise ValueError for them.

    Raises:
        ValueError: Bad frames (shape, dtype, size change), an unknown suffix, or no frames.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write {path}: use one of the suffixes {VIDEO_SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    rate = sample_rate if sample_rate in AAC_SAMPLE_RATES else SAMPLE_RATE
    mono = None if audio is None else to_mono_16k(np.asarray(audio), sample_rate, rate)
    try:
        _encode(tmp, iter(frames), fps_fraction(fps), mono, rate, crf, preset, pad_odd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_frame(frame: np.ndarray, index: int, size: tuple[int, int] | None) -> np.ndarray:
    """Validate one (H, W, 3) uint8 frame (same size as the first one)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"frame {index} must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}; "
            "convert float images with (x * 255).round().astype(np.uint8)"
        )
    if size is not None and frame.shape[:2] != size:
        raise ValueError(f"frame {index} is {frame.shape[:2]}, the first frame was {size}")
    return frame


def _pad_even(frame: np.ndarray, pad_odd: bool) -> np.ndarray:
    """Pad an odd-sized frame to even size by edge repetition (yuv420p needs even sizes)."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    if not pad_odd:
        raise ValueError(
            f"frame size {frame.shape[:2]} is odd; H.264 yuv420p needs even sizes: crop the "
            "frames or pass pad_odd=True"
        )
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _encode(
    path: Path,
    frames: Iterator[np.ndarray],
    fps: Fraction,
    audio: np.ndarray | None,
    sample_rate: int,
    crf: int,
    preset: str,
    pad_odd: bool,
) -> None:
    """Encode frames (and audio, interleaved frame by frame) into `path`."""
    first = next(frames, None)
    if first is None:
        raise ValueError(f"cannot write {path}: no frames")
    size = _check_frame(first, 0, None).shape[:2]
    if (size[0] % 2 or size[1] % 2) and pad_odd:
        logger.info("%s: padding odd frame size %s to even for yuv420p", path, size)
    height, width = _pad_even(first, pad_odd).shape[:2]
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(int(crf)), "preset": preset}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        sent = 0  # audio samples already encoded
        index = 0
        for index, frame in enumerate(_chain(first, frames)):
            rgb = _pad_even(_check_frame(frame, index, size), pad_odd)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
            if sound is not None and audio is not None:
                until = math.floor((index + 1) * sample_rate / fps)
                sent = _encode_audio(container, sound, audio, sent, until, sample_rate)
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            _encode_audio(container, sound, audio, sent, audio.shape[0], sample_rate)
            container.mux(sound.encode(None))
        logger.debug("wrote %d frames to %s", index + 1, path)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`first` then the rest of the frames."""
    yield first
    yield from rest


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    audio: np.ndarray,
    start: int,
    stop: int,
    sample_rate: int,
) -> int:
    """Encode samples [start, stop) of `audio`; returns the new start (PyAV re-chunks to 1024)."""
    stop = min(stop, audio.shape[0])
    if stop <= start:
        return start
    chunk = av.AudioFrame.from_ndarray(audio[None, start:stop], format="flt", layout="mono")
    chunk.sample_rate = sample_rate
    chunk.pts = start
    chunk.time_base = Fraction(1, sample_rate)
    container.mux(stream.encode(chunk))
    return stop
