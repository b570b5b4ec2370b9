"""The synthetic dataset driver (`pmfs data synth`): plan clips, make them in parallel, write them.

Each clip is a pure function of (master seed, speaker index, clip id): its random stream is
`derive_rng(seed, "clip", clip_id)`, its speaker comes from `derive_rng(seed, "speaker", id)`.
Workers (processes) make and write clips (`pmfs.data.cache_writer.write_clip_dir`, atomic); the
parent keeps the manifest (`CacheWriter`) in plan order, so the cache is byte-identical whatever the
number of workers. A rerun with the same settings skips finished clips.

One clip is made by `make.py`; its cache data go to the cache, and with `raw=True` its raw
frames, audio and landmarks also go to the MEAD layout (`raw.py`).
"""

from __future__ import annotations

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

from tqdm import tqdm

from pmfs.batch import EMOTIONS
from pmfs.data.cache import ClipRecord
from pmfs.data.cache_writer import CacheWriter, write_clip_dir
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.emotion import emotion_levels
from pmfs.data.synth.make import ClipPlan, make_clip
from pmfs.data.synth.raw import raw_paths, write_raw_clip
from pmfs.data.synth.speaker import speaker_id

log = logging.getLogger(__name__)

DATASET = "synthetic"


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
