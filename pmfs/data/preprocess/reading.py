"""A clip's frames and audio out of its raw video, for preprocessing (DESIGN §3).

- `clip_frames`: the clip's 25 fps frames, streamed. A segment of a long video (the videos
  layout) starts decoding at the keyframe before it (`iter_frame_range`), so cutting an hour of
  footage into clips decodes it about once, not once per clip, and gives exactly the frames
  `pmfs.video.iter_frames` gives for that range.
- `clip_audio`: the clip's audio, mono 16 kHz, sample 0 at its first frame, checked for silence.
  A segment's audio is cut out of its video's whole track, which is decoded once per process and
  video (`source_audio` keeps the last one).

Every problem becomes a `ClipSkipError` whose message is the manifest reason ("code: detail").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np

from pmfs.audio import (
    SAMPLE_RATE,
    VIDEO_FPS,
    AudioError,
    SilentAudioError,
    check_not_silent,
    load_audio,
)
from pmfs.data.preprocess.layouts import ClipJob
from pmfs.video import VideoError, VideoInfo, align_audio, fps_fraction, iter_frames, probe_video

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640


class ClipSkipError(ValueError):
    """A clip that cannot be used; the message is the manifest reason ("code: detail")."""


def probe(video: Path) -> VideoInfo:
    """The video's header (`pmfs.video.probe_video`); a bad file is `unreadable_video`."""
    try:
        return probe_video(video)
    except (VideoError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_video: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def clip_frames(job: ClipJob) -> Iterator[np.ndarray]:
    """The clip's frames at 25 fps, (H, W, 3) uint8, streamed; a bad video skips the clip.

    A segment that ends before its planned end (a truncated file) is `unreadable_video` too.
    """
    expected = None if job.stop is None else job.stop - job.start
    count = 0
    try:
        for frame in iter_frame_range(job.video, VIDEO_FPS, job.start, job.stop):
            count += 1
            yield frame
    except (VideoError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_video: {exc}") from exc
    if expected is not None and count < expected:
        raise ClipSkipError(
            f"unreadable_video: {job.video} ends at frame {job.start + count} (25 fps) but the "
            f"clip runs to frame {job.stop}; the file is truncated"
        )


class _SeekMissedError(Exception):
    """The seek landed after the wanted frame (a container with imprecise seeking)."""


def iter_frame_range(
    path: Path, fps: float, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Frames `start`..`stop − 1` of `pmfs.video.iter_frames(path, fps)`, without decoding the
    frames before the keyframe that precedes `start`.

    The frame choice is `iter_frames`'s (output k shows the latest frame whose time since the
    first frame is ≤ k / fps, one time-base tick of tolerance); a file whose seeking misses or
    whose frames carry no timestamps is decoded from its start instead.

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoError: the file is empty, corrupt or has no video stream.
    """
    if start > 0:
        frames = _seeked_frames(path, fps, start, stop)
        try:
            first = next(frames, None)
        except _SeekMissedError:
            log.debug("%s: seeking to frame %d missed; decoding from the start", path, start)
        else:
            if first is not None:
                yield first
                yield from frames
            return
    yield from islice(iter_frames(path, fps), start, stop)


def _open(path: Path) -> av.container.InputContainer:
    if not Path(path).is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(f"cannot open video {path}: {exc}; the file is corrupt") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream; pass a video file")
    return container


def _first_time(path: Path) -> Fraction | None:
    """Presentation time of the video's first frame in seconds (None: no timestamps)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode video {path}: {exc}; the file is corrupt") from exc
        if frame is None or frame.pts is None or stream.time_base is None:
            return None
        return Fraction(frame.pts) * stream.time_base


def _seeked_frames(path: Path, fps: float, start: int, stop: int | None) -> Iterator[np.ndarray]:
    """`iter_frame_range` after a seek; raises `_SeekMissedError` before yielding anything."""
    first = _first_time(path)
    if first is None:
        raise _SeekMissedError
    rate = fps_fraction(fps)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frame_rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if stream.time_base is None or not frame_rate:
            raise _SeekMissedError
        base, duration = Fraction(stream.time_base), 1 / Fraction(frame_rate)
        tolerance = min(base, duration / 2)
        try:
            container.seek(int((first + start / rate) / base), stream=stream, backward=True)
            timed = (
                (Fraction(f.pts) * base - first, f)
                for f in container.decode(stream)
                if f.pts is not None
            )
            yield from _choose(timed, rate, tolerance, duration, start, stop)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode video {path}: {exc}; the file is corrupt") from exc


def _choose(
    timed: Iterator[tuple[Fraction, av.VideoFrame]],
    rate: Fraction,
    tolerance: Fraction,
    duration: Fraction,
    start: int,
    stop: int | None,
) -> Iterator[np.ndarray]:
    """Output frames `start`.. of a decode that starts at or before output `start`'s time.

    The same choice and the same end as `pmfs.video._resample_timed`: one output is held back
    until the clip's total, round(D · fps), is known.
    """
    k, held, current, last = start, None, None, Fraction(0)
    half = duration / 2  # a frame serves the outputs nearest to its time
    for time, frame in timed:
        if current is None and time - half > start / rate + tolerance:
            raise _SeekMissedError
        while current is not None and time - half > k / rate + tolerance:
            if held is not None:
                yield held
            held, k = current.to_ndarray(format="rgb24"), k + 1
            if stop is not None and k >= stop:
                yield held
                return
        current, last = frame, time
    if current is None:
        return
    total = max(1, int((last + duration) * rate + Fraction(1, 2)))
    if held is not None:
        if k <= total:
            yield held
        else:
            k -= 1
    image = current.to_ndarray(format="rgb24")
    for _ in range(min(total, stop if stop is not None else total) - k):
        yield image


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------

_AUDIO: dict[tuple[str, ...], np.ndarray] = {}


def _signature(path: Path | None) -> tuple[str, ...]:
    if path is None or not Path(path).is_file():
        return (str(path),)
    stat = Path(path).stat()
    return (str(path), str(stat.st_size), str(stat.st_mtime_ns))


def source_audio(video: Path, audio: Path | None, info: VideoInfo) -> np.ndarray:
    """(A,) float32 mono 16 kHz of a whole video: `audio` when given, else the video's track,
    sample 0 at the first frame; silence allowed. The last one read is kept (per process).

    Raises:
        ClipSkipError: `no_audio` / `unreadable_audio`.
    """
    key = (*_signature(video), *_signature(audio))
    if key not in _AUDIO:
        _AUDIO.clear()
        _AUDIO[key] = _read_source_audio(video, audio, info)
    return _AUDIO[key]


def _read_source_audio(video: Path, audio: Path | None, info: VideoInfo) -> np.ndarray:
    if audio is None and not info.has_audio:
        raise ClipSkipError(f"no_audio: {video} has no audio track and no separate audio file")
    source = audio or video
    try:
        samples = load_audio(source, SAMPLE_RATE, allow_silent=True)
    except (AudioError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_audio: {exc}") from exc
    return samples if audio is not None else align_audio(samples, info.audio_offset)


def clip_audio(job: ClipJob, info: VideoInfo) -> np.ndarray:
    """(A,) float32 mono 16 kHz of the clip, sample 0 at its first frame; not silent.

    Raises:
        ClipSkipError: `no_audio`, `unreadable_audio` or `silent_audio`.
    """
    if job.is_segment:
        whole = source_audio(job.video, job.audio, info)
        stop = None if job.stop is None else job.stop * SAMPLES_PER_FRAME
        audio, source = whole[job.start * SAMPLES_PER_FRAME : stop], f"{job.clip} of {job.video}"
    else:
        audio, source = _read_source_audio(job.video, job.audio, info), str(job.audio or job.video)
    try:
        check_not_silent(audio, source)
    except SilentAudioError as exc:
        raise ClipSkipError(f"silent_audio: {exc}") from exc
    return audio
