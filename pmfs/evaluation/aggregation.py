"""Aggregation of `pmfs evaluate`: the clips' scores per emotion, per (emotion, level), overall.

A clip without emotion labels (the videos layout: emotion and level None) counts overall and per
clip only; a dataset without labels has empty per-emotion and per-level groups.

Per-frame metrics are means over frames (every frame of the group counts once, as the sum states
of `pmfs.metrics`), per-clip metrics (sync, LSE) means over clips: each clip adds
Σ value·weight and Σ weight (`pmfs.evaluation.scores.Score`). FID is not aggregated here: it is
computed over the whole split only (`pmfs.evaluation.reports.results_dict`), as a per-group FID
of a few dozen frames says little and every group would need its own 2048² feature statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pmfs.batch import EMOTIONS
from pmfs.evaluation.scores import METRICS, PathScores

if TYPE_CHECKING:
    from pmfs.data.cache import ClipRecord

GROUPINGS = ("overall", "per_emotion", "per_level")


@dataclass
class GroupSums:
    """Weighted sums of every metric of a group of clips (one row of a table).

    Attributes:
        clips: clips added.
        frames: frames of those clips.
        sums: path → metric → [Σ value·weight, Σ weight].
    """

    clips: int = 0
    frames: int = 0
    sums: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, frames: int, scores: PathScores) -> None:
        """Add one clip of `frames` frames and its scores."""
        self.clips += 1
        self.frames += frames
        for path, metrics in scores.items():
            sums = self.sums.setdefault(path, {})
            for name, (value, weight) in metrics.items():
                total = sums.setdefault(name, [0.0, 0.0])
                total[0] += value * weight
                total[1] += weight

    def means(self) -> dict[str, dict[str, float]]:
        """path → metric → weighted mean, metrics in `METRICS` order."""
        return {
            path: {name: sums[name][0] / sums[name][1] for name in METRICS if name in sums}
            for path, sums in self.sums.items()
        }

    def summary(self) -> dict[str, Any]:
        """{"clips", "frames", <path>: {metric: mean}} as written to metrics.json."""
        return {"clips": self.clips, "frames": self.frames, **self.means()}


@dataclass
class Aggregate:
    """The sums of the whole split, per emotion and per (emotion, level), and per-clip values."""

    overall: GroupSums = field(default_factory=GroupSums)
    per_emotion: dict[str, GroupSums] = field(default_factory=dict)
    per_level: dict[str, GroupSums] = field(default_factory=dict)
    per_clip: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: ClipRecord, frames: int, scores: PathScores) -> None:
        """Add one clip to the overall, its emotion's and its (emotion, level)'s groups (the
        last two only when it has labels)."""
        self.overall.add(frames, scores)
        if record.emotion is not None:
            self.per_emotion.setdefault(record.emotion, GroupSums()).add(frames, scores)
        if record.emotion is not None and record.level is not None:
            key = level_key(record.emotion, record.level)
            self.per_level.setdefault(key, GroupSums()).add(frames, scores)
        values = {path: {k: v for k, (v, _) in s.items()} for path, s in scores.items()}
        self.per_clip[record.clip] = {
            "speaker": record.speaker,
            "emotion": record.emotion,
            "level": record.level,
            "frames": frames,
            **values,
        }


def level_key(emotion: str, level: int) -> str:
    """Key of an (emotion, level) group in metrics.json, e.g. "angry/3"."""
    return f"{emotion}/{level}"


def group_order(item: tuple[str, GroupSums]) -> tuple[int, str]:
    """Sort key of a group: MEAD's emotion order, then the level."""
    emotion, _, level = item[0].partition("/")
    rank = EMOTIONS.index(emotion) if emotion in EMOTIONS else len(EMOTIONS)
    return rank, level
