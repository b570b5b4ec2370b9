"""The PMFS cache: one folder per dataset, one folder per clip (DESIGN §3, `docs/cache_format.md`).

Everything that writes a dataset (the synthetic generator, the MEAD/CREMA-D preprocessor) goes
through `write_clip_dir` + `CacheWriter`; everything that reads one (the DataModule, evaluation,
benchmarks) goes through `Cache` and `ClipReader`.

Layout (format version `CACHE_VERSION`)::

    <root>/cache.json                  format, version, dataset, settings, settings_hash, extra
    <root>/manifest.csv                one row per clip (see `ClipRecord`)
    <root>/clips/<speaker>/<clip>/
        frames.pack                    RGB crops, one JPEG per frame, random access (`ImagePack`)
        masks.pack                     foreground masks, one PNG per frame (`ImagePack`)
        landmarks.npy                  (N, 68, 2) float32, pixel coordinates of the crop
        mel.npy                        (80, M) float32, `pmfs.audio.mel` of the audio
        audio.npy                      (A,) float32 mono 16 kHz
        meta.json                      the clip's record and producer metadata

Writes are atomic: a clip is written into a temporary folder that is renamed into place, the
manifest is a journal of whole lines (a torn last line from a killed run is ignored) that
`CacheWriter.close` compacts into one sorted row per clip through a temporary file and a rename.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

CACHE_VERSION = 1
FORMAT_NAME = "pmfs-cache"
BUILD_HINT = (
    "build it with `pmfs data synth --out DIR` (built-in synthetic data) or "
    "`pmfs data preprocess {mead,cremad} --root RAW --out DIR`"
)

_PACK_MAGIC = b"PMFSPK01"
_FOOTER = struct.Struct("<qq8s")  # index offset, frame count, magic


class CacheError(ValueError):
    """A cache exists but cannot be used (wrong version, damaged file, unknown clip)."""


class CacheNotFoundError(FileNotFoundError):
    """No cache at the given root."""


@dataclass
class ClipRecord:
    """One manifest row.

    Attributes:
        dataset: "mead", "cremad" or "synthetic".
        speaker: speaker id (MEAD "M003", CREMA-D "1001", synthetic "S01").
        emotion: one of `pmfs.batch.EMOTIONS`.
        level: intensity 1–3.
        clip: clip id, unique within the dataset.
        frames: number of frames written (0 for a skipped clip).
        status: "ok" or "skipped".
        reason: why a clip was skipped ("" when ok).
        settings_hash: hash of the settings the clip was produced with.
    """

    dataset: str
    speaker: str
    emotion: str
    level: int
    clip: str
    frames: int = 0
    status: Literal["ok", "skipped"] = "ok"
    reason: str = ""
    settings_hash: str = ""


MANIFEST_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ClipRecord))


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
# Image packs: many encoded images in one file with an index footer.
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
        f.write(_FOOTER.pack(index_offset, len(offsets) - 1, _PACK_MAGIC))
    return len(offsets) - 1


class ImagePack:
    """Random access reader of an image pack; the file is opened lazily in each process.

    Args:
        path: the `.pack` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._pid: int | None = None
        self._offsets: np.ndarray | None = None

    def _handle(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # re-open after a DataLoader fork
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
            self._offsets = None
        return self._fd

    @property
    def offsets(self) -> np.ndarray:
        """(n+1,) int64 byte offsets of the images."""
        fd = self._handle()
        if self._offsets is None:
            size = os.fstat(fd).st_size
            if size < _FOOTER.size:
                raise CacheError(f"{self.path}: file too short to be an image pack")
            index_offset, count, magic = _FOOTER.unpack(
                os.pread(fd, _FOOTER.size, size - _FOOTER.size)
            )
            if magic != _PACK_MAGIC:
                raise CacheError(f"{self.path}: not an image pack (bad magic)")
            raw = os.pread(fd, 8 * (count + 1), index_offset)
            self._offsets = np.frombuffer(raw, dtype="<i8")
        return self._offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def read_bytes(self, i: int) -> bytes:
        """The encoded bytes of image i."""
        offsets = self.offsets
        if not 0 <= i < len(offsets) - 1:
            raise IndexError(f"{self.path}: image {i} out of range 0..{len(offsets) - 2}")
        start, end = int(offsets[i]), int(offsets[i + 1])
        return os.pread(self._handle(), end - start, start)

    def read(self, i: int, size: int | None = None) -> np.ndarray:
        """Decode image i as uint8 (H, W, 3) or (H, W), resized to size×size if given.

        JPEG images decode directly at a reduced scale (`draft`) when `size` is much smaller.
        """
        with Image.open(io.BytesIO(self.read_bytes(i))) as pil:
            if size is not None and pil.format == "JPEG":
                pil.draft(pil.mode, (size, size))
            image: Image.Image = pil
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(image)

    def close(self) -> None:
        """Close the file handle (a later read re-opens it)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def clip_dir(root: Path, speaker: str, clip: str) -> Path:
    """The folder of one clip."""
    return Path(root) / "clips" / speaker / clip


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


def _read_manifest(path: Path) -> dict[str, ClipRecord]:
    """Parse a manifest journal: the last complete row of each clip wins; torn rows are ignored."""
    records: dict[str, ClipRecord] = {}
    if not path.is_file():
        return records
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rec = ClipRecord(
                    dataset=row["dataset"],
                    speaker=row["speaker"],
                    emotion=row["emotion"],
                    level=int(row["level"]),
                    clip=row["clip"],
                    frames=int(row["frames"]),
                    status=row["status"],  # type: ignore[arg-type]
                    reason=row["reason"],
                    settings_hash=row["settings_hash"],
                )
            except (KeyError, TypeError, ValueError):
                log.warning("%s: ignoring an incomplete manifest row %r", path, row)
                continue
            if rec.status not in ("ok", "skipped"):
                continue
            records[rec.clip] = rec
    return records


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
    """

    def __init__(
        self,
        root: Path,
        dataset: str,
        settings: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
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
        self.manifest_path = self.root / "manifest.csv"
        self.records = _read_manifest(self.manifest_path)
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

    def record(self, speaker: str, emotion: str, level: int, clip: str) -> ClipRecord:
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class ClipReader:
    """Read access to one clip; arrays load on first use, images are decoded on demand.

    Args:
        path: the clip's folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not (self.path / "meta.json").is_file():
            raise CacheError(f"{self.path}: not a complete clip (meta.json missing)")
        self._frames = ImagePack(self.path / "frames.pack")
        self._masks = ImagePack(self.path / "masks.pack")
        self._arrays: dict[str, np.ndarray] = {}
        self._meta: dict[str, Any] | None = None

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(self.path / f"{name}.npy")
        return self._arrays[name]

    @property
    def landmarks(self) -> np.ndarray:
        """(N, 68, 2) float32 pixel coordinates of the crop."""
        return self._array("landmarks")

    @property
    def mel(self) -> np.ndarray:
        """(80, M) float32 mel spectrogram in [-4, 4]."""
        return self._array("mel")

    @property
    def audio(self) -> np.ndarray:
        """(A,) float32 mono 16 kHz audio."""
        return self._array("audio")

    @property
    def meta(self) -> dict[str, Any]:
        """The clip's metadata (its manifest record under "record", plus the producer's)."""
        if self._meta is None:
            self._meta = json.loads((self.path / "meta.json").read_text())
        return self._meta

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return int(self.landmarks.shape[0])

    @property
    def size(self) -> int:
        """Side S of the square crops in pixels."""
        return int(self.meta["size"])

    def frame(self, i: int, size: int | None = None) -> np.ndarray:
        """Frame i as (S, S, 3) uint8 RGB (or size×size when given)."""
        return self._frames.read(i, size)

    def frames(self, indices: Sequence[int], size: int | None = None) -> np.ndarray:
        """Frames at `indices` as (n, S, S, 3) uint8."""
        return np.stack([self._frames.read(int(i), size) for i in indices])

    def mask(self, i: int, size: int | None = None) -> np.ndarray:
        """Foreground mask of frame i as (S, S) uint8 (0–255)."""
        return self._masks.read(i, size)

    def close(self) -> None:
        """Release file handles."""
        self._frames.close()
        self._masks.close()


class Cache:
    """Read a cache folder.

    Args:
        root: the folder holding cache.json.

    Raises:
        CacheNotFoundError: there is no cache at `root` (the message names the build command).
        CacheError: the cache has another format version.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        info_path = self.root / "cache.json"
        if not info_path.is_file():
            raise CacheNotFoundError(
                f"no PMFS cache at {self.root} (cache.json missing); {BUILD_HINT}"
            )
        self.info: dict[str, Any] = json.loads(info_path.read_text())
        if self.info.get("format") != FORMAT_NAME or self.info.get("version") != CACHE_VERSION:
            raise CacheError(
                f"{self.root}: cache format {self.info.get('format')!r} version "
                f"{self.info.get('version')} is not {FORMAT_NAME!r} version {CACHE_VERSION}; "
                f"rebuild it ({BUILD_HINT})"
            )
        self.records: list[ClipRecord] = list(_read_manifest(self.root / "manifest.csv").values())
        self._by_clip = {r.clip: r for r in self.records}

    @property
    def dataset(self) -> str:
        """The dataset name recorded in cache.json."""
        return str(self.info["dataset"])

    @property
    def extra(self) -> dict[str, Any]:
        """Producer facts, e.g. `test_speakers` of the synthetic set."""
        return dict(self.info.get("extra", {}))

    def clips(self) -> list[ClipRecord]:
        """The usable clips (status ok), sorted by speaker and clip id."""
        ok = [r for r in self.records if r.status == "ok"]
        return sorted(ok, key=lambda r: (r.speaker, r.clip))

    def skipped(self) -> list[ClipRecord]:
        """The clips that were recorded as unusable, with their reasons."""
        return [r for r in self.records if r.status == "skipped"]

    def open(self, clip: str) -> ClipReader:
        """A reader of one clip by id."""
        rec = self._by_clip.get(clip)
        if rec is None or rec.status != "ok":
            raise CacheError(f"{self.root}: no usable clip {clip!r} in the manifest")
        return ClipReader(clip_dir(self.root, rec.speaker, clip))
