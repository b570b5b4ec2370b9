"""Video reading with PyAV (DESIGN §2, Video): probing, decoding, frame-rate conversion.

Conventions:

- Frames are RGB uint8, (H, W, 3) each, (N, H, W, 3) for a clip; row 0 is the top of the image.
- Frame-rate conversion is by timestamps: output frame k (time k / fps after the first frame)
  shows the source frame whose presentation time is nearest to k / fps (halves to the later
  frame): 30 fps → 25 fps keeps source frame round(1.2 k). Nearest, not "latest earlier": the
  latter shows every frame up to one source frame late, on average half a frame behind the
  audio (17 ms at 30 fps), and a 25 → 30 → 25 fps round trip a whole output frame behind.
  A clip of duration D (first frame's start to last frame's end) gives round(D · fps) frames
  (halves rounded up, at least one).
- Audio read from a video is mono float32 at 16 kHz (`pmfs.audio`), shifted by the offset of the
  audio stream's start relative to the video stream's, so sample 0 lines up with frame 0.

Writing (H.264 + AAC mp4) is `pmfs.video_writer.write_video`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, AudioError, load_audio

PathLike = str | os.PathLike[str]


class VideoError(ValueError):
    """A video file that cannot be read (corrupt, truncated, 0 bytes, no video stream)."""


@dataclass
class Video:
    """A decoded clip.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB.
        fps: Frame rate of `frames`.
        audio: (S,) float32 mono waveform at `sample_rate`, or None if the file has no audio.
        sample_rate: Rate of `audio` in Hz (16 kHz).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None = None
    sample_rate: int = SAMPLE_RATE

    @property
    def num_frames(self) -> int:
        """N."""
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the frames: N / fps."""
        return self.num_frames / self.fps


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` reads from a file's header (no frame is decoded).

    Attributes:
        fps: Average frame rate of the first video stream.
        num_frames: Frames in the stream (from the header, or by counting packets).
        width: Frame width in pixels.
        height: Frame height in pixels.
        duration: Seconds of video (stream duration, or num_frames / fps).
        has_audio: Whether the file has an audio stream.
        audio_offset: Start of the audio stream minus start of the video stream, seconds.
    """

    fps: float
    num_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    audio_offset: float = 0.0


def _open(path: PathLike) -> av.container.InputContainer:
    """Open a video for reading; FileNotFoundError or VideoError naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes) or not a file; re-export or re-download it")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(
            f"cannot open video {path}: {exc}; the file is corrupt or truncated"
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream; pass a video file")
    return container


def _stream_start(stream: av.stream.Stream) -> Fraction:
    """Start time of a stream in seconds (0 when the container does not say)."""
    if stream.start_time is None or stream.time_base is None:
        return Fraction(0)
    return Fraction(stream.start_time) * stream.time_base


def _frame_rate(stream: av.video.stream.VideoStream, path: PathLike) -> Fraction:
    """Average frame rate of a video stream, as an exact fraction."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoError(f"{path}: the video stream has no frame rate; re-mux it with a rate")
    return Fraction(rate)


def probe_video(path: PathLike) -> VideoInfo:
    """Read a video's frame rate, frame count, size, duration and audio presence.

    Args:
        path: A video file (mp4, flv, mkv, ...).

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoError: The file is empty, corrupt or has no video stream.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = _frame_rate(stream, path)
        num_frames = stream.frames
        try:
            if num_frames <= 0:  # e.g. flv: count packets, no decoding
                num_frames = sum(1 for p in container.demux(stream) if p.size > 0)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot read video {path}: {exc}; the file is corrupt") from exc
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = float(num_frames / fps)
        audio_streams = container.streams.audio
        offset = _stream_start(audio_streams[0]) - _stream_start(stream) if audio_streams else 0
        return VideoInfo(
            fps=float(fps),
            num_frames=int(num_frames),
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            duration=duration,
            has_audio=bool(audio_streams),
            audio_offset=float(offset),
        )


def _timed_frames(
    container: av.container.InputContainer, path: PathLike
) -> Iterator[tuple[Fraction, np.ndarray]]:
    """Decode the first video stream: (seconds since the first frame, (H, W, 3) uint8 RGB)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    step = 1 / _frame_rate(stream, path)
    first: Fraction | None = None
    decoded = 0
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                time = Fraction(frame.pts) * frame.time_base
            else:
                time = decoded * step
            first = time if first is None else first
            decoded += 1
            yield time - first, frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise VideoError(f"cannot decode video {path}: {exc}; the file is corrupt") from exc
    _check_complete(path, decoded, stream.frames)


def _check_complete(path: PathLike, decoded: int, declared: int) -> None:
    """Raise VideoError when far fewer frames decode than the header lists (a truncated file).

    A shortfall of up to max(2, 1 %) is tolerated: edit lists can hide a frame or two.
    """
    if declared > 0 and declared - decoded > max(2, declared // 100):
        raise VideoError(
            f"{path} is truncated or corrupt: its header lists {declared} frames but only "
            f"{decoded} decode; re-download or re-export it"
        )


def _resample_timed(
    timed: Iterable[tuple[Fraction, np.ndarray]],
    frame_duration: Fraction,
    fps: Fraction,
    tolerance: Fraction = Fraction(0),
) -> Iterator[np.ndarray]:
    """Stream frames at `fps`: output k shows the frame whose time is nearest to k / fps, i.e. the
    latest frame with time − frame_duration / 2 ≤ k / fps (+ tolerance).

    The output count, round(D · fps) with D = last time + `frame_duration`, is known only at the
    end, and the frames chosen before it can exceed it by one: one output is held back.
    """
    half = frame_duration / 2
    held: np.ndarray | None = None
    count = 0  # outputs chosen so far (yielded + held)
    previous: np.ndarray | None = None
    last_time = Fraction(0)
    for time, frame in timed:
        if previous is not None:
            while Fraction(count) / fps < time - half - tolerance:
                if held is not None:
                    yield held
                held, count = previous, count + 1
        previous, last_time = frame, time
    if previous is None:
        return
    total = _round_half_up((last_time + frame_duration) * fps)
    if held is not None:
        if count <= total:
            yield held
        else:
            count -= 1
    for _ in range(total - count):
        yield previous


def _round_half_up(value: Fraction) -> int:
    """round(value) with halves up, and at least 1 (a non-empty clip keeps a frame)."""
    return max(1, math.floor(value + Fraction(1, 2)))


def fps_fraction(fps: float | Fraction) -> Fraction:
    """An exact frame rate: 29.97002997 → 30000/1001."""
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def iter_frames(path: PathLike, fps: float | None = None) -> Iterator[np.ndarray]:
    """Decode a video frame by frame, without holding the clip in memory.

    Args:
        path: A video file.
        fps: Output frame rate (timestamp resampling, see the module docstring); None keeps the
            file's frames as they are.

    Yields:
        (H, W, 3) uint8 RGB frames.

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoError: The file is empty, corrupt or has no video stream (raised at the first
            `next`, or mid-stream for a file corrupt further in).
    """
    with _open(path) as container:
        timed = _timed_frames(container, path)
        if fps is None:
            yield from (frame for _, frame in timed)
            return
        stream = container.streams.video[0]
        # Timestamps are quantised to the time base: a frame up to one tick late still counts.
        tick = Fraction(stream.time_base) if stream.time_base else Fraction(0)
        duration = 1 / _frame_rate(stream, path)
        yield from _resample_timed(timed, duration, fps_fraction(fps), min(tick, duration / 2))


def read_video(path: PathLike, fps: float | None = None, *, with_audio: bool = True) -> Video:
    """Read a whole clip: frames, frame rate and (optionally) the audio track.

    Args:
        path: A video file.
        fps: Output frame rate (e.g. 25, resampled by timestamps); None keeps the file's rate.
        with_audio: Decode the first audio stream (mono, 16 kHz, silence allowed).

    Returns:
        `Video` with frames (N, H, W, 3) uint8 and audio (S,) float32 or None.

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoError: The file is empty, corrupt, has no video stream or no decodable frame, or
            its audio track is unreadable.
    """
    info = probe_video(path)
    frames = list(iter_frames(path, fps))
    if not frames:
        raise VideoError(f"{path} has no decodable video frame; the file is corrupt")
    audio = _read_audio_track(path, info.audio_offset) if with_audio and info.has_audio else None
    return Video(np.stack(frames), float(fps or info.fps), audio, SAMPLE_RATE)


def _read_audio_track(path: PathLike, offset: float) -> np.ndarray:
    """The audio track as (S,) float32 16 kHz, aligned so that sample 0 is at frame 0."""
    try:
        audio = load_audio(path, SAMPLE_RATE, allow_silent=True)
    except AudioError as exc:
        raise VideoError(f"{path}: the audio track is unreadable ({exc})") from exc
    return align_audio(audio, offset)


def align_audio(audio: np.ndarray, offset: float) -> np.ndarray:
    """Shift a 16 kHz track so that sample 0 is at the first video frame.

    Args:
        audio: (S,) float32 mono 16 kHz.
        offset: start of the audio stream minus start of the video stream, in seconds
            (`VideoInfo.audio_offset`).

    Returns:
        (S',) float32: padded with silence when the audio starts late, cut when it starts early.
    """
    shift = round(offset * SAMPLE_RATE)
    if shift > 0:
        return np.concatenate([np.zeros(shift, dtype=np.float32), audio])
    return audio[-shift:]


def resample_indices(num_frames: int, src_fps: float, dst_fps: float = VIDEO_FPS) -> np.ndarray:
    """Source index of each output frame for a constant-rate clip (the nearest frame).

    Args:
        num_frames: Frames of the source clip.
        src_fps: Its frame rate.
        dst_fps: The output frame rate.

    Returns:
        (round(num_frames · dst / src),) int64 indices, round(k · src / dst) with halves up
        (exact arithmetic).
    """
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    src, dst = fps_fraction(src_fps), fps_fraction(dst_fps)
    total = _round_half_up(num_frames * dst / src)
    ratio = src / dst
    indices = [math.floor(k * ratio + Fraction(1, 2)) for k in range(total)]
    return np.minimum(np.asarray(indices, dtype=np.int64), num_frames - 1)


def resample_frames(frames: np.ndarray, src_fps: float, dst_fps: float = VIDEO_FPS) -> np.ndarray:
    """Change the frame rate of an in-memory clip by index selection (see `resample_indices`).

    Args:
        frames: (N, ...) frames (or any per-frame array, e.g. landmarks (N, 68, 2)).
        src_fps: Rate of `frames`.
        dst_fps: Output rate.

    Returns:
        (round(N · dst / src), ...) array, a copy.
    """
    return frames[resample_indices(len(frames), src_fps, dst_fps)]
