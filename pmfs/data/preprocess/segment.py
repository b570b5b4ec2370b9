"""Cutting a long video into clips at the pauses of its speech (the videos layout).

Frames are the video's 25 fps frames; frame k owns audio samples [640 k, 640 (k + 1)) at 16 kHz.

- *Level*: each frame's RMS in dB (`frame_levels`).
- *Pause*: a run of at least `min_pause` frames quieter than `pause_threshold`: 30 dB under the
  speech (the 95th percentile of the levels) but at least 6 dB over the noise floor (the 5th
  percentile). When those two percentiles are less than 12 dB apart the audio is one continuous
  sound (or one long silence) and has no pause.
- *Cuts* (`cut_range`): while what is left of a range is longer than `max_len`, the next cut
  goes in the middle of the longest pause (ties: the later one) among the places that leave a
  clip of `min_len`..`max_len` frames and a rest of at least `min_len`; with no pause there, the
  cut is at `max_len` frames (fixed length; `max_len ≥ 2 min_len` guarantees a place exists).
  The last clip is what is left (`min_len`..`max_len` frames).

Cuts fall between frames, so a clip's audio is exactly its frames' samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLES_PER_FRAME = 640
"""16 kHz samples per 25 fps frame."""
SPEECH_PERCENTILE, FLOOR_PERCENTILE = 95.0, 5.0
PAUSE_BELOW_SPEECH_DB, PAUSE_ABOVE_FLOOR_DB, MIN_RANGE_DB = 30.0, 6.0, 12.0
SILENCE_DB = -200.0
"""Level of a frame without audio (past the end of the track, or digital silence)."""


@dataclass(frozen=True)
class Piece:
    """A planned clip of a video: frames [start, stop) at 25 fps.

    Attributes:
        start: first frame.
        stop: end frame (exclusive).
        split: "train" / "test" when the split is by time, else None.
        too_short: the piece is a whole range (a video, or its train or test part) shorter than
            the shortest clip: it is recorded as skipped, not written.
    """

    start: int
    stop: int
    split: str | None = None
    too_short: bool = False


def frame_levels(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """RMS level of each frame's audio in dB.

    Args:
        audio: (A,) float32 mono 16 kHz, sample 0 at frame 0.
        num_frames: N frames; audio past them is ignored, frames past the audio are silent.

    Returns:
        (N,) float64 dB (full scale 1.0 → 0 dB), `SILENCE_DB` for silent frames.
    """
    samples = np.zeros(num_frames * SAMPLES_PER_FRAME, dtype=np.float64)
    used = min(len(audio), len(samples))
    samples[:used] = audio[:used]
    rms = np.sqrt(np.mean(samples.reshape(num_frames, SAMPLES_PER_FRAME) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        levels = 20.0 * np.log10(rms)
    return np.maximum(levels, SILENCE_DB)


def pause_threshold(levels: np.ndarray) -> float | None:
    """The level under which a frame is a pause (module docstring), or None: no pause."""
    if len(levels) == 0:
        return None
    speech = float(np.percentile(levels, SPEECH_PERCENTILE))
    floor = float(np.percentile(levels, FLOOR_PERCENTILE))
    if speech - floor < MIN_RANGE_DB:
        return None
    return max(speech - PAUSE_BELOW_SPEECH_DB, floor + PAUSE_ABOVE_FLOOR_DB)


def pause_runs(levels: np.ndarray, min_pause: int) -> list[tuple[int, int]]:
    """The pauses of a track: [start, stop) frame runs under `pause_threshold`, ≥ `min_pause`."""
    threshold = pause_threshold(levels)
    if threshold is None:
        return []
    quiet = np.concatenate([[False], levels < threshold, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True)
    return [(int(a), int(b)) for a, b in runs if b - a >= max(1, min_pause)]


def _next_cut(
    position: int, stop: int, runs: list[tuple[int, int]], min_len: int, max_len: int
) -> int:
    """Where the clip starting at `position` ends (a cut inside a pause, else fixed length)."""
    lo, hi = position + min_len, min(position + max_len, stop - min_len)
    best: tuple[int, int] | None = None  # (pause length, cut)
    for run_start, run_stop in runs:
        a, b = max(run_start, lo), min(run_stop, hi + 1)  # the run's frames where a cut may go
        if a < b:
            candidate = (run_stop - run_start, (a + b) // 2)
            best = candidate if best is None or candidate >= best else best
    return hi if best is None else best[1]


def cut_range(
    start: int, stop: int, runs: list[tuple[int, int]], min_len: int, max_len: int
) -> list[tuple[int, int]]:
    """Cut frames [start, stop) into clips of `min_len`..`max_len` frames at pauses.

    Args:
        start: first frame of the range.
        stop: its end (exclusive).
        runs: the pauses of the whole track (`pause_runs`).
        min_len: shortest clip, frames.
        max_len: longest clip, frames (≥ 2 `min_len`).

    Returns:
        [start, stop) of each clip in order; empty when the range is shorter than `min_len`.
    """
    if max_len < 2 * min_len or min_len < 1:
        raise ValueError(f"need 1 <= min_len and 2 min_len <= max_len, got {min_len}, {max_len}")
    if stop - start < min_len:
        return []
    cuts, position = [], start
    while stop - position > max_len:
        cut = _next_cut(position, stop, runs, min_len, max_len)
        cuts.append((position, cut))
        position = cut
    return [*cuts, (position, stop)]


def plan_pieces(
    audio: np.ndarray,
    num_frames: int,
    min_len: int,
    max_len: int,
    min_pause: int,
    test_fraction: float | None = None,
) -> list[Piece]:
    """The clips of a video of `num_frames` frames with this audio.

    Args:
        audio: (A,) float32 mono 16 kHz, sample 0 at frame 0.
        num_frames: the video's frames at 25 fps.
        min_len: shortest clip, frames.
        max_len: longest clip, frames.
        min_pause: shortest pause cut at, frames.
        test_fraction: split by time: the last round(fraction · N) frames are cut off as test
            (None: no split by time, one range).

    Returns:
        The pieces in order; a range shorter than `min_len` is one `too_short` piece.
    """
    runs = pause_runs(frame_levels(audio, num_frames), min_pause)
    if test_fraction is None:
        ranges: list[tuple[int, int, str | None]] = [(0, num_frames, None)]
    else:
        boundary = num_frames - round(test_fraction * num_frames)
        ranges = [(0, boundary, "train"), (boundary, num_frames, "test")]
    pieces = []
    for start, stop, split in ranges:
        if stop <= start:
            continue
        clips = cut_range(start, stop, runs, min_len, max_len)
        if not clips:
            pieces.append(Piece(start, stop, split, too_short=True))
        pieces += [Piece(a, b, split) for a, b in clips]
    return pieces
