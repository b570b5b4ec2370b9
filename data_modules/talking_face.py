"""`TalkingFaceDataModule`: MEAD, CREMA-D, the synthetic set or any footage from a PMFS cache.

Configured from LightningCLI YAML::

    data:
      class_path: data_modules.TalkingFaceDataModule
      init_args: {root: data/synthetic, dataset: synthetic, batch_size: 8}

Splits: MEAD's test speakers (M003, M030, W024 unless `test_speakers` says otherwise) are never
trained on; validation is a seeded held-out share of the training speakers' clips; CREMA-D is
test-only (zero-shot); the synthetic set holds out the speakers its cache names in
`extra["test_speakers"]`; a videos cache (`pmfs data preprocess videos`) uses the split recorded
in it: held-out speakers, or with `--split-by time` the last part of every video
(`pmfs.data.splits`). Its clips have no emotion labels and load as neutral, level 1. The
training loader's `EpochSampler` is a `DistributedSampler` built with
the trainer's rank and world size (items depend on seed, epoch and index only, so a resumed run
continues with the same batches); on the evaluation loaders Lightning puts its own
`DistributedSampler` under DDP. Items are dense indices, so ranks get disjoint items.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from pmfs.batch import Background, Batch, DatasetName
from pmfs.data.cache import Cache, ClipRecord
from pmfs.data.collate import Collate, images_to_float
from pmfs.data.dataset import EpochSampler, SampleSpec, TalkingFaceDataset
from pmfs.data.references import ReferenceSource
from pmfs.data.splits import (
    Splits,
    check_dataset,
    check_image_size,
    dataset_splits,
    open_dataset_cache,
)

log = logging.getLogger(__name__)


class TalkingFaceDataModule(LightningDataModule):
    """Train/val/test loaders of the batch contract (`pmfs.batch.Batch`) over one cache.

    Args:
        root: the cache folder (holding cache.json).
        dataset: which dataset the cache holds; must match its cache.json.
        window: T, odd number of frames centred on the target frame (clamped at clip ends).
        image_size: side of the images (≤ the cache's crop size; smaller is resized on load).
        num_references: K reference frames per sample.
        reference_source: "driven" (same clip, ≥ `reference_gap` away), "random" (another clip
            of the speaker) or "spread" (same clip, spread over mouth opening).
        reference_gap: minimum frame distance of same-clip references from the target.
        background: "keep" or "remove" (frames × mask, white outside).
        landmarks_only: read no images (stages 1–2): no target, fg_mask, ref_frames keys.
        batch_size: samples per batch (per process under DDP).
        num_workers: DataLoader worker processes.
        test_speakers: held-out speakers; None → MEAD M003, M030, W024 / synthetic and videos:
            the split the cache records (`extra`; a videos cache may be split by time instead);
            ignored for CREMA-D (all of it is test).
        val_fraction: share of the training speakers' clips held out for validation.
        seed: seed of the split, of the sampling and of the loaders' generators.
        samples_per_clip: training items per clip per epoch (one random frame per stratum).
        val_samples_per_clip: validation items per clip (deterministic stratum middles).
        test_samples_per_clip: test items per clip; None → every frame of every test clip.
        max_open_clips: clips kept open per loader process (two file handles each).
        pin_memory: pin batches; None → when CUDA is available.
        persistent_workers: keep workers alive between epochs (when num_workers > 0).
        images_on_device: workers send uint8 images (4× less to move between processes) and
            `on_after_batch_transfer` makes them float32 [0, 1] on the device, so the model
            still sees the batch contract; iterating the loaders yourself then gives uint8
            images (finish them with `pmfs.data.collate.images_to_float`).
    """

    def __init__(
        self,
        root: str,
        dataset: DatasetName = "synthetic",
        window: int = 5,
        image_size: int = 256,
        num_references: int = 3,
        reference_source: ReferenceSource = "driven",
        reference_gap: int = 10,
        background: Background = "keep",
        landmarks_only: bool = False,
        batch_size: int = 8,
        num_workers: int = 2,
        test_speakers: list[str] | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        samples_per_clip: int = 8,
        val_samples_per_clip: int = 4,
        test_samples_per_clip: int | None = None,
        max_open_clips: int = 256,
        pin_memory: bool | None = None,
        persistent_workers: bool = False,
        images_on_device: bool = False,
    ) -> None:
        super().__init__()
        check_dataset(dataset)
        if batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}"
            )
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.root = root
        self.dataset = dataset
        self.spec = SampleSpec(
            window=window,
            image_size=image_size,
            num_references=num_references,
            reference_source=reference_source,
            reference_gap=reference_gap,
            background=background,
            landmarks_only=landmarks_only,
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.test_speakers = test_speakers
        self.val_fraction = val_fraction
        self.seed = seed
        self.samples_per_clip = samples_per_clip
        self.val_samples_per_clip = val_samples_per_clip
        self.test_samples_per_clip = test_samples_per_clip
        self.max_open_clips = max_open_clips
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.images_on_device = images_on_device
        self.cache: Cache | None = None
        self.splits: Splits | None = None
        self.train_set: TalkingFaceDataset | None = None
        self.val_set: TalkingFaceDataset | None = None
        self.test_set: TalkingFaceDataset | None = None

    # -- setup ----------------------------------------------------------------------------------

    def open_cache(self) -> Cache:
        """Open the cache; a missing one names the command that builds it for this dataset."""
        if self.cache is None:
            self.cache = open_dataset_cache(self.root, self.dataset)
        return self.cache

    def setup(self, stage: str | None = None) -> None:
        """Split the clips and build the datasets the stage needs ("fit", "validate", "test")."""
        cache = self.open_cache()
        if self.dataset == "cremad" and stage in ("fit", "validate"):
            raise ValueError(self._empty_message("train" if stage == "fit" else "val"))
        if self.splits is None:
            self.splits = dataset_splits(
                cache, self.dataset, self.test_speakers, self.val_fraction, self.seed, self.root
            )
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset(self.splits.train, "train")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset(self.splits.val, "val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset(self.splits.test, "test")
        if not self.spec.landmarks_only:  # an error before any training starts
            check_image_size(cache, self.spec.image_size, self.root)

    def _dataset(
        self, clips: list[ClipRecord], split: Literal["train", "val", "test"]
    ) -> TalkingFaceDataset:
        assert self.cache is not None and self.splits is not None
        per_clip = {
            "train": self.samples_per_clip,
            "val": self.val_samples_per_clip,
            "test": self.test_samples_per_clip,
        }[split]
        # validation speakers are training speakers: their training clips may give references
        references = self.splits.train + clips if split == "val" else clips
        return TalkingFaceDataset(
            self.cache,
            clips,
            self.spec,
            train=split == "train",
            samples_per_clip=per_clip,
            reference_clips=references,
            seed=self.seed,
            max_open_clips=self.max_open_clips,
        )

    def teardown(self, stage: str | None = None) -> None:
        """Close the clips the main process opened (workers close theirs when they exit)."""
        for dataset in (self.train_set, self.val_set, self.test_set):
            if dataset is not None:
                dataset.close()

    # -- loaders --------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        """Shuffled training loader (Lightning swaps in a `DistributedSampler` under DDP)."""
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        if len(self.train_set) == 0:
            raise ValueError(self._empty_message("train"))
        return self._loader(self.train_set, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Validation loader: held-out clips of the training speakers, deterministic."""
        if self.val_set is None:
            self.setup("validate")
        assert self.val_set is not None
        if self.dataset == "cremad":
            raise ValueError(self._empty_message("val"))
        if len(self.val_set) == 0:
            log.warning(
                "the validation split of %s is empty (val_fraction=%s)",
                self.root,
                self.val_fraction,
            )
        return self._loader(self.val_set, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        """Test loader: every clip of the test speakers (all of CREMA-D), deterministic."""
        if self.test_set is None:
            self.setup("test")
        assert self.test_set is not None
        if len(self.test_set) == 0:
            raise ValueError(self._empty_message("test"))
        return self._loader(self.test_set, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        """The test loader (predictions are made on the test split)."""
        return self.test_dataloader()

    def _loader(self, dataset: TalkingFaceDataset, shuffle: bool, drop_last: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if shuffle:  # training: (seed, epoch, index)-determined items, sharded under DDP
            world, rank = (
                (1, 0)
                if self.trainer is None
                else (
                    self.trainer.world_size,
                    self.trainer.global_rank,
                )
            )
            sampler = EpochSampler(dataset, num_replicas=world, rank=rank, seed=self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=drop_last and len(dataset) >= self.batch_size,
            num_workers=self.num_workers,
            collate_fn=Collate(self.spec.background, float_images=not self.images_on_device),
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            generator=generator,
        )

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """With `images_on_device`: uint8 images → float32 [0, 1] (and white background)."""
        if self.images_on_device:
            return images_to_float(batch, self.spec.background)
        return batch

    def _empty_message(self, split: str) -> str:
        if self.dataset == "cremad":
            return (
                f"CREMA-D is test-only (zero-shot): it has no {split} split. Train on MEAD or "
                f"the synthetic set and run `pmfs test` with data.init_args.dataset=cremad"
            )
        assert self.splits is not None
        return (
            f"the {split} split of the {self.dataset} cache at {self.root} is empty "
            f"({len(self.splits.train)} train / {len(self.splits.val)} val / "
            f"{len(self.splits.test)} test clips); check test_speakers={self.test_speakers} "
            f"and val_fraction={self.val_fraction}"
        )
