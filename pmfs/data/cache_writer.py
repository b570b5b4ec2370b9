"""Writing a PMFS cache (`docs/cache_format.md`): the producers' side of `pmfs.data.cache`.

Everything that writes a dataset (the synthetic generator, the MEAD/CREMA-D preprocessor) hands
each clip over as a `ClipData` to `write_clip_dir` (atomic, safe in worker processes) and keeps
the manifest with one `CacheWriter` in the parent process. Image packs are written by
`write_image_pack` in the format `pmfs.data.cache.ImagePack` reads.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from pmfs.data.cache import (
    CACHE_VERSION,
    FORMAT_NAME,
    MANIFEST_FIELDS,
    PACK_FOOTER,
    PACK_MAGIC,
    CacheError,
    ClipRecord,
    clip_dir,
    read_manifest,
)


@dataclass
class ClipData:
    """What a producer hands over for one clip (N frames of S×S pixels).

    Attributes:
        frames: (N, S, S, 3) uint8 RGB crops.
        landmarks: (N, 68, 2) float32, (x, y) pixel coordinates of the crop (pixel-index
            convention: the centre of pixel i is at i).
        fg_mask: (N, S, S) uint8 foreground masks, 0–255 (soft edges allowed).
        audio: (A,) float32 mono 16 kHz.
        mel: (80, M) float32, `pmfs.audio.mel(audio)`.
        meta: JSON-able producer metadata (fps, size, crop box, source, ...).
    """

    frames: np.ndarray
    landmarks: np.ndarray
    fg_mask: np.ndarray
    audio: np.ndarray
    mel: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Check shapes and dtypes against the contract; raise `ValueError` naming the field."""
        n, s = self.frames.shape[0], self.frames.shape[1]
        expected = {
            "frames": ((n, s, s, 3), np.uint8, self.frames),
            "landmarks": ((n, 68, 2), np.float32, self.landmarks),
            "fg_mask": ((n, s, s), np.uint8, self.fg_mask),
        }
        for name, (shape, dtype, array) in expected.items():
            if array.shape != shape or array.dtype != dtype:
                raise ValueError(
                    f"ClipData.{name}: expected {shape} {np.dtype(dtype)}, "
                    f"got {array.shape} {array.dtype}"
                )
        if self.audio.ndim != 1 or self.audio.dtype != np.float32:
            raise ValueError(f"ClipData.audio: expected (A,) float32, got {self.audio.shape}")
        if self.mel.ndim != 2 or self.mel.shape[0] != 80 or self.mel.dtype != np.float32:
            raise ValueError(f"ClipData.mel: expected (80, M) float32, got {self.mel.shape}")
        if n == 0:
            raise ValueError("ClipData: a clip needs at least one frame")


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-able settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# Image packs (read by `pmfs.data.cache.ImagePack`)
# --------------------------------------------------------------------------------------------


def encode_image(image: np.ndarray, codec: Literal["jpeg", "png"], quality: int = 95) -> bytes:
    """Encode an (H, W, 3) or (H, W) uint8 image as JPEG or PNG bytes."""
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if codec == "jpeg":
        pil.save(buffer, format="JPEG", quality=quality, subsampling=0 if quality >= 95 else 2)
    else:
        pil.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_image_pack(
    path: Path, images: Iterable[np.ndarray], codec: Literal["jpeg", "png"], quality: int = 95
) -> int:
    """Write images into one file: the encoded images, then an (n+1,) int64 offset table.

    Returns:
        The number of images written.
    """
    offsets = [0]
    with open(path, "wb") as f:
        for image in images:
            data = encode_image(image, codec, quality)
            f.write(data)
            offsets.append(offsets[-1] + len(data))
        index_offset = offsets[-1]
        f.write(np.asarray(offsets, dtype="<i8").tobytes())
        f.write(PACK_FOOTER.pack(index_offset, len(offsets) - 1, PACK_MAGIC))
    return len(offsets) - 1


# --------------------------------------------------------------------------------------------
# Clips and the manifest
# --------------------------------------------------------------------------------------------


def write_clip_dir(
    root: Path, record: ClipRecord, data: ClipData, jpeg_quality: int = 95
) -> ClipRecord:
    """Write one clip atomically (safe to call from worker processes).

    The clip is written into a hidden temporary folder next to its final place and renamed into
    place; an older version of the clip is replaced only after the new one is complete.

    Returns:
        The record with `frames` and `status` filled in; add it with `CacheWriter.add`.
    """
    data.validate()
    record = dataclasses.replace(record, frames=int(data.frames.shape[0]), status="ok", reason="")
    final = clip_dir(root, record.speaker, record.clip)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{record.clip}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_image_pack(tmp / "frames.pack", data.frames, "jpeg", jpeg_quality)
        write_image_pack(tmp / "masks.pack", data.fg_mask, "png")
        np.save(tmp / "landmarks.npy", np.ascontiguousarray(data.landmarks, dtype=np.float32))
        np.save(tmp / "mel.npy", np.ascontiguousarray(data.mel, dtype=np.float32))
        np.save(tmp / "audio.npy", np.ascontiguousarray(data.audio, dtype=np.float32))
        meta = {"record": dataclasses.asdict(record), **data.meta}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _replace_dir(src: Path, dst: Path) -> None:
    """Move folder `src` to `dst`, replacing an existing `dst` only once `src` is complete."""
    if dst.exists():
        trash = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(dst, trash)
        os.rename(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(src, dst)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _manifest_text(records: Iterable[ClipRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rec in sorted(records, key=lambda r: (r.speaker, r.clip)):
        writer.writerow(dataclasses.asdict(rec))
    return buffer.getvalue()


class CacheWriter:
    """Creates or resumes a cache and keeps its manifest (use in the parent process only).

    Args:
        root: the cache folder (created if missing).
        dataset: "mead", "cremad" or "synthetic".
        settings: everything that changes what a clip contains (size, fps, detector, ...); a clip
            written with other settings is not "done" and is rewritten.
        extra: JSON-able facts about the dataset for readers (e.g. `test_speakers`).
        manifest: the manifest's file name in `root` (a shard of a sharded run writes its own
            part, `pmfs.data.preprocess.shards`).
    """

    def __init__(
        self,
        root: Path,
        dataset: str,
        settings: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        manifest: str = "manifest.csv",
    ) -> None:
        self.root = Path(root)
        self.dataset = dataset
        self.settings = dict(settings)
        self.settings_hash = settings_hash(self.settings)
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_existing()
        info = {
            "format": FORMAT_NAME,
            "version": CACHE_VERSION,
            "dataset": dataset,
            "settings": self.settings,
            "settings_hash": self.settings_hash,
            "extra": dict(extra or {}),
        }
        _atomic_write_text(self.root / "cache.json", json.dumps(info, indent=1, sort_keys=True))
        self.manifest_path = self.root / manifest
        self.records = read_manifest(self.manifest_path)
        self._compact()

    def _check_existing(self) -> None:
        path = self.root / "cache.json"
        if not path.is_file():
            return
        info = json.loads(path.read_text())
        if info.get("version") != CACHE_VERSION or info.get("dataset") != self.dataset:
            raise CacheError(
                f"{self.root} holds a {info.get('dataset')!r} cache of version "
                f"{info.get('version')}; this writer makes {self.dataset!r} version "
                f"{CACHE_VERSION}. Choose another --out or delete the folder."
            )

    def is_done(self, clip: str) -> bool:
        """True when the clip is recorded (ok or skipped) with the current settings."""
        rec = self.records.get(clip)
        if rec is None or rec.settings_hash != self.settings_hash:
            return False
        if rec.status == "ok":
            return (clip_dir(self.root, rec.speaker, clip) / "meta.json").is_file()
        return True

    def record(self, speaker: str, emotion: str | None, level: int | None, clip: str) -> ClipRecord:
        """A fresh record of this dataset and settings."""
        return ClipRecord(
            dataset=self.dataset,
            speaker=speaker,
            emotion=emotion,
            level=level,
            clip=clip,
            settings_hash=self.settings_hash,
        )

    def write_clip(self, record: ClipRecord, data: ClipData) -> ClipRecord:
        """Write a clip (atomically) and add its manifest row."""
        written = write_clip_dir(self.root, record, data)
        self.add(written)
        return written

    def skip_clip(self, record: ClipRecord, reason: str) -> ClipRecord:
        """Record a clip that cannot be used, with its reason."""
        skipped = dataclasses.replace(record, frames=0, status="skipped", reason=reason)
        self.add(skipped)
        return skipped

    def add(self, record: ClipRecord) -> None:
        """Append one whole row to the manifest journal (flushed to disk)."""
        self.records[record.clip] = record
        with open(self.manifest_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, lineterminator="\n").writerow(
                dataclasses.asdict(record)
            )
            f.flush()
            os.fsync(f.fileno())

    def _compact(self) -> None:
        _atomic_write_text(self.manifest_path, _manifest_text(self.records.values()))

    def close(self) -> None:
        """Rewrite the manifest as one sorted row per clip and remove stale temporary folders."""
        self._compact()
        for tmp in (self.root / "clips").glob("*/.*.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        for old in (self.root / "clips").glob("*/.*.old-*"):
            shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
