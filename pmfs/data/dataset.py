"""Torch datasets over the PMFS cache: T-frame windows, references, background, landmark-only.

One item is one *target frame* of one clip with its T-frame window (DESIGN §2 batch contract):

- the window holds frames `t - T//2 … t + T//2`, **clamped** to the clip (the first/last frame is
  repeated at the clip's ends, and its mel window is the one of that repeated frame), so every
  frame of a clip can be a target;
- landmarks are converted from the cache's crop pixels to [-1, 1] (`pixels_to_normalized`,
  `grid_sample(align_corners=False)` convention), which does not change when images are resized;
- references follow `reference_source` (see `SampleSpec`), images are float32 in [0, 1], and with
  `background="remove"` every image is multiplied by its foreground mask and filled with white;
- a landmark-only dataset (`landmarks_only=True`) never opens an image file.

Sampling: with `samples_per_clip=n` a clip yields n items per epoch, item j taking its target frame
from the j-th of n equal strata of the clip (random inside the stratum in training, its middle in
evaluation); with `samples_per_clip=None` every frame of every clip is an item. Items are indexed
densely, so a `DistributedSampler` (Lightning's default under DDP) shards them disjointly.

Randomness: evaluation items are a pure function of `(seed, index)`, training items of
`(seed, epoch, index)`: `EpochSampler` (the training loaders' sampler) shuffles with `seed + epoch`
and passes the epoch inside each index (`epoch · len + index`). So a seeded loader gives the same
batches with any number of workers, each epoch gives new frames, and a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, default_collate, get_worker_info

from pmfs.audio import mel_window
from pmfs.batch import EMOTIONS, LEVELS, Background, Batch
from pmfs.data.cache import Cache, ClipReader, ClipRecord
from pmfs.landmarks import mouth_opening, pixels_to_normalized

log = logging.getLogger(__name__)

ReferenceSource = Literal["driven", "random", "spread"]
Sample = dict[str, Any]


@dataclass(frozen=True)
class SampleSpec:
    """What one sample holds (the stage-3 ablation switches live here).

    Attributes:
        window: T, odd number of frames centred on the target frame.
        image_size: side of the returned images; smaller than the cache's crops → resized on
            load (JPEG decoded at reduced scale), larger → `ValueError`.
        num_references: K reference frames (and their landmarks) per sample.
        reference_source: "driven" — K frames of the same clip at least `reference_gap` frames
            from the target; "random" — K frames of another clip of the same speaker (the same
            clip, with a warning, when the speaker has only one); "spread" — K frames of the clip
            spread over the quantiles of mouth opening, outside the gap around the target.
        reference_gap: minimum |frame − target| of same-clip references.
        background: "keep" the real frames, or "remove": image × mask + white × (1 − mask).
        landmarks_only: return only mel, landmarks, ref_landmarks and labels; read no images.
    """

    window: int = 5
    image_size: int = 256
    num_references: int = 3
    reference_source: ReferenceSource = "driven"
    reference_gap: int = 10
    background: Background = "keep"
    landmarks_only: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of frames, got {self.window}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.num_references < 0:
            raise ValueError(f"num_references must be >= 0, got {self.num_references}")
        if self.reference_gap < 0:
            raise ValueError(f"reference_gap must be >= 0, got {self.reference_gap}")
        if self.reference_source not in ("driven", "random", "spread"):
            raise ValueError(
                f"reference_source must be driven, random or spread, got {self.reference_source!r}"
            )
        if self.background not in ("keep", "remove"):
            raise ValueError(f"background must be keep or remove, got {self.background!r}")


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    """Clip records of each split, sorted by (speaker, clip)."""

    train: list[ClipRecord]
    val: list[ClipRecord]
    test: list[ClipRecord]


def split_clips(
    records: Sequence[ClipRecord],
    test_speakers: Sequence[str] | None,
    val_fraction: float,
    seed: int,
) -> Splits:
    """Split clips by speaker (test) and by clip (validation), deterministically for a seed.

    Test = every clip of `test_speakers` (all clips when `test_speakers` is None: a test-only
    dataset). Validation = `round(val_fraction × n)` clips (at least one when `val_fraction > 0`
    and there are two or more) of the n training-speaker clips, taken round-robin over the
    speakers from a seeded shuffle and never a speaker's last clip, so every training speaker
    keeps training clips. Train = the rest.

    Args:
        records: usable clips (`Cache.clips()`).
        test_speakers: held-out speakers, or None for "everything is test".
        val_fraction: share of the training speakers' clips held out for validation, in [0, 1).
        seed: seed of the shuffle.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(records, key=lambda r: (r.speaker, r.clip))
    if test_speakers is None:
        return Splits(train=[], val=[], test=ordered)
    held_out = set(test_speakers)
    test = [r for r in ordered if r.speaker in held_out]
    pool = [r for r in ordered if r.speaker not in held_out]
    val_ids = _pick_validation(pool, val_fraction, seed)
    train = [r for r in pool if r.clip not in val_ids]
    val = [r for r in pool if r.clip in val_ids]
    return Splits(train=train, val=val, test=test)


def _pick_validation(pool: Sequence[ClipRecord], val_fraction: float, seed: int) -> set[str]:
    """Clip ids held out for validation (see `split_clips`)."""
    wanted = round(val_fraction * len(pool))
    if val_fraction > 0 and len(pool) >= 2:
        wanted = max(wanted, 1)
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[str]] = {}
    for record in pool:
        by_speaker.setdefault(record.speaker, []).append(record.clip)
    queues = {s: [clips[i] for i in rng.permutation(len(clips))] for s, clips in by_speaker.items()}
    speakers = [sorted(queues)[i] for i in rng.permutation(len(queues))]
    chosen: set[str] = set()
    while len(chosen) < wanted:
        progressed = False
        for speaker in speakers:
            if len(chosen) < wanted and len(queues[speaker]) > 1:
                chosen.add(queues[speaker].pop())
                progressed = True
        if not progressed:  # every speaker is down to its last clip
            break
    return chosen


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


class _ReaderPool:
    """An LRU of open `ClipReader`s (bounded: each holds two file handles and its arrays)."""

    def __init__(self, cache: Cache, capacity: int) -> None:
        self.cache = cache
        self.capacity = max(1, capacity)
        self._readers: OrderedDict[str, ClipReader] = OrderedDict()
        self._openings: dict[str, np.ndarray] = {}

    def get(self, clip: str) -> ClipReader:
        reader = self._readers.get(clip)
        if reader is None:
            reader = self.cache.open(clip)
            self._readers[clip] = reader
            if len(self._readers) > self.capacity:
                old_clip, old = self._readers.popitem(last=False)
                old.close()
                self._openings.pop(old_clip, None)
        else:
            self._readers.move_to_end(clip)
        return reader

    def opening(self, clip: str) -> np.ndarray:
        """(N,) mouth opening of every frame of a clip (pixels), computed once per open clip."""
        reader = self.get(clip)
        if clip not in self._openings:
            self._openings[clip] = np.asarray(mouth_opening(reader.landmarks), dtype=np.float32)
        return self._openings[clip]

    def close(self) -> None:
        """Close every open reader (a later `get` re-opens)."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._openings.clear()


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class TalkingFaceDataset(Dataset[Sample]):
    """Items of the batch contract (DESIGN §2) from a list of cached clips.

    An item holds float32 tensors `mel` (T, 80, 16), `landmarks` (T, 68, 2) and `ref_landmarks`
    (K, 68, 2), numpy int64 `emotion`, `level`, `frame_index`, str `speaker`, `clip`, and unless
    `spec.landmarks_only` the uint8 images of `_image_sample`. Batch items with `self.collate`
    (a `Collate`), which gives exactly a `pmfs.batch.Batch`; images stay uint8 until then so that
    workers convert each batch once instead of each image several times.

    Args:
        cache: the opened cache.
        clips: the clips of this split (every frame of them can be a target).
        spec: what a sample holds.
        train: random target frames and references (else deterministic for `seed`).
        samples_per_clip: items per clip per epoch (one per stratum), or None for every frame.
        reference_clips: clips that "random" references may come from (default: `clips`).
        seed: seed of all random choices.
        max_open_clips: clips kept open per process (LRU; two file handles each).
    """

    def __init__(
        self,
        cache: Cache,
        clips: Sequence[ClipRecord],
        spec: SampleSpec,
        *,
        train: bool,
        samples_per_clip: int | None,
        reference_clips: Sequence[ClipRecord] | None = None,
        seed: int = 0,
        max_open_clips: int = 256,
    ) -> None:
        if samples_per_clip is not None and samples_per_clip < 1:
            raise ValueError(f"samples_per_clip must be >= 1 or None, got {samples_per_clip}")
        self.cache = cache
        self.clips = list(clips)
        self.spec = spec
        self.train = train
        self.samples_per_clip = samples_per_clip
        self.seed = seed
        self.max_open_clips = max_open_clips
        for record in self.clips:
            _labels(record)  # fail early on labels outside MEAD's
        counts = [r.frames if samples_per_clip is None else samples_per_clip for r in self.clips]
        self._offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self._same_speaker = _other_clips_by_speaker(reference_clips or self.clips)
        self._readers = _ReaderPool(cache, max_open_clips)
        self._warned: set[str] = set()
        self.collate = Collate(spec.background)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def close(self) -> None:
        """Release the file handles of this process's open clips."""
        self._readers.close()

    def __getitem__(self, index: int) -> Sample:
        epoch, index = divmod(index, len(self)) if self.train and index >= 0 else (0, index)
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range 0..{len(self) - 1}")
        clip_index = int(np.searchsorted(self._offsets, index, side="right")) - 1
        record = self.clips[clip_index]
        reader = self._readers.get(record.clip)
        rng = self._item_rng(index, epoch)
        centre = self._centre(int(index - self._offsets[clip_index]), reader.num_frames, rng)
        ref_clip, ref_frames = self._references(record, reader.num_frames, centre, rng)
        ref_reader = self._readers.get(ref_clip)
        sample = self._landmark_sample(record, reader, centre, ref_reader, ref_frames)
        if not self.spec.landmarks_only:
            sample.update(self._image_sample(reader, centre, ref_reader, ref_frames))
        return sample

    # -- randomness ---------------------------------------------------------------------------

    def _item_rng(self, index: int, epoch: int) -> np.random.Generator | None:
        """The generator of one item: None in evaluation when nothing random is needed."""
        if not self.train:
            if self.spec.reference_source == "random":
                return np.random.default_rng((self.seed, index))
            return None
        return np.random.default_rng((self.seed, epoch, index))

    # -- frame choice -------------------------------------------------------------------------

    def _centre(self, slot: int, num_frames: int, rng: np.random.Generator | None) -> int:
        """The target frame of item `slot` of a clip: its stratum's middle, or random in it."""
        if self.samples_per_clip is None:
            return min(slot, num_frames - 1)
        n = self.samples_per_clip
        start = slot * num_frames // n
        stop = max((slot + 1) * num_frames // n, start + 1)
        if self.train and rng is not None:
            return min(int(rng.integers(start, stop)), num_frames - 1)
        return min((start + stop - 1) // 2, num_frames - 1)

    def window_frames(self, centre: int, num_frames: int) -> np.ndarray:
        """(T,) frame indices of the window around `centre`, clamped to [0, num_frames − 1]."""
        half = self.spec.window // 2
        return np.clip(np.arange(centre - half, centre + half + 1), 0, num_frames - 1)

    def _references(
        self, record: ClipRecord, num_frames: int, centre: int, rng: np.random.Generator | None
    ) -> tuple[str, np.ndarray]:
        """The clip of the references and their (K,) frame indices."""
        spec = self.spec
        if spec.num_references == 0:
            return record.clip, np.zeros(0, dtype=np.int64)
        if spec.reference_source == "random":
            others = self._same_speaker.get(record.speaker, {}).get(record.clip, [])
            if others:
                assert rng is not None  # "random" always has a generator
                other = others[int(rng.integers(len(others)))]
                frames = np.arange(self._readers.get(other).num_frames)
                return other, _pick(frames, spec.num_references, rng if self.train else None)
            self._warn_once(
                record.speaker,
                f"speaker {record.speaker} has no other clip for random references; "
                f"using frames of the same clip (at least {spec.reference_gap} frames away)",
            )
        candidates = self._away_from(centre, num_frames, record.clip)
        if spec.reference_source == "spread":
            opening = self._readers.opening(record.clip)[candidates]
            candidates = candidates[np.argsort(opening, kind="stable")]
            return record.clip, _pick(candidates, spec.num_references, rng, jitter=True)
        return record.clip, _pick(candidates, spec.num_references, rng if self.train else None)

    def _away_from(self, centre: int, num_frames: int, clip: str) -> np.ndarray:
        """Frames at least `reference_gap` from `centre` (the farthest ones if none are)."""
        frames = np.arange(num_frames)
        distance = np.abs(frames - centre)
        candidates = frames[distance >= self.spec.reference_gap]
        if len(candidates) == 0:
            self._warn_once(
                clip,
                f"clip {clip} ({num_frames} frames) is too short for reference_gap="
                f"{self.spec.reference_gap}; using its frames farthest from the target",
            )
            candidates = np.sort(frames[distance >= distance.max()])
        return candidates

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- reading ------------------------------------------------------------------------------

    def _landmark_sample(
        self,
        record: ClipRecord,
        reader: ClipReader,
        centre: int,
        ref_reader: ClipReader,
        ref_frames: np.ndarray,
    ) -> Sample:
        """Everything but the images (no image file is opened here)."""
        frames = self.window_frames(centre, reader.num_frames)
        mel = np.stack([mel_window(reader.mel, int(f)) for f in frames])  # (T, 80, 16)
        landmarks = pixels_to_normalized(reader.landmarks[frames], reader.size)  # (T, 68, 2)
        refs = pixels_to_normalized(ref_reader.landmarks[ref_frames], ref_reader.size)  # (K,68,2)
        emotion, level = _labels(record)
        return {
            "mel": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)),
            "landmarks": torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32)),
            "ref_landmarks": torch.from_numpy(np.ascontiguousarray(refs, dtype=np.float32)),
            "emotion": np.int64(emotion),  # numpy scalars: collated to (B,) int64 tensors
            "level": np.int64(level),
            "speaker": record.speaker,
            "clip": record.clip,
            "frame_index": np.int64(centre),
        }

    def _image_sample(
        self, reader: ClipReader, centre: int, ref_reader: ClipReader, ref_frames: np.ndarray
    ) -> Sample:
        """The item's images as uint8 arrays; `Collate` turns them into the float batch.

        Returns:
            `target` (H, W, 3), `fg_mask` (H, W), `ref_frames` (K, H, W, 3), and with
            `background="remove"` also `ref_masks` (K, H, W); uint8, channel-last as decoded.
        """
        size = self._decode_size(reader)
        ref_size = self._decode_size(ref_reader)
        side = self.spec.image_size
        refs = np.empty((len(ref_frames), side, side, 3), dtype=np.uint8)
        for k, f in enumerate(ref_frames):
            refs[k] = ref_reader.frame(int(f), ref_size)
        sample: Sample = {
            "target": reader.frame(centre, size),
            "fg_mask": reader.mask(centre, size),
            "ref_frames": refs,
        }
        if self.spec.background == "remove":
            masks = np.empty((len(ref_frames), side, side), dtype=np.uint8)
            for k, f in enumerate(ref_frames):
                masks[k] = ref_reader.mask(int(f), ref_size)
            sample["ref_masks"] = masks
        return sample

    def _decode_size(self, reader: ClipReader) -> int | None:
        """The size to pass to `ClipReader.frame` (None: the cache's own size)."""
        if self.spec.image_size > reader.size:
            raise ValueError(
                f"image_size={self.spec.image_size} is larger than the cache's {reader.size}² "
                f"crops ({reader.path}); use image_size <= {reader.size} or rebuild the cache "
                f"at a larger size"
            )
        return None if self.spec.image_size == reader.size else self.spec.image_size

    # -- pickling (spawned workers) ---------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = None
        state["_rng"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._readers = _ReaderPool(self.cache, self.max_open_clips)


class EpochSampler(DistributedSampler[int]):
    """The training sampler: a seeded shuffle per epoch that tells each item its epoch.

    It yields `epoch · len(dataset) + index`, which `TalkingFaceDataset` (in training) decodes,
    so an item's random frame and references depend on `(seed, epoch, index)` only. It is a
    `DistributedSampler` (one replica by default), so Lightning keeps it under DDP, where the
    DataModule builds it with the trainer's rank and world size, and calls `set_epoch` on it.
    """

    def __init__(
        self, dataset: TalkingFaceDataset, num_replicas: int = 1, rank: int = 0, seed: int = 0
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * self.size
        return (offset + index for index in super().__iter__())


def _labels(record: ClipRecord) -> tuple[int, int]:
    """(emotion index, level index) of a clip; `ValueError` for labels outside MEAD's."""
    if record.emotion not in EMOTIONS or record.level not in LEVELS:
        raise ValueError(
            f"clip {record.clip}: emotion {record.emotion!r} / level {record.level} are not "
            f"MEAD labels ({', '.join(EMOTIONS)}; levels {LEVELS}); fix the manifest"
        )
    return EMOTIONS.index(record.emotion), record.level - 1


def _other_clips_by_speaker(records: Sequence[ClipRecord]) -> dict[str, dict[str, list[str]]]:
    """speaker → clip → the speaker's other clips (for "random" references)."""
    by_speaker: dict[str, list[str]] = {}
    for record in records:
        by_speaker.setdefault(record.speaker, []).append(record.clip)
    return {
        speaker: {clip: [c for c in clips if c != clip] for clip in clips}
        for speaker, clips in by_speaker.items()
    }


def _pick(
    candidates: np.ndarray, k: int, rng: np.random.Generator | None, jitter: bool = False
) -> np.ndarray:
    """K entries of `candidates`: random (distinct when possible) or evenly spaced.

    With `rng` None: the middles of K equal bins of `candidates` (deterministic). With `jitter`:
    one random entry of each of the K bins (used on candidates sorted by mouth opening, so the
    references span its quantiles). Otherwise: K random entries, without replacement when there
    are at least K.
    """
    n = len(candidates)
    if rng is None or jitter:
        offset = 0.5 if rng is None else rng.random(k)
        positions = np.floor((np.arange(k) + offset) * n / k).astype(np.int64)
        return candidates[np.minimum(positions, n - 1)].astype(np.int64)
    return rng.choice(candidates, size=k, replace=n < k).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Collation: items → the batch contract
# --------------------------------------------------------------------------------------------

IMAGE_KEYS: tuple[str, ...] = ("target", "fg_mask", "ref_frames", "ref_masks")
"""Item keys holding uint8 channel-last images (converted by `Collate`)."""


@dataclass(frozen=True)
class Collate:
    """Collate items of `TalkingFaceDataset` into a `pmfs.batch.Batch`.

    Images travel through the dataset as the uint8 arrays the decoder made; here they are stacked
    channel-first and converted to float32 [0, 1] in one pass per key (in a worker, straight into
    shared memory), and with `background="remove"` composited onto white:
    `image · mask + 1 · (1 − mask)`. Everything else goes through `default_collate`.

    With `float_images=False` the images stay uint8 (`target` (B, 3, H, W), `fg_mask`
    (B, 1, H, W), `ref_frames` (B, K, 3, H, W), plus `ref_masks` (B, K, 1, H, W) for background
    removal): 4× less memory to move between processes; `images_to_float` then makes the batch
    contract on the device (`TalkingFaceDataModule(images_on_device=True)` does it in
    `on_after_batch_transfer`).

    Args:
        background: "keep" or "remove" (the dataset's `SampleSpec.background`).
        float_images: convert here (the batch contract) or leave uint8 for the device.
    """

    background: Background = "keep"
    float_images: bool = True

    def __call__(self, items: Sequence[Sample]) -> Batch:
        rest = [{k: v for k, v in item.items() if k not in IMAGE_KEYS} for item in items]
        batch: dict[str, Any] = default_collate(rest)
        if "target" not in items[0]:  # landmark-only
            return cast(Batch, batch)
        keys: tuple[str, ...] = ("target", "fg_mask", "ref_frames")
        keys += ("ref_masks",) if self.background == "remove" else ()
        for key in keys:
            images = [  # masks get a channel axis: (..., H, W) → (..., H, W, 1)
                item[key] if key in ("target", "ref_frames") else item[key][..., None]
                for item in items
            ]
            batch[key] = _stack_channel_first(images, self.float_images)  # (B, [K,] C, H, W)
        if self.float_images and self.background == "remove":
            _fill_white(batch["target"], batch["fg_mask"])
            _fill_white(batch["ref_frames"], batch.pop("ref_masks"))
        return cast(Batch, batch)


def images_to_float(batch: Batch, background: Background) -> Batch:
    """Finish a `Collate(float_images=False)` batch on its device: uint8 → float32 [0, 1].

    A batch that is landmark-only or already float passes through unchanged.
    """
    target = batch.get("target")
    if target is None or target.dtype != torch.uint8:
        return batch
    for key in ("target", "fg_mask", "ref_frames"):
        batch[key] = batch[key].to(torch.float32).mul_(1.0 / 255.0)
    ref_masks = cast(dict[str, torch.Tensor], batch).pop("ref_masks", None)
    if background == "remove" and ref_masks is not None:
        _fill_white(batch["target"], batch["fg_mask"])
        _fill_white(batch["ref_frames"], ref_masks.to(torch.float32).mul_(1.0 / 255.0))
    return batch


def _stack_channel_first(images: Sequence[np.ndarray], to_float: bool) -> torch.Tensor:
    """Stack uint8 (..., H, W, C) arrays → (B, ..., C, H, W): float32 in [0, 1], or uint8.

    In a DataLoader worker the result is allocated in shared memory (as `default_collate` does),
    so sending it to the main process copies nothing.
    """
    stacked = torch.from_numpy(np.stack(images))  # (B, ..., H, W, C) uint8
    channel_first = stacked.movedim(-1, -3)  # (B, ..., C, H, W), a view
    out = _empty(tuple(channel_first.shape), torch.float32 if to_float else torch.uint8)
    out.copy_(channel_first)
    return out.mul_(1.0 / 255.0) if to_float else out


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor, in shared memory when inside a DataLoader worker."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(nbytes)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def _fill_white(images: torch.Tensor, masks: torch.Tensor) -> None:
    """In place: images · masks + (1 − masks) = 1 − masks · (1 − images) (masks broadcast on C)."""
    images.sub_(1.0).mul_(masks).add_(1.0)
