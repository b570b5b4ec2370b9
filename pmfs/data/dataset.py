"""Torch datasets over the PMFS cache: T-frame windows, references, background, landmark-only.

One item is one *target frame* of one clip with its T-frame window (DESIGN §2 batch contract):

- the window holds frames `t - T//2 … t + T//2`, **clamped** to the clip (the first/last frame is
  repeated at the clip's ends, and its mel window is the one of that repeated frame), so every
  frame of a clip can be a target;
- landmarks are converted from the cache's crop pixels to [-1, 1] (`pixels_to_normalized`,
  `grid_sample(align_corners=False)` convention), which does not change when images are resized;
- references follow `reference_source` (see `SampleSpec`; chosen by
  `pmfs.data.references.ReferencePicker`), images are float32 in [0, 1] once collated
  (`pmfs.data.collate.Collate`), and with `background="remove"` every image is multiplied by its
  foreground mask and filled with white;
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

The clips of each split come from `pmfs.data.splits.split_clips`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from pmfs.audio import mel_window
from pmfs.batch import EMOTIONS, LEVELS, UNLABELLED, Background
from pmfs.data.cache import Cache, ClipReader, ClipRecord
from pmfs.data.collate import Collate, Sample
from pmfs.data.references import ReferencePicker, ReferenceSource, other_clips_by_speaker
from pmfs.landmarks import mouth_opening, pixels_to_normalized


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
        self._references = ReferencePicker(
            source=spec.reference_source,
            count=spec.num_references,
            gap=spec.reference_gap,
            train=train,
            others=other_clips_by_speaker(reference_clips or self.clips),
        )
        self._readers = _ReaderPool(cache, max_open_clips)
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
        ref_clip, ref_frames = self._references.choose(
            record, reader.num_frames, centre, rng, self._readers
        )
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


def label_indices(clip: str, emotion: str | None, level: int | None) -> tuple[int, int]:
    """(emotion index, level index) of a clip's labels for a batch.

    A clip without labels (emotion and level None: the videos layout) gets `UNLABELLED`'s
    indices, neutral level 1, at load time; the manifest keeps None.

    Raises:
        ValueError: labels outside MEAD's, or only one of the two given.
    """
    if emotion is None and level is None:
        emotion, level = UNLABELLED
    if emotion not in EMOTIONS or level not in LEVELS:
        raise ValueError(
            f"clip {clip}: emotion {emotion!r} / level {level} are not MEAD labels "
            f"({', '.join(EMOTIONS)}; levels {LEVELS}) nor both empty; fix the manifest"
        )
    return EMOTIONS.index(emotion), LEVELS.index(level)


def _labels(record: ClipRecord) -> tuple[int, int]:
    """(emotion index, level index) of a clip (`label_indices`)."""
    return label_indices(record.clip, record.emotion, record.level)
