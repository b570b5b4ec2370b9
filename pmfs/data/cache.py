"""The PMFS cache: one folder per dataset, one folder per clip (DESIGN §3, `docs/cache_format.md`).

This module holds the format (layout, version, manifest rows, image packs) and its reading side:
everything that reads a dataset (the DataModule, evaluation, benchmarks) goes through `Cache` and
`ClipReader`. Everything that writes one (the synthetic generator, the MEAD/CREMA-D preprocessor)
goes through `pmfs.data.cache_writer` (`ClipData`, `write_clip_dir`, `CacheWriter`).

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
import io
import json
import logging
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
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

PACK_MAGIC = b"PMFSPK01"
"""Last bytes of an image pack (`ImagePack`, `pmfs.data.cache_writer.write_image_pack`)."""
PACK_FOOTER = struct.Struct("<qq8s")  # index offset, frame count, magic


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
        emotion: one of `pmfs.batch.EMOTIONS`, or None for a dataset without emotion labels
            (the `videos` layout; an empty manifest cell).
        level: intensity 1–3, or None with `emotion`.
        clip: clip id, unique within the dataset.
        frames: number of frames written (0 for a skipped clip).
        status: "ok" or "skipped".
        reason: why a clip was skipped ("" when ok).
        settings_hash: hash of the settings the clip was produced with.
    """

    dataset: str
    speaker: str
    emotion: str | None
    level: int | None
    clip: str
    frames: int = 0
    status: Literal["ok", "skipped"] = "ok"
    reason: str = ""
    settings_hash: str = ""


MANIFEST_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ClipRecord))


# --------------------------------------------------------------------------------------------
# Image packs: many encoded images in one file with an index footer (written by
# `pmfs.data.cache_writer.write_image_pack`).
# --------------------------------------------------------------------------------------------


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
            if size < PACK_FOOTER.size:
                raise CacheError(f"{self.path}: file too short to be an image pack")
            index_offset, count, magic = PACK_FOOTER.unpack(
                os.pread(fd, PACK_FOOTER.size, size - PACK_FOOTER.size)
            )
            if magic != PACK_MAGIC:
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
# Reading
# --------------------------------------------------------------------------------------------


def clip_dir(root: Path, speaker: str, clip: str) -> Path:
    """The folder of one clip."""
    return Path(root) / "clips" / speaker / clip


def read_manifest(path: Path) -> dict[str, ClipRecord]:
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
                    emotion=row["emotion"] or None,  # an empty cell: no label
                    level=int(row["level"]) if row["level"] else None,
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
        self.records: list[ClipRecord] = list(read_manifest(self.root / "manifest.csv").values())
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
