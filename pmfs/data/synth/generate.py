"""The synthetic dataset driver (`pmfs data synth`): plan clips, make them in parallel, write them.

Each clip is a pure function of (master seed, speaker index, clip id): its random stream is
`derive_rng(seed, "clip", clip_id)`, its speaker comes from `derive_rng(seed, "speaker", id)`.
Workers (processes) make and write clips (`pmfs.data.cache.write_clip_dir`, atomic); the parent
keeps the manifest (`CacheWriter`) in plan order, so the cache is byte-identical whatever the
number of workers. A rerun with the same settings skips finished clips.

A clip: an utterance of 2–4 s (articulatory track → formant speech at 16 kHz), head motion,
blinks and gaze, the speaker's animated face rendered on a per-clip background into a raw frame
wider than the crop; the crop (S×S, 1:1 scale) and its exact landmarks, foreground masks, audio
and mel go to the cache; with `raw=True` the raw frames, audio and landmarks also go to the MEAD
layout (`raw.py`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, mel
from pmfs.batch import EMOTIONS
from pmfs.data.cache import CacheWriter, ClipData, ClipRecord, write_clip_dir
from pmfs.data.synth.articulation import ArticulatoryTrack, Prosody, sample_articulation
from pmfs.data.synth.background import make_background
from pmfs.data.synth.emotion import EmotionStyle, emotion_levels, emotion_style
from pmfs.data.synth.motion import Placement, sample_motion
from pmfs.data.synth.raster import Canvas
from pmfs.data.synth.raw import raw_paths, write_raw_clip
from pmfs.data.synth.render import draw_person
from pmfs.data.synth.scene import ClipShapes, animate_clip
from pmfs.data.synth.seeds import derive_rng
from pmfs.data.synth.speaker import Speaker, sample_speaker, speaker_id
from pmfs.data.synth.speech import synthesize

log = logging.getLogger(__name__)

DATASET = "synthetic"
GENERATOR_VERSION = 1
"""Bumped whenever the content of a clip changes for the same settings."""
EYE_LINE = 0.40
"""Height of the eye line in the crop at rest, as a fraction of the crop side."""


@dataclass(frozen=True)
class SynthConfig:
    """Options of `pmfs data synth`.

    Attributes:
        out: the cache folder.
        speakers: number of speakers (S01, S02, ...).
        clips: clips per speaker.
        size: crop side S in pixels.
        seed: master seed.
        raw: also write the raw MEAD layout.
        raw_dir: where the raw layout goes (default `<out>/raw`).
        workers: worker processes (0: one per available CPU).
        min_seconds: shortest clip.
        max_seconds: longest clip.
        test_speakers: speakers held out at the end of the list (default: a quarter, at least
            one when there are two or more speakers).
        overwrite: delete an existing cache (and raw folder) built with other settings.
        progress: show a progress bar.
    """

    out: Path
    speakers: int = 8
    clips: int = 12
    size: int = 256
    seed: int = 0
    raw: bool = False
    raw_dir: Path | None = None
    workers: int = 0
    min_seconds: float = 2.0
    max_seconds: float = 4.0
    test_speakers: int | None = None
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.clips < 1:
            raise ValueError(
                f"need at least one speaker and one clip, got {self.speakers} × {self.clips}"
            )
        if self.size < 32 or self.size % 2:
            raise ValueError(
                f"size must be an even number ≥ 32 (H.264 needs even sizes), got {self.size}"
            )
        if not 0.5 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"clip length range [{self.min_seconds}, {self.max_seconds}] s is invalid; "
                "use 0.5 ≤ min_seconds ≤ max_seconds"
            )
        if not 0 <= self.num_test_speakers < self.speakers:
            raise ValueError(
                f"test_speakers={self.test_speakers} must be ≥ 0 and leave at least one "
                f"training speaker out of {self.speakers}"
            )

    @property
    def num_test_speakers(self) -> int:
        """Speakers held out for testing (the last ones)."""
        if self.test_speakers is not None:
            return self.test_speakers
        return max(1, self.speakers // 4) if self.speakers >= 2 else 0

    @property
    def raw_root(self) -> Path:
        """The raw layout's root."""
        return self.raw_dir if self.raw_dir is not None else self.out / "raw"

    def settings(self) -> dict[str, Any]:
        """Everything that changes the content of the cache (its settings hash)."""
        return {
            "generator": "pmfs-synth",
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "size": self.size,
            "speakers": self.speakers,
            "clips": self.clips,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "fps": VIDEO_FPS,
            "sample_rate": SAMPLE_RATE,
        }


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make.

    Attributes:
        speaker_index: 0-based speaker index.
        speaker: speaker id.
        emotion: one of `EMOTIONS`.
        level: MEAD level 1–3.
        index: 1-based index among the speaker's clips of this emotion and level.
    """

    speaker_index: int
    speaker: str
    emotion: str
    level: int
    index: int

    @property
    def clip(self) -> str:
        """The clip id, "{speaker}_{emotion}_{level}_{index:03d}"."""
        return f"{self.speaker}_{self.emotion}_{self.level}_{self.index:03d}"


def plan_clips(speakers: int, clips: int) -> list[ClipPlan]:
    """The clips of a dataset, spread over emotions and levels.

    Clip j of speaker k has emotion `EMOTIONS[j % 8]` (so 8 clips cover every emotion) and level
    `1 + (j // 8 + k) % 3` (neutral: 1), so levels rotate across clips and speakers.
    """
    plans = []
    for k in range(speakers):
        counts: dict[tuple[str, int], int] = {}
        for j in range(clips):
            emotion = EMOTIONS[j % len(EMOTIONS)]
            levels = emotion_levels(emotion)
            level = levels[(j // len(EMOTIONS) + k) % len(levels)]
            counts[emotion, level] = counts.get((emotion, level), 0) + 1
            plans.append(ClipPlan(k, speaker_id(k), emotion, level, counts[emotion, level]))
    return plans


def raw_frame_size(size: int) -> tuple[int, int]:
    """(height, width) of the raw frames for crops of `size`: about 1.25 S × 1.75 S, even."""
    return 16 * -(-5 * size // 64), 16 * -(-7 * size // 64)


@dataclass
class SynthClip:
    """One generated clip.

    Attributes:
        data: what goes to the cache (crop frames, crop landmarks, masks, audio, mel, meta).
        raw_frames: (N, H, W, 3) uint8 raw frames, or None when not asked for.
        raw_landmarks: (N, 68, 2) float32 landmarks of the raw frames.
        speaker: the speaker as lit in this clip (its palette holds the rendered colours).
    """

    data: ClipData
    raw_frames: np.ndarray | None
    raw_landmarks: np.ndarray
    speaker: Speaker


def _render(
    shapes: ClipShapes,
    speaker: Speaker,
    style: EmotionStyle,
    background: np.ndarray,
    offset: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Render every frame over `background`, a viewport of the raw frame.

    Args:
        shapes: the clip's shapes in raw-frame pixels.
        speaker: the speaker (as lit in this clip).
        style: the clip's emotion style.
        background: (H, W, 3) float32 background of the viewport.
        offset: (x0, y0) of the viewport in the raw frame.

    Returns:
        (N, H, W, 3) uint8 frames and (N, H, W) uint8 person masks.
    """
    n = shapes.num_frames
    frames = np.empty((n, *background.shape), dtype=np.uint8)
    masks = np.empty((n, *background.shape[:2]), dtype=np.uint8)
    for i in range(n):
        canvas = Canvas(background)
        draw_person(canvas, shapes.frame(i, offset), speaker, style)
        frames[i], masks[i] = canvas.to_uint8()
    return frames, masks


def _place(
    rng: np.random.Generator, speaker: Speaker, size: int
) -> tuple[tuple[int, int], Placement]:
    """A random crop box corner (x0, y0) in the raw frame and the head's placement in it.

    The head sits centred in the crop with its eye line at `EYE_LINE`, ± a small jitter.
    """
    height, width = raw_frame_size(size)
    crop = (int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1)))
    jitter = rng.uniform(-1.0, 1.0, 2) * np.array([0.02, 0.015]) * size
    origin = (crop[0] + 0.5 * size + jitter[0], crop[1] + EYE_LINE * size + jitter[1])
    return crop, Placement(origin, speaker.face_scale * size)


def _pictures(
    shapes: ClipShapes,
    speaker: Speaker,
    style: EmotionStyle,
    background: np.ndarray,
    crop: tuple[int, int],
    size: int,
    raw: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Crop frames (N, S, S, 3), crop masks (N, S, S) and, when `raw`, the raw frames.

    Without `raw` only the crop is rendered (the raw frame's pixels outside it are not needed).
    """
    x0, y0 = crop
    if not raw:
        viewport = background[y0 : y0 + size, x0 : x0 + size]
        frames, masks = _render(shapes, speaker, style, viewport, crop)
        return frames, masks, None
    raw_frames, raw_masks = _render(shapes, speaker, style, background, (0, 0))
    frames = np.ascontiguousarray(raw_frames[:, y0 : y0 + size, x0 : x0 + size])
    masks = np.ascontiguousarray(raw_masks[:, y0 : y0 + size, x0 : x0 + size])
    return frames, masks, raw_frames


def _meta(
    speaker: Speaker,
    track: ArticulatoryTrack,
    num_frames: int,
    crop: tuple[int, int],
    size: int,
    raw_hw: tuple[int, int],
    seed: int,
) -> dict[str, Any]:
    """JSON-able metadata of a clip: crop box, raw size, speaker, phones and articulators."""
    times = np.arange(num_frames) / VIDEO_FPS
    articulators = {
        name: [round(float(v), 4) for v in track.sample(times, name)]
        for name in ("jaw", "rounding", "closure")
    }
    return {
        "fps": VIDEO_FPS,
        "size": size,
        "source": "pmfs-synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "crop_box": [crop[0], crop[1], size, size],
        "raw_size": [raw_hw[1], raw_hw[0]],
        "speaker": {
            "sex": speaker.sex,
            "hair_style": speaker.hair_style,
            "f0": round(speaker.voice.f0, 2),
            "formant_scale": round(speaker.voice.formant_scale, 4),
        },
        "phones": [[s.phone, round(s.start, 4), round(s.end, 4)] for s in track.segments],
        "articulators": articulators,
    }


def make_clip(
    plan: ClipPlan, seed: int, size: int, seconds: tuple[float, float], raw: bool = False
) -> SynthClip:
    """Generate one clip (a pure function of its arguments).

    Args:
        plan: which clip.
        seed: master seed.
        size: crop side S.
        seconds: (min, max) clip length in seconds.
        raw: also return the full raw frames.

    Returns:
        The clip's cache data and raw landmarks (and raw frames when `raw`).
    """
    rng = derive_rng(seed, "clip", plan.clip)
    speaker = sample_speaker(seed, plan.speaker_index)
    style = emotion_style(plan.emotion, plan.level)
    num_frames = max(1, round(float(rng.uniform(*seconds)) * VIDEO_FPS))
    # Lighting differs a little between recordings: exposure ±7 %, white balance ±3 %.
    gain = rng.uniform(0.93, 1.07) * rng.uniform(0.97, 1.03, 3)
    speaker = dataclasses.replace(speaker, palette=speaker.palette.lit(gain))
    prosody = Prosody.from_style(speaker.voice.f0, speaker.voice.rate, style)
    track = sample_articulation(rng, num_frames / VIDEO_FPS, prosody)
    num_samples = num_frames * SAMPLE_RATE // VIDEO_FPS
    audio = synthesize(track, speaker.voice.with_emotion(style), rng, num_samples)
    motion = sample_motion(rng, track, num_frames, style, size)
    crop, placement = _place(rng, speaker, size)
    shapes = animate_clip(speaker, style, track, motion, placement)
    background = make_background(rng, *raw_frame_size(size))
    frames, masks, raw_frames = _pictures(shapes, speaker, style, background, crop, size, raw)
    data = ClipData(
        frames=frames,
        landmarks=(shapes.landmarks - np.array(crop)).astype(np.float32),
        fg_mask=masks,
        audio=audio,
        mel=mel(audio),
        meta=_meta(speaker, track, num_frames, crop, size, raw_frame_size(size), seed),
    )
    return SynthClip(data, raw_frames, shapes.landmarks.astype(np.float32), speaker)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    plan: ClipPlan
    record: ClipRecord
    config: SynthConfig


def _run_job(job: _Job) -> tuple[ClipRecord, int]:
    """Make and write one clip (in a worker); returns its manifest record and frame count."""
    cfg = job.config
    clip = make_clip(job.plan, cfg.seed, cfg.size, (cfg.min_seconds, cfg.max_seconds), cfg.raw)
    if cfg.raw and clip.raw_frames is not None:
        paths = raw_paths(
            cfg.raw_root, job.plan.speaker, job.plan.emotion, job.plan.level, job.plan.index
        )
        write_raw_clip(paths, clip.raw_frames, clip.data.audio, clip.raw_landmarks)
        clip.data.meta["raw_video"] = str(paths.video.relative_to(cfg.raw_root))
    record = write_clip_dir(cfg.out, job.record, clip.data)
    return record, int(clip.data.frames.shape[0])


def _workers(requested: int, jobs: int) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = requested if requested > 0 else (available or 1)
    return max(1, min(count, jobs))


def _results(jobs: list[_Job], workers: int) -> Iterator[tuple[ClipRecord, int]]:
    """Run the jobs, yielding results in job order (workers may finish in any order)."""
    if workers == 1:
        yield from map(_run_job, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(_run_job, jobs, chunksize=1)


def _check_existing(config: SynthConfig) -> None:
    """Refuse (or with `overwrite`, delete) a cache at `out` built with other settings."""
    info_path = config.out / "cache.json"
    if not info_path.is_file():
        return
    info = json.loads(info_path.read_text())
    if info.get("dataset") == DATASET and info.get("settings") == config.settings():
        return
    if not config.overwrite:
        raise ValueError(
            f"{config.out} holds a {info.get('dataset')!r} cache built with settings "
            f"{info.get('settings')}; pass --overwrite to replace it, or choose another --out"
        )
    log.info("removing the old cache in %s (--overwrite)", config.out)
    for name in ("clips", "cache.json", "manifest.csv"):
        target = config.out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    if config.raw_root.is_dir():
        shutil.rmtree(config.raw_root)


@dataclass(frozen=True)
class SynthSummary:
    """What a run did.

    Attributes:
        cache: the cache folder.
        raw: the raw layout's folder, or None.
        clips: clips in the dataset.
        made: clips made by this run (the others were already done).
        frames: frames made by this run.
        seconds: wall-clock time of the run.
        cache_bytes: size of the cache on disk.
        raw_bytes: size of the raw layout on disk (0 without one).
    """

    cache: Path
    raw: Path | None
    clips: int
    made: int
    frames: int
    seconds: float
    cache_bytes: int
    raw_bytes: int


def _disk_usage(root: Path, exclude: Path | None = None) -> int:
    """Bytes of the files under `root`, not counting those under `exclude`."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and (exclude is None or not path.is_relative_to(exclude)):
            total += path.stat().st_size
    return total


def _is_done(writer: CacheWriter, plan: ClipPlan, config: SynthConfig) -> bool:
    """The clip is in the cache with the current settings (and in the raw layout if asked)."""
    if not writer.is_done(plan.clip):
        return False
    paths = raw_paths(config.raw_root, plan.speaker, plan.emotion, plan.level, plan.index)
    return not config.raw or paths.exist()


def build_synthetic_dataset(config: SynthConfig) -> SynthSummary:
    """Generate (or complete) the synthetic dataset described by `config`.

    Returns:
        A summary with the number of clips made, frames, time and size on disk.

    Raises:
        ValueError: `out` holds a cache with other settings and `overwrite` is False.
    """
    started = time.perf_counter()
    _check_existing(config)
    plans = plan_clips(config.speakers, config.clips)
    held_out = [
        speaker_id(k) for k in range(config.speakers - config.num_test_speakers, config.speakers)
    ]
    extra = {"test_speakers": held_out, "speakers": [speaker_id(k) for k in range(config.speakers)]}
    writer = CacheWriter(config.out, DATASET, config.settings(), extra=extra)
    jobs = [
        _Job(p, writer.record(p.speaker, p.emotion, p.level, p.clip), config)
        for p in plans
        if not _is_done(writer, p, config)
    ]
    workers = _workers(config.workers, len(jobs))
    log.info(
        "synthetic data: %d clips to make (%d done), %d workers",
        len(jobs),
        len(plans) - len(jobs),
        workers,
    )
    frames = 0
    with writer, tqdm(total=len(jobs), unit="clip", disable=not config.progress) as bar:
        for record, count in _results(jobs, workers):
            writer.add(record)
            frames += count
            bar.update(1)
            bar.set_postfix(fps=f"{frames / max(bar.format_dict['elapsed'], 1e-6):.0f}")
    raw_root = config.raw_root if config.raw else None
    return SynthSummary(
        cache=config.out,
        raw=raw_root,
        clips=len(plans),
        made=len(jobs),
        frames=frames,
        seconds=time.perf_counter() - started,
        cache_bytes=_disk_usage(config.out, exclude=config.raw_root),
        raw_bytes=_disk_usage(raw_root) if raw_root is not None else 0,
    )


def summary_dict(summary: SynthSummary) -> dict[str, Any]:
    """JSON-able form of a summary."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(summary).items()}
