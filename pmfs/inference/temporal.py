"""Temporal post-processing of the predicted landmarks: smoothing, then a voice-activity gate.

`refine_landmarks` takes `PMFS.predict_clip_landmarks`'s (N, 68, 2) landmarks (normalized,
`pmfs.landmarks`) before the renderer draws them; `generated_landmarks` predicts and refines,
the one code path of `pmfs infer` (`pmfs.inference.run.iter_generated`) and `pmfs evaluate`
(`pmfs.evaluation.scores`). Settings: `pmfs.inference.options.TemporalOptions`.

1. *Smoothing* (`smooth_content`): the 31 audio-driven content points (lips 48–67, lower jaw
   3–13) are smoothed over time in each frame's canonical frame, so head motion passes untouched
   and only articulation is filtered: Savitzky–Golay or a One-Euro filter run forward then
   backward (`pmfs.inference.smoothing`). Both are zero-phase offline: a step keeps its onset
   frame.
2. *The gate* (`gate_mouth`): silero-vad finds the speech in the 16 kHz audio
   (`speech_activity`: one flag per 25 fps frame); away from speech the content points move to
   the speaker's closed mouth (`closed_mouth`), placed by each frame's head similarity, so in
   silence the mouth is closed and moves only with the head. The gate's weight (`gate_weights`)
   ramps over `vad_ramp` frames on both sides of speech: it starts opening before an onset
   (offline look-ahead) and is fully open on the first speech frame, so no onset is delayed.

Order: smooth, then gate. The gate has the last word on silence (closed and still whatever the
smoother does); smoothing after it would spread the speaking mouth half a window into the
silence. Its ramp is a smoothstep, so it adds no jerk of its own.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, num_video_frames
from pmfs.inference.smoothing import one_euro_smooth, savgol_smooth
from pmfs.landmarks import (
    CONTENT_INDICES,
    INNER_LIP_PAIRS,
    NUM_LANDMARKS,
    from_canonical,
    mouth_opening,
    to_canonical,
)

if TYPE_CHECKING:
    from pmfs.clip import ClipInputs
    from pmfs.inference.options import TemporalOptions
    from pmfs.stages.system import PMFS

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS
"""640: frame t is centred on sample 640·t (`pmfs.audio`), and spans ±320 samples."""
MIN_SPEECH_MS = 100
"""Shortest speech kept (silero's default, 250 ms, drops a short word such as "oh")."""
MIN_SILENCE_MS = 100
"""Shortest pause that ends a speech segment (silero's default)."""
SPEECH_PAD_MS = 30
"""Padding of each speech segment (silero's default; under one 40 ms frame)."""

_UPPER_INNER = np.array([upper for upper, _ in INNER_LIP_PAIRS])
_LOWER_INNER = np.array([lower for _, lower in INNER_LIP_PAIRS])
_LOWER_LIP = np.array([55, 56, 57, 58, 59, 65, 66, 67])
"""The lower lip, outer 55–59 and inner 65–67: what closing the mouth lifts."""
_VAD_LOCK = threading.Lock()  # silero's model holds a recurrent state between windows


# ----------------------------------------------------------------------------------------------
# Voice activity
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def vad_model() -> torch.nn.Module:
    """silero-vad's model (shipped inside the package: offline), loaded once per process."""
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad

        return load_silero_vad()
    finally:  # importing silero_vad.model sets torch to one thread, for the whole process
        torch.set_num_threads(threads)


def speech_segments(
    audio: np.ndarray, sample_rate: int, threshold: float = 0.5
) -> list[tuple[int, int]]:
    """Speech found by silero-vad, as sample ranges.

    Args:
        audio: (A,) float mono waveform, full scale 1.0.
        sample_rate: its rate; must be `pmfs.audio.SAMPLE_RATE` (16 kHz).
        threshold: speech probability threshold of silero-vad, in (0, 1).

    Returns:
        [(start, end)] sample indices of each speech segment, in time order.

    Raises:
        ValueError: another sample rate, a waveform that is not 1-D, a threshold outside (0, 1).
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"speech detection needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; resample it "
            "first (pmfs.audio.to_mono_16k)"
        )
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"speech detection needs a mono (A,) waveform, got {wave.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"the VAD threshold must be in (0, 1), got {threshold}")
    model = vad_model()
    from silero_vad import get_speech_timestamps

    with _VAD_LOCK:
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(wave)),
            model,
            threshold=threshold,
            sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=MIN_SPEECH_MS,
            min_silence_duration_ms=MIN_SILENCE_MS,
            speech_pad_ms=SPEECH_PAD_MS,
        )
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def frame_activity(segments: list[tuple[int, int]], num_frames: int) -> np.ndarray:
    """(N,) bool: frame t is speech when a segment overlaps its samples [640t − 320, 640t + 320)."""
    centres = np.arange(num_frames, dtype=np.int64) * SAMPLES_PER_FRAME
    half = SAMPLES_PER_FRAME // 2
    active = np.zeros(num_frames, dtype=bool)
    for start, end in segments:
        active |= (centres + half > start) & (centres - half < end)
    return active


def speech_activity(
    audio: np.ndarray, sample_rate: int, num_frames: int | None = None, threshold: float = 0.5
) -> np.ndarray:
    """Per video frame (25 fps), whether silero-vad hears speech there.

    Args:
        audio: (A,) float mono waveform at 16 kHz.
        sample_rate: its rate (anything but 16 kHz is refused, see `speech_segments`).
        num_frames: N (default: the frames covering the audio, `pmfs.audio.num_video_frames`).
        threshold: silero-vad's speech probability threshold.

    Returns:
        (N,) bool.
    """
    segments = speech_segments(audio, sample_rate, threshold)
    n = num_video_frames(len(audio)) if num_frames is None else num_frames
    return frame_activity(segments, n)


def gate_weights(active: np.ndarray, ramp: int) -> np.ndarray:
    """How free the predicted mouth is in each frame: 1 in speech, 0 in silence, a ramp between.

    A frame at distance d (frames) from the nearest speech frame gets `smoothstep(1 − d / (ramp
    + 1))`: the ramp is symmetric, so it starts *before* an onset and ends at it.

    Args:
        active: (N,) bool speech flags (`speech_activity`).
        ramp: frames of the ramp on each side (0: a hard switch).

    Returns:
        (N,) float32 in [0, 1]; all 0 when there is no speech at all.
    """
    active = np.asarray(active, dtype=bool)
    speech = np.flatnonzero(active)
    if speech.size == 0:
        return np.zeros(active.shape, dtype=np.float32)
    frames = np.arange(active.size)
    after = np.searchsorted(speech, frames).clip(max=speech.size - 1)  # next speech frame (or last)
    before = (after - 1).clip(min=0)
    distance = np.minimum(np.abs(speech[after] - frames), np.abs(frames - speech[before]))
    x = np.clip(1.0 - distance / (ramp + 1.0), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# The closed mouth and the gate
# ----------------------------------------------------------------------------------------------


def closed_mouth(ref_landmarks: Tensor) -> Tensor:
    """The speaker's closed mouth, in the canonical frame.

    The reference with the smallest inner-lip opening (`pmfs.landmarks.mouth_opening`, measured
    in the canonical frame so that head size does not count), with its lips closed if it is
    open: the lower lip (55–59, 65–67) lifted by the mean inner-lip gap, then each inner pair
    (61, 67), (62, 66), (63, 65) set to its midpoint (opening 0).

    Args:
        ref_landmarks: (K, 68, 2) normalized landmarks of the reference frames.

    Returns:
        (68, 2) canonical landmarks of that reference, lips closed.
    """
    if ref_landmarks.ndim != 3 or tuple(ref_landmarks.shape[1:]) != (NUM_LANDMARKS, 2):
        raise ValueError(f"ref_landmarks must be (K, 68, 2), got {tuple(ref_landmarks.shape)}")
    canonical, _ = to_canonical(ref_landmarks.float())  # (K, 68, 2)
    closed = canonical[int(mouth_opening(canonical).argmin())].clone()  # (68, 2)
    gap = (closed[_LOWER_INNER] - closed[_UPPER_INNER]).mean(dim=0)  # (2,) lower − upper
    closed[_LOWER_LIP] -= gap
    middle = (closed[_UPPER_INNER] + closed[_LOWER_INNER]) / 2  # (3, 2)
    closed[_UPPER_INNER], closed[_LOWER_INNER] = middle, middle
    return closed


def gate_mouth(landmarks: Tensor, closed: Tensor, weights: Tensor) -> Tensor:
    """Blend each frame's content points toward the closed mouth placed on that frame's head.

    The closed mouth goes through the inverse of the frame's canonical similarity (fitted on its
    stable points: eye corners, nose), so it follows the head's position, size and roll.

    Args:
        landmarks: (N, 68, 2) normalized landmarks.
        closed: (68, 2) canonical closed mouth (`closed_mouth`).
        weights: (N,) in [0, 1]: 1 keeps the frame's mouth, 0 is the closed one.

    Returns:
        (N, 68, 2); the 37 pose points are unchanged.
    """
    _, sim = to_canonical(landmarks)
    content = torch.as_tensor(CONTENT_INDICES, device=landmarks.device)
    shut = closed.to(landmarks)[content].expand(len(landmarks), -1, -1)  # (N, 31, 2)
    placed = from_canonical(shut, sim)  # (N, 31, 2)
    w = weights.to(landmarks)[:, None, None]  # (N, 1, 1)
    out = landmarks.clone()
    out[:, content] = w * landmarks[:, content] + (1 - w) * placed
    return out


# ----------------------------------------------------------------------------------------------
# Smoothing of the articulation
# ----------------------------------------------------------------------------------------------


def smooth_content(landmarks: Tensor, options: TemporalOptions) -> Tensor:
    """Smooth the content points over time in the canonical frame (`options.smoothing`).

    Args:
        landmarks: (N, 68, 2) normalized landmarks of consecutive frames.
        options: the smoother and its parameters.

    Returns:
        (N, 68, 2); the pose points are unchanged, and so is everything for "none".
    """
    if options.smoothing == "none":
        return landmarks
    canonical, sim = to_canonical(landmarks)
    content = torch.as_tensor(CONTENT_INDICES, device=landmarks.device)
    points = canonical[:, content]  # (N, 31, 2)
    if options.smoothing == "savgol":
        points = savgol_smooth(points, options.savgol_window, options.savgol_order)
    else:  # in pixels of the 256 crop, the unit of `euro_beta`
        pixels = one_euro_smooth(
            points * 128, VIDEO_FPS, options.euro_min_cutoff, options.euro_beta
        )
        points = pixels / 128
    out = landmarks.clone()
    out[:, content] = from_canonical(points, sim)
    return out


# ----------------------------------------------------------------------------------------------
# The whole step: smoothing, then the gate
# ----------------------------------------------------------------------------------------------


def refine_landmarks(landmarks: Tensor, clip: ClipInputs, options: TemporalOptions) -> Tensor:
    """Smoothing, then the voice-activity gate, of a clip's predicted landmarks.

    Args:
        landmarks: (N, 68, 2) normalized landmarks predicted for every frame of `clip`.
        clip: the clip: its `audio` (16 kHz) drives the gate, its `ref_landmarks` (K, 68, 2)
            give the closed mouth. A clip without audio is not gated (with a warning).
        options: the settings.

    Returns:
        (N, 68, 2) on the device of `landmarks`.
    """
    out = smooth_content(landmarks, options)
    if not options.vad:
        return out
    if clip.audio is None:
        log.warning("the clip has no audio: the mouth is not closed in silence (no VAD gate)")
        return out
    active = speech_activity(clip.audio, SAMPLE_RATE, len(landmarks), options.vad_threshold)
    weights = torch.from_numpy(gate_weights(active, options.vad_ramp))
    return gate_mouth(out, closed_mouth(clip.ref_landmarks), weights)


def generated_landmarks(
    model: PMFS, clip: ClipInputs, options: TemporalOptions, chunk: int = 64
) -> Tensor:
    """(N, 68, 2) landmarks the renderer draws: `PMFS.predict_clip_landmarks`, refined.

    Args:
        model: the system, in eval mode on the clip's device.
        clip: the clip.
        options: the temporal settings (`pmfs infer`'s, which `pmfs evaluate` shares).
        chunk: frames per landmark pass.
    """
    return refine_landmarks(model.predict_clip_landmarks(clip, chunk=chunk), clip, options)
