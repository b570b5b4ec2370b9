"""Sharded preprocessing: N machines (a SLURM array) build one cache together, then merge.

`--shard I/N` keeps the jobs whose stable hash (SHA-1 of the video id for the videos layout,
all of a video's clips together; of the clip id for MEAD / CREMA-D) modulo N is I. Every shard
writes into the same `--out`: its clips (disjoint from the other shards'), the plans of its
videos, cache.json (the same settings), and its own manifest part
`manifest.shard-<I>-of-<N>.csv` instead of manifest.csv. A shard never removes temporary folders
(another shard may be writing them).

`merge` folds the parts into manifest.csv (one sorted row per clip, a row made with the cache's
current settings winning over an older one), writes the split of a videos cache into cache.json
(`pmfs.data.preprocess.videos.split_extra`, from every video's plan), removes stale temporary
folders and then the parts. It is `pmfs data merge --out CACHE`, and every run without `--shard`
starts with it, so the result is byte for byte the cache one unsharded run writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmfs.data.cache import CacheNotFoundError, ClipRecord, read_manifest
from pmfs.data.cache_writer import CacheWriter

log = logging.getLogger(__name__)

_PART = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.csv$")
SPLIT_KEYS = ("split_by", "test_fraction", "test_clips", "test_speakers")
"""The keys of cache.json's `extra` that `merge` recomputes."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 ≤ index < count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def manifest(self) -> str:
        """The file name of this shard's manifest part."""
        return f"manifest.shard-{self.index}-of-{self.count}.csv"

    def owns(self, key: str) -> bool:
        """True when the job with this key (`ClipJob.shard_key`) belongs to this shard."""
        return stable_hash(key) % self.count == self.index


def parse_shard(text: str) -> Shard:
    """`"I/N"` → `Shard(I, N)`.

    Raises:
        ValueError: not two integers with 0 ≤ I < N.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not int(match[1]) < int(match[2]):
        raise ValueError(
            f"--shard must be I/N with 0 <= I < N (e.g. 3/8, or $SLURM_ARRAY_TASK_ID/8), "
            f"got {text!r}"
        )
    return Shard(int(match[1]), int(match[2]))


def stable_hash(key: str) -> int:
    """A hash of a string that is the same on every machine and Python run (SHA-1, 64 bits)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:16], 16)


def manifest_parts(root: Path) -> list[Path]:
    """The shard manifests of a cache not merged yet, sorted by shard count and index."""
    parts = []
    for path in Path(root).glob("manifest.shard-*.csv"):
        match = _PART.match(path.name)
        if match is not None:
            parts.append(((int(match[2]), int(match[1])), path))
    return [path for _, path in sorted(parts)]


class ShardWriter(CacheWriter):
    """A `CacheWriter` of one shard: its manifest is the shard's part, and `close` leaves the
    temporary folders alone (other shards may be writing theirs).

    Args:
        root: the cache folder shared by the shards.
        dataset: what the cache holds.
        settings: the cache settings (the same in every shard).
        extra: cache.json's extra (the split is left to `merge`).
        shard: this shard.
    """

    def __init__(
        self,
        root: Path,
        dataset: str,
        settings: Mapping[str, Any],
        extra: Mapping[str, Any] | None,
        shard: Shard,
    ) -> None:
        super().__init__(root, dataset, settings, extra, manifest=shard.manifest)
        self._merged = read_manifest(self.root / "manifest.csv")

    def inherit(self, clips: Iterable[str]) -> None:
        """Take over the rows of these clips from manifest.csv (an earlier unsharded or merged
        run) unless this shard's part has them, so that they count as done."""
        for clip in clips:
            if clip not in self.records and clip in self._merged:
                self.records[clip] = self._merged[clip]

    def close(self) -> None:
        """Compact the part (temporary folders are `merge`'s to remove)."""
        self._compact()


@dataclass
class MergeSummary:
    """What `merge` did: shard parts folded, clips in the manifest, the split written."""

    parts: int
    records: list[ClipRecord]
    split: dict[str, Any]

    def text(self, root: Path) -> str:
        """One line per fact, for `pmfs data merge`."""
        ok = sum(r.status == "ok" for r in self.records)
        lines = [
            f"merged {self.parts} shard manifest(s) into {Path(root) / 'manifest.csv'}: "
            f"{len(self.records)} clips, {ok} usable, {len(self.records) - ok} skipped"
        ]
        if self.split.get("split_by") == "time":
            lines.append(f"split by time: {len(self.split['test_clips'])} test clips")
        elif self.split.get("split_by") == "speaker":
            lines.append(f"split by speaker: test speakers {self.split['test_speakers']}")
        return "\n".join(lines)


def merge(root: Path) -> MergeSummary:
    """Fold the shard manifests of a cache into manifest.csv (the module docstring).

    Raises:
        CacheNotFoundError: no cache.json at `root`.
    """
    root = Path(root)
    info_path = root / "cache.json"
    if not info_path.is_file():
        raise CacheNotFoundError(f"no PMFS cache at {root} (cache.json missing); nothing to merge")
    info = json.loads(info_path.read_text())
    parts = manifest_parts(root)
    extra = dict(info.get("extra", {}))
    split: dict[str, Any] = {}
    if info["dataset"] == "videos":
        from pmfs.data.preprocess.settings import VideoSettings
        from pmfs.data.preprocess.videos import saved_plans, split_extra

        names = VideoSettings.__dataclass_fields__
        videos = VideoSettings(**{k: v for k, v in info["settings"].items() if k in names})
        split = split_extra(saved_plans(root, info["settings_hash"]), videos)
        extra = {k: v for k, v in extra.items() if k not in SPLIT_KEYS} | split
    writer = CacheWriter(root, info["dataset"], info["settings"], extra)
    current = info["settings_hash"]
    for part in parts:
        for record in read_manifest(part).values():
            old = writer.records.get(record.clip)
            if old is None or record.settings_hash == current or old.settings_hash != current:
                writer.records[record.clip] = record
    writer.close()
    for part in parts:
        part.unlink()
    log.info("merged %d shard manifests into %s", len(parts), root / "manifest.csv")
    return MergeSummary(len(parts), list(writer.records.values()), split)
