"""One clip of preprocessing: build it from its raw video and write it (DESIGN §3).

Audio at 16 kHz mono (present, not silent) → landmarks of the video's frames at 25 fps (detector,
streamed) → fill short gaps → smooth → one stable square crop → second pass over the video
cropping each frame → audio as long as the video → landmarks into the crop → foreground mask →
mel → the clip written atomically (`pmfs.data.cache_writer.write_clip_dir`). The frames and
audio are read by `pmfs.data.preprocess.reading`. Any problem becomes the clip's "skipped"
record whose reason starts with a short code (`no_face: …`); `process_clip` never raises for bad
input.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, mel
from pmfs.data.cache import ClipRecord
from pmfs.data.cache_writer import ClipData, write_clip_dir
from pmfs.data.preprocess.layouts import ClipJob
from pmfs.data.preprocess.mask import foreground_masks
from pmfs.data.preprocess.reading import ClipSkipError, clip_audio, clip_frames, probe
from pmfs.data.preprocess.settings import PreprocessSettings
from pmfs.faces import crop as crop_mod
from pmfs.faces.detect import LandmarkDetector, LandmarkFileError

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640


@dataclass
class ClipResult:
    """What a worker reports for one clip."""

    record: ClipRecord
    seconds: float
    source_frames: int = 0


def _fit_audio(audio: np.ndarray, num_frames: int, tolerance: float) -> np.ndarray:
    """Cut or zero-pad the audio to exactly the video's duration (N × 640 samples)."""
    video_s, audio_s = num_frames / VIDEO_FPS, len(audio) / SAMPLE_RATE
    if abs(video_s - audio_s) > tolerance:
        raise ClipSkipError(
            f"av_mismatch: video {video_s:.2f} s ({num_frames} frames) but audio {audio_s:.2f} s "
            f"(tolerance {tolerance} s)"
        )
    target = num_frames * SAMPLES_PER_FRAME
    if len(audio) >= target:
        return audio[:target].astype(np.float32)
    return np.concatenate([audio, np.zeros(target - len(audio), np.float32)]).astype(np.float32)


def _track(
    job: ClipJob, fps: float, detector: LandmarkDetector, s: PreprocessSettings
) -> tuple[np.ndarray, int]:
    """Raw-frame landmarks (N, 68, 2) float32: detected, gaps filled, smoothed."""
    try:
        raw = detector(clip_frames(job), job, fps)
        filled, n_filled = crop_mod.fill_gaps(raw, s.max_gap)
    except (LandmarkFileError, crop_mod.LandmarkGapError) as exc:
        raise ClipSkipError(str(exc)) from exc
    return crop_mod.smooth(filled, s.smooth_window), n_filled


def _crops(job: ClipJob, box: crop_mod.CropBox, size: int) -> tuple[np.ndarray, list[int]]:
    """Second pass over the video: (N, S, S, 3) uint8 crops and the raw [width, height]."""
    crops, raw_size = [], [0, 0]
    for frame in clip_frames(job):
        crops.append(crop_mod.crop_frame(frame, box, size))
        raw_size = [int(frame.shape[1]), int(frame.shape[0])]
    if not crops:
        raise ClipSkipError(f"unreadable_video: {job.video} has no decodable frame")
    return np.stack(crops), raw_size


def _match_length(landmarks: np.ndarray, num_frames: int, job: ClipJob) -> np.ndarray:
    """Landmarks of exactly `num_frames` frames (one frame more or less is edge-held)."""
    if abs(len(landmarks) - num_frames) > 1:
        raise ClipSkipError(
            f"landmarks_mismatch: {len(landmarks)} frames of landmarks at 25 fps for "
            f"{num_frames} video frames of {job.video}"
        )
    if len(landmarks) >= num_frames:
        return landmarks[:num_frames]
    return np.concatenate([landmarks, landmarks[-1:]])


def build_clip(job: ClipJob, detector: LandmarkDetector, s: PreprocessSettings) -> ClipData:
    """Everything of one clip, ready for `write_clip_dir`.

    The video is decoded twice (landmarks, then crops) rather than held in memory: a 1080p MEAD
    clip of 10 s would take 1.5 GB per worker.

    Raises:
        ClipSkipError: the clip cannot be used; the message is the reason for the manifest.
    """
    info = probe(job.video)
    audio = clip_audio(job, info)
    tracked, n_filled = _track(job, info.fps, detector, s)
    box = crop_mod.stable_box(tracked, s.crop_scale, s.crop_shift)
    crops, raw_size = _crops(job, box, s.size)
    audio = _fit_audio(audio, len(crops), s.max_av_mismatch)
    in_crop = crop_mod.points_to_crop(_match_length(tracked, len(crops), job), box, s.size)
    meta = {
        "fps": VIDEO_FPS,
        "size": s.size,
        "crop_box": [box.x0, box.y0, box.side],
        "raw_size": raw_size,
        "source_fps": info.fps,
        "source_video": str(job.video),
        "source_audio": str(job.audio or job.video),
        "interpolated_frames": n_filled,
        "detector": s.detector,
    }
    if job.is_segment:  # where the clip was cut from (25 fps frames of the source video)
        stop = job.start + len(crops)
        meta["segment"] = {"video_id": job.video_id, "start": job.start, "stop": stop}
        meta["split"] = job.split
    return ClipData(crops, in_crop, foreground_masks(in_crop, s.size), audio, mel(audio), meta)


def process_clip(
    job: ClipJob, detector: LandmarkDetector, s: PreprocessSettings, out: Path, record: ClipRecord
) -> ClipResult:
    """Build and write one clip, or return its "skipped" record; never raises for bad input."""
    start = time.perf_counter()
    try:
        data = build_clip(job, detector, s)
        written = write_clip_dir(out, record, data, s.jpeg_quality)
        return ClipResult(written, time.perf_counter() - start, len(data.frames))
    except ClipSkipError as exc:
        reason = str(exc)
    except Exception as exc:  # one odd clip must not stop a dataset run
        log.exception("%s: unexpected error", job.video)
        reason = f"error: {type(exc).__name__}: {exc}"
    log.info("%s skipped: %s", job.clip, reason)
    skipped = dataclasses.replace(record, frames=0, status="skipped", reason=reason)
    return ClipResult(skipped, time.perf_counter() - start)
