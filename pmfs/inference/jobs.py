"""The jobs CSV of `pmfs infer --batch`, and the results CSV it writes.

A jobs CSV has one row per video: the columns `audio`, `face` and `out` (required) and
`emotion`, `level`, `references` and `landmarks` (optional; an empty cell keeps the command's
setting). Relative paths are read from the CSV's folder. `read_jobs` checks the header
(`BatchFileError`: a missing, unknown or repeated column, no rows) and each row's values: a bad
value (an unknown emotion, an empty cell, an `out` that is not a video, the `out` of an earlier
row) is that job's `problem`, recorded as a failure while the other jobs run. The results CSV
(`RESULT_COLUMNS`) gets a row as each job ends (`ResultsLog`) and is rewritten in job order at
the end (`write_results`). Torch-free: a bad header is reported before anything heavy loads.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, cast

from pmfs.batch import EMOTIONS, LEVELS, Emotion, Level
from pmfs.inference.options import InferenceOptions
from pmfs.video_writer import VIDEO_SUFFIXES

REQUIRED_COLUMNS = ("audio", "face", "out")
OPTIONAL_COLUMNS = ("emotion", "level", "references", "landmarks")
RESULT_COLUMNS = ("job", "audio", "face", "out", "status", "seconds", "frames", "error")


class BatchFileError(ValueError):
    """A jobs CSV that cannot be used at all (missing or unknown columns, no rows)."""


@dataclass(frozen=True)
class Job:
    """One row of a jobs CSV.

    Attributes:
        number: 1 for the first row under the header.
        audio, face, out: its files, absolute (relative paths start at the CSV's folder).
        landmarks: a .npy of the face's landmarks (the `landmarks` column), else None.
        options: the command's options with the row's `emotion`, `level`, `references`.
        problem: why the row cannot run (a bad value), else None.
    """

    number: int
    audio: Path
    face: Path
    out: Path
    landmarks: Path | None
    options: InferenceOptions
    problem: str | None = None

    @property
    def face_key(self) -> tuple[Path, Path | None]:
        """Jobs with the same key share one read and detection of their face."""
        return self.face, self.landmarks


@dataclass(frozen=True)
class JobResult:
    """How one job ended (a row of the results CSV)."""

    job: Job
    status: Literal["ok", "failed"]
    seconds: float = 0.0
    frames: int = 0
    error: str = ""

    def row(self) -> dict[str, str]:
        """The results CSV row."""
        j = self.job
        return {
            "job": str(j.number),
            "audio": str(j.audio),
            "face": str(j.face),
            "out": str(j.out),
            "status": self.status,
            "seconds": f"{self.seconds:.2f}",
            "frames": str(self.frames),
            "error": self.error,
        }


def default_results_path(jobs: Path) -> Path:
    """`<folder>/<stem>.results.csv` next to the jobs CSV."""
    return jobs.with_name(f"{jobs.stem}.results.csv")


def read_jobs(path: str | Path, options: InferenceOptions) -> list[Job]:
    """The jobs of a CSV, header checked, each row's values parsed (a bad value is the row's
    `problem`, not an error).

    Raises:
        FileNotFoundError: no such file.
        BatchFileError: a required column missing, an unknown column, or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jobs file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_header(path, [name.strip() for name in reader.fieldnames or []])
        rows = [_cells(row) for row in reader]
    if not rows:
        raise BatchFileError(f"{path} has a header but no jobs; add one row per video")
    jobs = [_job(i, *row, path.parent, options) for i, row in enumerate(rows, start=1)]
    return _flag_shared_outputs(jobs)


def _cells(row: dict[str | None, str | list[str] | None]) -> tuple[dict[str, str], int]:
    """A `csv.DictReader` row as column → stripped text (a missing field is absent), and the
    number of fields beyond the header (DictReader's key None)."""
    cells = {
        k.strip(): v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str)
    }
    extra = row.get(None)
    return cells, len(extra) if isinstance(extra, list) else 0


def _check_header(path: Path, names: list[str]) -> None:
    """Raise `BatchFileError` for missing, unknown or repeated columns."""
    expected = (
        f"columns: {', '.join(REQUIRED_COLUMNS)} (required), {', '.join(OPTIONAL_COLUMNS)} "
        "(optional)"
    )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    unknown = [c for c in names if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    for problem, which in (("no column", missing), ("unknown column", unknown)):
        if which:
            raise BatchFileError(f"{path}: {problem} {', '.join(map(repr, which))}; {expected}")
    if repeated:
        raise BatchFileError(f"{path}: column {', '.join(map(repr, repeated))} appears twice")


def _job(
    number: int, cells: dict[str, str], extra: int, folder: Path, base: InferenceOptions
) -> Job:
    """A row's cells → a `Job` (its `problem` set when a value is bad)."""

    def resolve(text: str) -> Path:  # absolute and normalized: one face, one key
        return Path(os.path.abspath(folder / Path(text).expanduser()))

    files = {name: resolve(cells.get(name, "")) for name in REQUIRED_COLUMNS}
    landmarks = resolve(cells["landmarks"]) if cells.get("landmarks") else None
    job = Job(number, files["audio"], files["face"], files["out"], landmarks, base)
    problems = [f"empty {name!r} cell" for name in REQUIRED_COLUMNS if not cells.get(name)]
    if extra:
        problems.append(f"{extra} more fields than the header has columns")
    if cells.get("out") and files["out"].suffix.lower() not in VIDEO_SUFFIXES:
        problems.append(f"out {files['out']} must end in one of {', '.join(VIDEO_SUFFIXES)}")
    try:
        row = _row_options(
            base, cells.get("emotion", ""), cells.get("level", ""), cells.get("references", "")
        )
    except ValueError as exc:
        problems.append(str(exc))
        row = base
    return replace(job, options=row, problem="; ".join(problems) or None)


def _row_options(
    base: InferenceOptions, emotion: str, level: str, references: str
) -> InferenceOptions:
    """`base` with a row's emotion, level and reference count (empty cells: `base`'s).

    Raises:
        ValueError: an emotion not in `EMOTIONS`, a level not in `LEVELS`, references < 1.
    """
    if emotion and emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; one of {', '.join(EMOTIONS)}")
    if level and (not level.isdigit() or int(level) not in LEVELS):
        raise ValueError(f"level must be one of {', '.join(map(str, LEVELS))}, got {level!r}")
    if references and (not references.isdigit() or int(references) < 1):
        raise ValueError(f"references must be a whole number ≥ 1, got {references!r}")
    return replace(
        base,
        emotion=cast(Emotion, emotion) if emotion else base.emotion,
        level=cast(Level, int(level)) if level else base.level,
        num_references=int(references) if references else base.num_references,
    )


def _flag_shared_outputs(jobs: list[Job]) -> list[Job]:
    """A job writing the `out` of an earlier job is not run (it would overwrite it)."""
    first: dict[Path, int] = {}
    flagged = []
    for job in jobs:
        owner = first.setdefault(job.out.resolve(), job.number)
        if owner != job.number and job.problem is None:
            job = replace(job, problem=f"out {job.out} is also the out of job {owner}")
        flagged.append(job)
    return flagged


class ResultsLog:
    """The results CSV written as jobs end (header first, a flushed row per job), so a killed
    batch still says which jobs finished."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> ResultsLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=RESULT_COLUMNS)
        self._writer.writeheader()
        return self

    def add(self, result: JobResult) -> None:
        self._writer.writerow(result.row())
        self._handle.flush()

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def write_results(path: Path, results: list[JobResult]) -> None:
    """The results CSV in job order, atomically (a temporary name, then a rename)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(r.row() for r in results)
    os.replace(tmp, path)
