"""`pmfs infer --batch jobs.csv`: many videos from one loaded model, each face tracked once.

`run_batch` reads the jobs (`pmfs.inference.jobs.read_jobs`: the header is checked before any
model loads), loads the model once (`pmfs.inference.run.LoadedModel`) and runs the jobs grouped
by target face, groups in order of first appearance: a face's frames are read and its faces
detected once, for the longest job that uses it (`TargetFace`); each job then takes the frames
it needs (`TargetFace.track`, exactly what a single run would get, detection being causal) and
renders (`render_video`, the one code path of `pmfs infer`). Only one face is held at a time,
so memory does not grow with the number of faces. A failing job — a missing or unreadable file,
no face, a bad emotion — is recorded with its one-line reason and the others go on; each
finished video was written atomically. The results CSV gets a row as each job ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from av.error import FFmpegError

from pmfs.inference.jobs import (
    BatchFileError,
    Job,
    JobResult,
    ResultsLog,
    default_results_path,
    read_jobs,
    write_results,
)
from pmfs.inference.options import InferenceOptions
from pmfs.inference.run import (
    LoadedModel,
    TargetFace,
    cut_speech,
    frames_needed,
    read_speech,
    render_video,
)
from pmfs.inference.template import load_template
from pmfs.inference.tracking import FaceDetector

log = logging.getLogger(__name__)

JOB_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, FFmpegError)
"""What fails one job and not the batch: bad or missing files (`FileNotFoundError`,
`InferenceInputError`, `NoFaceError`, `AudioError`, PyAV's errors), a detector without weights,
a device error (CUDA out of memory is a `RuntimeError`)."""


@dataclass(frozen=True)
class BatchResult:
    """What `run_batch` did: every job's result (in job order), where they were written, the
    wall time."""

    results: list[JobResult]
    path: Path
    seconds: float

    @property
    def failed(self) -> int:
        """Jobs that failed."""
        return sum(r.status == "failed" for r in self.results)

    def summary(self) -> str:
        """One line: jobs, ok, failed, time, where the results are."""
        ok = len(self.results) - self.failed
        return (
            f"batch: {len(self.results)} jobs, {ok} ok, {self.failed} failed in "
            f"{self.seconds:.1f} s; results in {self.path}"
        )


def run_batch(
    ckpt: str | Path,
    jobs_csv: str | Path,
    options: InferenceOptions | None = None,
    *,
    results: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> BatchResult:
    """Run every job of a jobs CSV with one loaded model (see the module's docstring).

    Args:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        jobs_csv: the jobs (`REQUIRED_COLUMNS`, `OPTIONAL_COLUMNS`).
        options: every job's settings (a row's emotion, level, references replace its own);
            `progress` shows a bar over the jobs.
        results: the results CSV (default: `default_results_path`).
        detector: a face detector for every face without a `landmarks` cell, instead of the one
            `options.detector` names.

    Raises:
        FileNotFoundError, BatchFileError: the jobs CSV cannot be used (before any model loads).
        pmfs.checkpoints.CheckpointError, InferenceInputError: the checkpoint cannot be used.
    """
    from tqdm.auto import tqdm

    options = options or InferenceOptions()
    jobs = read_jobs(jobs_csv, options)
    path = Path(results) if results is not None else default_results_path(Path(jobs_csv))
    if path.resolve() == Path(jobs_csv).resolve():
        raise BatchFileError(f"--results {path} is the jobs file; give another file")
    began = time.perf_counter()
    loaded = LoadedModel.load(ckpt, options.device)
    done: list[JobResult] = []
    bar = tqdm(total=len(jobs), unit="job", desc="pmfs infer --batch", disable=not options.progress)
    try:
        with ResultsLog(path) as record:
            for group in _face_groups(jobs):
                for result in _run_group(loaded, group, detector):
                    record.add(result)
                    done.append(result)
                    bar.update(1)
    finally:
        bar.close()
    ordered = sorted(done, key=lambda r: r.job.number)
    write_results(path, ordered)
    return BatchResult(ordered, path, time.perf_counter() - began)


def _face_groups(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped by face (`Job.face_key`), groups in order of first appearance."""
    groups: dict[tuple[Path, Path | None], list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.face_key, []).append(job)
    return list(groups.values())


def _run_group(
    loaded: LoadedModel, jobs: list[Job], detector: FaceDetector | None
) -> Iterator[JobResult]:
    """The jobs of one face: their audio lengths first (the longest sets how many face frames
    are read and detected), then the face once (by the first job that runs), then each job."""
    needed: list[tuple[Job, int]] = []
    for job in jobs:
        began = time.perf_counter()
        if job.problem is not None:
            yield _failed(job, job.problem, began)
            continue
        try:
            audio = cut_speech(read_speech(job.audio), job.options)
        except JOB_ERRORS as exc:
            yield _failed(job, one_line(exc), began)
            continue
        needed.append((job, frames_needed(len(audio), job.options)[1]))
    face: TargetFace | None = None
    face_error: str | None = None
    for job, _ in needed:
        began = time.perf_counter()
        if face_error is not None:
            yield _failed(job, face_error, began)
            continue
        try:
            if face is None:
                longest = max(limit for _, limit in needed)
                template = load_template(job.face, max_frames=longest)
                face = TargetFace.detect(template, job.options, loaded, job.landmarks, detector)
        except JOB_ERRORS as exc:
            face_error = one_line(exc)
            yield _failed(job, face_error, began)
            continue
        yield _render(loaded, job, face, began)


def _render(loaded: LoadedModel, job: Job, face: TargetFace, began: float) -> JobResult:
    """One job's video (its audio read again: a batch holds one job's audio at a time)."""
    try:
        audio = cut_speech(read_speech(job.audio), job.options)
        options = replace(job.options, progress=False)
        done = render_video(loaded, audio, face, job.out, options)
    except JOB_ERRORS as exc:
        return _failed(job, one_line(exc), began)
    return JobResult(job, "ok", time.perf_counter() - began, done.frames)


def _failed(job: Job, reason: str, began: float) -> JobResult:
    log.warning("job %d (%s) failed: %s", job.number, job.out.name, reason)
    return JobResult(job, "failed", time.perf_counter() - began, error=reason)


def one_line(exc: BaseException) -> str:
    """An exception as one line (its type when it has no message)."""
    return " ".join(str(exc).split()) or type(exc).__name__
