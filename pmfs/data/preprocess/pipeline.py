"""Per-clip preprocessing, parallel workers, resume and the closing summary (DESIGN §3).

One clip: audio at 16 kHz mono (present, not silent) → landmarks of the video's frames at 25 fps
(detector, streamed) → fill short gaps → smooth → one stable square crop → second pass over the
video cropping each frame → audio as long as the video → landmarks into the crop → foreground
mask → mel → write the clip atomically (`pmfs.data.cache_writer.write_clip_dir`). Any problem
with one clip becomes a "skipped" manifest row whose reason starts with a short code
(`no_face: …`), and the run goes on.

Workers are processes (`spawn`); each builds its detector once and writes its clips itself; the
parent owns the manifest (`CacheWriter.add`). A clip already recorded with the same settings hash
is not redone, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmfs.audio import (
    SAMPLE_RATE,
    VIDEO_FPS,
    AudioError,
    SilentAudioError,
    check_not_silent,
    load_audio,
    mel,
)
from pmfs.batch import MEAD_TEST_SPEAKERS
from pmfs.data.cache import ClipRecord
from pmfs.data.cache_writer import CacheWriter, ClipData, write_clip_dir
from pmfs.data.preprocess.layouts import ClipJob, Dataset, discover
from pmfs.data.preprocess.mask import foreground_masks
from pmfs.data.preprocess.settings import PreprocessSettings
from pmfs.faces import crop as crop_mod
from pmfs.faces.detect import (
    LandmarkDetector,
    LandmarkFileError,
    make_detector,
    missing_weights,
)
from pmfs.video import VideoError, VideoInfo, align_audio, iter_frames, probe_video

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640


class ClipSkipError(ValueError):
    """A clip that cannot be used; the message is the manifest reason ("code: detail")."""


@dataclass
class ClipResult:
    """What a worker reports for one clip."""

    record: ClipRecord
    seconds: float
    source_frames: int = 0


@dataclass
class Summary:
    """Outcome of a run.

    Attributes:
        total: clips in the raw layout.
        already_done: clips a previous run finished with the same settings (ok or skipped).
        ok: clips written by this run.
        usable: clips of the layout that are in the cache (this run's and earlier ones).
        skipped: clips of the layout recorded as unusable (this run's and earlier ones), by
            reason code.
        frames: video frames written by this run.
        seconds: wall time of this run.
    """

    total: int = 0
    already_done: int = 0
    ok: int = 0
    usable: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every clip of the layout is usable, 3 when some are recorded as skipped."""
        return 3 if sum(self.skipped.values()) else 0

    def text(self) -> str:
        """The closing summary, one line per skip reason."""
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.total} clips: {self.usable} usable, {sum(self.skipped.values())} skipped "
            f"({self.total - self.already_done} processed by this run, {self.already_done} "
            "already done); "
            f"{self.frames} frames in {self.seconds:.1f} s ({fps:.1f} frames/s)"
        ]
        lines += [f"  skipped {n} × {code}" for code, n in sorted(self.skipped.items())]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------


def _frames(job: ClipJob) -> Iterator[np.ndarray]:
    """The clip's frames at 25 fps, (H, W, 3) uint8, streamed; a bad video skips the clip."""
    try:
        yield from iter_frames(job.video, VIDEO_FPS)
    except (VideoError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_video: {exc}") from exc


def _probe(job: ClipJob) -> VideoInfo:
    try:
        return probe_video(job.video)
    except (VideoError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_video: {exc}") from exc


def _read_audio(job: ClipJob, info: VideoInfo) -> np.ndarray:
    """(A,) float32 mono 16 kHz: the separate audio file, else the video's track aligned to
    its first frame; silence is checked here."""
    if job.audio is None and not info.has_audio:
        raise ClipSkipError(f"no_audio: {job.video} has no audio track and no separate audio file")
    source = job.audio or job.video
    try:
        audio = load_audio(source, SAMPLE_RATE, allow_silent=True)
        check_not_silent(audio, source)
    except SilentAudioError as exc:
        raise ClipSkipError(f"silent_audio: {exc}") from exc
    except (AudioError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_audio: {exc}") from exc
    return audio if job.audio is not None else align_audio(audio, info.audio_offset)


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
        raw = detector(_frames(job), job, fps)
        filled, n_filled = crop_mod.fill_gaps(raw, s.max_gap)
    except (LandmarkFileError, crop_mod.LandmarkGapError) as exc:
        raise ClipSkipError(str(exc)) from exc
    return crop_mod.smooth(filled, s.smooth_window), n_filled


def _crops(job: ClipJob, box: crop_mod.CropBox, size: int) -> tuple[np.ndarray, list[int]]:
    """Second pass over the video: (N, S, S, 3) uint8 crops and the raw [width, height]."""
    crops, raw_size = [], [0, 0]
    for frame in _frames(job):
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
    info = _probe(job)
    audio = _read_audio(job, info)
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


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(
    settings: PreprocessSettings, out: Path, device: str, batch_size: int, level: int, threads: int
) -> None:
    logging.basicConfig(level=level)
    if settings.detector == "face-alignment":  # N workers × all cores would oversubscribe
        import torch

        torch.set_num_threads(threads)
    _WORKER["detector"] = make_detector(settings.detector, device, batch_size)
    _WORKER["settings"], _WORKER["out"] = settings, out


def _work(item: tuple[ClipJob, ClipRecord]) -> ClipResult:
    job, record = item
    return process_clip(job, _WORKER["detector"], _WORKER["settings"], _WORKER["out"], record)


def _results(
    items: list[tuple[ClipJob, ClipRecord]],
    settings: PreprocessSettings,
    out: Path,
    workers: int,
    device: str,
    batch_size: int,
    detector: LandmarkDetector | None,
) -> Iterator[ClipResult]:
    """Process clips here with `detector` (when given) or in a pool; yield results as they end."""
    if detector is not None:
        for job, record in items:
            yield process_clip(job, detector, settings, out, record)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    init = (settings, out, device, batch_size, logging.getLogger().level, threads)
    with mp.get_context("spawn").Pool(workers, _init_worker, init) as pool:
        yield from pool.imap_unordered(_work, items)


# --------------------------------------------------------------------------------------------
# A run
# --------------------------------------------------------------------------------------------


def preprocess(
    dataset: Dataset,
    root: Path,
    out: Path,
    settings: PreprocessSettings,
    workers: int = 1,
    device: str = "cpu",
    batch_size: int = 16,
    progress: bool = True,
) -> Summary:
    """Preprocess a raw MEAD or CREMA-D download into a cache at `out` (resumes a killed run).

    Raises:
        FileNotFoundError: no clip under `root`; face-alignment weights missing
            (`DetectorWeightsError`).
    """
    started = time.perf_counter()
    jobs = discover(dataset, root)
    extra: dict[str, Any] = {"test_speakers": list(MEAD_TEST_SPEAKERS)} if dataset == "mead" else {}
    extra["source"] = "pmfs data preprocess"
    detector = _parent_detector(settings, workers, device, batch_size)
    summary = Summary(total=len(jobs))
    with CacheWriter(out, dataset, settings.as_dict(), extra) as writer:
        todo = [j for j in jobs if not writer.is_done(j.clip)]
        summary.already_done = len(jobs) - len(todo)
        items = [(j, writer.record(j.speaker, j.emotion, j.level, j.clip)) for j in todo]
        bar = _progress_bar(len(items), progress)
        for result in _results(items, settings, out, workers, device, batch_size, detector):
            writer.add(result.record)
            _count(summary, result, started)
            bar.update(1)
            bar.set_postfix_str(f"{summary.frames / max(summary.seconds, 1e-9):.1f} frames/s")
        bar.close()
        _tally(summary, [writer.records[j.clip] for j in jobs if j.clip in writer.records])
    summary.seconds = time.perf_counter() - started
    return summary


def _parent_detector(
    settings: PreprocessSettings, workers: int, device: str, batch_size: int
) -> LandmarkDetector | None:
    """The detector of an in-process run (workers ≤ 1), else None (each worker builds its own).

    Missing face-alignment weights are fetched (or reported) here, once, before any worker starts.
    """
    if workers <= 1:
        return make_detector(settings.detector, device, batch_size)
    if settings.detector == "face-alignment" and missing_weights():
        make_detector(settings.detector, "cpu", 1)
    return None


def _count(summary: Summary, result: ClipResult, started: float) -> None:
    if result.record.status == "ok":
        summary.ok += 1
        summary.frames += result.record.frames
    summary.seconds = time.perf_counter() - started


def _tally(summary: Summary, records: Sequence[ClipRecord]) -> None:
    """Usable and skipped counts over the layout's clips as the manifest now records them."""
    summary.usable = sum(r.status == "ok" for r in records)
    summary.skipped = Counter(r.reason.split(":", 1)[0] for r in records if r.status == "skipped")


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="preprocess", disable=not enabled, smoothing=0.1)


def skipped_reasons(records: Sequence[ClipRecord]) -> dict[str, str]:
    """clip id → reason of the skipped records (for reports and tests)."""
    return {r.clip: r.reason for r in records if r.status == "skipped"}
