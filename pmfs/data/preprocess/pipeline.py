"""A preprocessing run: jobs, parallel workers, resume, shards and the closing summary (DESIGN §3).

The jobs are the clips of a layout (`pmfs.data.preprocess.layouts`); the videos layout first cuts
every video into clips (`pmfs.data.preprocess.videos`: one plan per video, made in the workers
too). Each clip is built and written by `pmfs.data.preprocess.build.process_clip`; any problem
with one clip becomes a "skipped" manifest row whose reason starts with a short code
(`no_face: …`), and the run goes on.

Workers are processes (`spawn`); each builds its detector once and writes its clips itself; the
parent owns the manifest (`CacheWriter.add`). A clip already recorded with the same settings hash
is not redone, so a killed run resumes where it stopped. With `--shard I/N` the run takes its
share of the jobs and writes its own manifest part (`pmfs.data.preprocess.shards`); a run
without it first merges the parts of earlier sharded runs.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmfs.batch import MEAD_TEST_SPEAKERS
from pmfs.data.cache import ClipRecord
from pmfs.data.cache_writer import CacheWriter, settings_hash
from pmfs.data.preprocess import videos as videos_mod
from pmfs.data.preprocess.build import ClipResult, process_clip
from pmfs.data.preprocess.layouts import ClipJob, Layout, VideoSource, discover, discover_videos
from pmfs.data.preprocess.settings import PreprocessSettings, VideoSettings
from pmfs.data.preprocess.shards import Shard, ShardWriter, manifest_parts, merge
from pmfs.faces.detect import (
    LandmarkDetector,
    make_detector,
    missing_weights,
    resolve_detector,
)

log = logging.getLogger(__name__)


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
        videos: videos of the layout (videos layout only; this shard's when sharded).
        shard: the shard this run was, or None.
    """

    total: int = 0
    already_done: int = 0
    ok: int = 0
    usable: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    seconds: float = 0.0
    videos: int = 0
    shard: Shard | None = None

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
        if self.videos:
            lines.append(f"  the clips of {self.videos} videos")
        if self.shard is not None:
            lines.append(
                f"  shard {self.shard}: once all {self.shard.count} shards have finished, run "
                "`pmfs data merge --out CACHE` (or rerun without --shard)"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class _Context:
    """What every clip and plan of a run needs (sent once to each worker)."""

    settings: PreprocessSettings
    out: Path
    videos: VideoSettings | None = None
    settings_hash: str = ""


def _init_worker(context: _Context, device: str, batch_size: int, level: int, threads: int) -> None:
    logging.basicConfig(level=level)
    if context.settings.detector == "face-alignment":  # N workers × all cores would oversubscribe
        import torch

        torch.set_num_threads(threads)
    _WORKER["detector"] = make_detector(context.settings.detector, device, batch_size)
    _WORKER["context"] = context


def _work(item: tuple[ClipJob, ClipRecord]) -> ClipResult:
    job, record = item
    context: _Context = _WORKER["context"]
    return process_clip(job, _WORKER["detector"], context.settings, context.out, record)


def make_plan(source: VideoSource, context: _Context) -> videos_mod.VideoPlan:
    """Plan one video (`videos.plan_video`) and save the plan in the cache."""
    assert context.videos is not None
    plan = videos_mod.plan_video(source, context.settings, context.videos, context.settings_hash)
    videos_mod.save_plan(context.out, plan)
    return plan


def _plan_work(source: VideoSource) -> videos_mod.VideoPlan:
    return make_plan(source, _WORKER["context"])


class _Workers:
    """Where a run's plans and clips are made: here (one worker) or in a pool of spawned
    processes, started on first use, each with its own detector.

    Missing face-alignment weights are fetched (or reported) here, once, before any worker starts.
    """

    def __init__(self, context: _Context, workers: int, device: str, batch_size: int) -> None:
        self.context, self.workers = context, workers
        self.device, self.batch_size = device, batch_size
        self.detector: LandmarkDetector | None = None
        self.pool: Any = None
        name = context.settings.detector
        if workers <= 1:
            self.detector = make_detector(name, device, batch_size)
        elif name == "face-alignment" and missing_weights():
            make_detector(name, "cpu", 1)

    def _pool(self) -> Any:
        if self.pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            level = logging.getLogger().level
            init = (self.context, self.device, self.batch_size, level, threads)
            self.pool = mp.get_context("spawn").Pool(self.workers, _init_worker, init)
        return self.pool

    def plans(self, sources: Sequence[VideoSource]) -> Iterator[videos_mod.VideoPlan]:
        """The plans of `sources`, as they are made."""
        if self.detector is not None:
            yield from (make_plan(source, self.context) for source in sources)
        elif sources:
            yield from self._pool().imap_unordered(_plan_work, sources)

    def clips(self, items: Sequence[tuple[ClipJob, ClipRecord]]) -> Iterator[ClipResult]:
        """Process clips; yield their results as they end."""
        detector, s, out = self.detector, self.context.settings, self.context.out
        if detector is not None:
            yield from (process_clip(job, detector, s, out, record) for job, record in items)
        elif items:
            yield from self._pool().imap_unordered(_work, items)

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()


# --------------------------------------------------------------------------------------------
# A run
# --------------------------------------------------------------------------------------------


def preprocess(
    dataset: Layout,
    root: Path,
    out: Path,
    settings: PreprocessSettings,
    workers: int = 1,
    device: str = "cpu",
    batch_size: int = 16,
    progress: bool = True,
    videos: VideoSettings | None = None,
    shard: Shard | None = None,
) -> Summary:
    """Preprocess a raw layout into a cache at `out` (resumes a killed run).

    Args:
        dataset: "mead", "cremad" or "videos" (`pmfs.data.preprocess.layouts`).
        root: the raw download / folder of videos.
        out: the cache folder.
        settings: what changes a clip.
        workers: worker processes (1: in this process).
        device: "cpu" or "cuda" for face-alignment.
        batch_size: frames per detector batch.
        progress: show a progress bar.
        videos: how the videos layout is cut and split (None: the defaults); ignored otherwise.
        shard: process only this shard's jobs and write its manifest part (None: all jobs,
            after merging the parts of earlier sharded runs).

    Raises:
        FileNotFoundError: nothing to preprocess under `root`; face-alignment weights missing
            (`DetectorWeightsError`).
    """
    started = time.perf_counter()
    choice = resolve_detector(settings.detector)  # `auto` → the detector hashed and recorded
    log.info("%s", choice.line)
    settings = dataclasses.replace(settings, detector=choice.name)
    if shard is None and manifest_parts(out):
        log.info("%s", merge(out).text(out))
    cache_settings = settings.as_dict()
    if dataset == "videos":
        videos = videos or VideoSettings()
        cache_settings |= videos.as_dict()
    context = _Context(settings, Path(out), videos, settings_hash(cache_settings))
    with _Workers(context, workers, device, batch_size) as pool:
        if dataset == "videos":
            jobs, skips, extra, summary_videos = _video_jobs(root, context, pool, shard, progress)
        else:
            jobs = [j for j in discover(dataset, root) if shard is None or shard.owns(j.shard_key)]
            skips, extra, summary_videos = [], _labelled_extra(dataset), 0
        if shard is None:
            writer = CacheWriter(out, dataset, cache_settings, extra)
        else:
            writer = ShardWriter(out, dataset, cache_settings, extra, shard)
            writer.inherit([j.clip for j in jobs] + [s[1] for s in skips])
        with writer:
            summary = _run(writer, jobs, skips, pool, progress, started)
    summary.shard, summary.videos = shard, summary_videos
    summary.seconds = time.perf_counter() - started
    return summary


def _labelled_extra(dataset: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"test_speakers": list(MEAD_TEST_SPEAKERS)} if dataset == "mead" else {}
    return extra | {"source": "pmfs data preprocess"}


def _video_jobs(
    root: Path, context: _Context, pool: _Workers, shard: Shard | None, progress: bool
) -> tuple[list[ClipJob], list[tuple[str, str, str]], dict[str, Any], int]:
    """The clip jobs of a folder of videos (this shard's), its skipped rows (speaker, clip,
    reason), cache.json's extra (with the split unless sharded: `merge` writes it then) and the
    number of videos."""
    assert context.videos is not None
    sources = [s for s in discover_videos(root) if shard is None or shard.owns(s.video_id)]
    plans = {}
    for source in sources:
        plan = videos_mod.load_plan(context.out, source, context.settings_hash)
        if plan is not None:
            plans[source.video_id] = plan
    todo = [s for s in sources if s.video_id not in plans]
    bar = _progress_bar(len(todo), progress and bool(todo), "cut videos", "video")
    for plan in pool.plans(todo):
        plans[plan.video_id] = plan
        bar.update(1)
    bar.close()
    jobs, skips = [], []
    for source in sources:
        clip_jobs, skipped = videos_mod.plan_jobs(plans[source.video_id], source)
        jobs += clip_jobs
        skips += [(source.speaker, clip, reason) for clip, reason in skipped.items()]
    extra: dict[str, Any] = {"source": "pmfs data preprocess"}
    if shard is None:
        saved = videos_mod.saved_plans(context.out, context.settings_hash)
        extra |= videos_mod.split_extra(saved, context.videos)
    return jobs, skips, extra, len(sources)


def _run(
    writer: CacheWriter,
    jobs: list[ClipJob],
    skips: list[tuple[str, str, str]],
    pool: _Workers,
    progress: bool,
    started: float,
) -> Summary:
    """Record the skipped rows, process the jobs not done yet, tally the layout's clips."""
    clips = [j.clip for j in jobs] + [clip for _, clip, _ in skips]
    summary = Summary(total=len(clips), already_done=sum(writer.is_done(c) for c in clips))
    for speaker, clip, reason in skips:
        if not writer.is_done(clip):
            writer.skip_clip(writer.record(speaker, None, None, clip), reason)
            log.info("%s skipped: %s", clip, reason)
    todo = [j for j in jobs if not writer.is_done(j.clip)]
    items = [(j, writer.record(j.speaker, j.emotion, j.level, j.clip)) for j in todo]
    bar = _progress_bar(len(items), progress)
    for result in pool.clips(items):
        writer.add(result.record)
        _count(summary, result, started)
        bar.update(1)
        bar.set_postfix_str(f"{summary.frames / max(summary.seconds, 1e-9):.1f} frames/s")
    bar.close()
    _tally(summary, [writer.records[c] for c in clips if c in writer.records])
    return summary


def _count(summary: Summary, result: ClipResult, started: float) -> None:
    if result.record.status == "ok":
        summary.ok += 1
        summary.frames += result.record.frames
    summary.seconds = time.perf_counter() - started


def _tally(summary: Summary, records: Sequence[ClipRecord]) -> None:
    """Usable and skipped counts over the layout's clips as the manifest now records them."""
    summary.usable = sum(r.status == "ok" for r in records)
    summary.skipped = Counter(r.reason.split(":", 1)[0] for r in records if r.status == "skipped")


def _progress_bar(total: int, enabled: bool, desc: str = "preprocess", unit: str = "clip") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=not enabled, smoothing=0.1)


def skipped_reasons(records: Iterable[ClipRecord]) -> dict[str, str]:
    """clip id → reason of the skipped records (for reports and tests)."""
    return {r.clip: r.reason for r in records if r.status == "skipped"}
