"""TalkingFaceDataModule: the batch contract in every mode, splits, reproducibility, DDP."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import DistributedSampler

from data_modules import TalkingFaceDataModule
from pmfs.audio import mel_window
from pmfs.batch import EMOTIONS, Batch
from pmfs.data.cache import Cache, CacheNotFoundError, ClipReader
from pmfs.data.cache_writer import CacheWriter, ClipData
from pmfs.distributed import ReleaseProcessGroup
from pmfs.landmarks import mouth_opening, pixels_to_normalized

SIZE = 64  # cache crops
IMAGE = 32  # requested image size (exercises resize-on-load)
FRAMES = 30
GAP = 6
K = 3
T = 5
BATCH = 4


# --------------------------------------------------------------------------------------------
# Generated caches
# --------------------------------------------------------------------------------------------


def _clip_data(rng: np.random.Generator, n: int, size: int) -> ClipData:
    """Random but structurally valid clip: smooth frames, soft elliptic masks, unique landmarks."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    colour = rng.uniform(0, 255, 3)
    frames = np.stack(
        [
            np.clip(
                colour * (0.3 + 0.7 * (xx[..., None] + 0.5 * yy[..., None] + i / n) % 1), 0, 255
            )
            for i in range(n)
        ]
    ).astype(np.uint8)
    radius = np.sqrt((xx - 0.5) ** 2 / 0.09 + (yy - 0.55) ** 2 / 0.16)
    mask = (np.clip((1.1 - radius) * 5, 0, 1) * 255).astype(np.uint8)  # soft edge, 0 outside
    base = rng.uniform(0.2, 0.8, (68, 2)) * (size - 1)
    landmarks = base + rng.normal(0, 1.5, (n, 68, 2))  # every frame different
    mel_columns = int(np.ceil(n * 3.2))
    return ClipData(
        frames=frames,
        landmarks=np.clip(landmarks, 0, size - 1).astype(np.float32),
        fg_mask=np.repeat(mask[None], n, axis=0),
        audio=(rng.standard_normal(640 * n) * 0.1).astype(np.float32),
        mel=rng.uniform(-4, 4, (80, mel_columns)).astype(np.float32),
        meta={"fps": 25, "size": size},
    )


def write_cache(
    root: Path,
    dataset: str,
    speakers: Sequence[str],
    clips_per_speaker: int,
    frames: int = FRAMES,
    size: int = SIZE,
    extra: dict | None = None,
) -> Path:
    """A small cache of random clips (labels cycle through MEAD's emotions and levels)."""
    rng = np.random.default_rng(len(speakers) * 100 + clips_per_speaker)
    with CacheWriter(root, dataset, {"size": size}, extra=extra) as writer:
        for speaker in speakers:
            for j in range(clips_per_speaker):
                emotion = EMOTIONS[j % len(EMOTIONS)]
                level = 1 if emotion == "neutral" else 1 + j % 3
                record = writer.record(speaker, emotion, level, f"{speaker}_{emotion}_{j:03d}")
                writer.write_clip(record, _clip_data(rng, frames + j, size))
    return root


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    return write_cache(
        root, "synthetic", ["S01", "S02", "S03"], 4, extra={"test_speakers": ["S03"]}
    )


def _module(root: Path, **kwargs: object) -> TalkingFaceDataModule:
    defaults: dict[str, object] = {
        "dataset": "synthetic",
        "window": T,
        "image_size": IMAGE,
        "num_references": K,
        "reference_gap": GAP,
        "batch_size": BATCH,
        "num_workers": 0,
        "samples_per_clip": 3,
        "val_fraction": 0.25,
    }
    defaults.update(kwargs)
    return TalkingFaceDataModule(str(root), **defaults)  # type: ignore[arg-type]


def _first(loader: torch.utils.data.DataLoader) -> Batch:
    batch: Batch = next(iter(loader))
    return batch


# --------------------------------------------------------------------------------------------
# Checks against the cache (an independent reading of the same files)
# --------------------------------------------------------------------------------------------


def _reader(cache: Cache, clip: str) -> ClipReader:
    return cache.open(clip)


def _image(reader: ClipReader, i: int, remove: bool) -> torch.Tensor:
    image = torch.from_numpy(np.array(reader.frame(i, IMAGE))).permute(2, 0, 1).float() / 255
    if remove:
        mask = torch.from_numpy(np.array(reader.mask(i, IMAGE))).float()[None] / 255
        image = image * mask + (1 - mask)
    return image


def _frame_of(reader: ClipReader, landmarks: torch.Tensor) -> int:
    """The frame of `reader` whose normalized landmarks are `landmarks` (68, 2)."""
    table = torch.from_numpy(pixels_to_normalized(reader.landmarks, reader.size))
    distance = (table - landmarks).abs().amax(dim=(1, 2))
    index = int(distance.argmin())
    assert float(distance[index]) < 1e-6, "reference landmarks match no frame of the clip"
    return index


def _check_contract(batch: Batch, landmarks_only: bool) -> None:
    b = len(batch["clip"])
    assert b == BATCH
    expected = {
        "mel": ((b, T, 80, 16), torch.float32),
        "landmarks": ((b, T, 68, 2), torch.float32),
        "ref_landmarks": ((b, K, 68, 2), torch.float32),
        "emotion": ((b,), torch.int64),
        "level": ((b,), torch.int64),
        "frame_index": ((b,), torch.int64),
    }
    if not landmarks_only:
        expected["target"] = ((b, 3, IMAGE, IMAGE), torch.float32)
        expected["fg_mask"] = ((b, 1, IMAGE, IMAGE), torch.float32)
        expected["ref_frames"] = ((b, K, 3, IMAGE, IMAGE), torch.float32)
    assert set(batch) == {*expected, "speaker", "clip"}
    for key, (shape, dtype) in expected.items():
        value = batch[key]  # type: ignore[literal-required]
        assert tuple(value.shape) == shape and value.dtype == dtype, key
        assert torch.isfinite(value).all(), key
    assert all(isinstance(s, str) for s in batch["speaker"] + batch["clip"])
    assert batch["mel"].abs().max() <= 4.0
    assert batch["landmarks"].abs().max() <= 1.0 and batch["ref_landmarks"].abs().max() <= 1.0
    assert ((batch["level"] >= 0) & (batch["level"] <= 2)).all()
    assert ((batch["emotion"] >= 0) & (batch["emotion"] < len(EMOTIONS))).all()
    for key in () if landmarks_only else ("target", "fg_mask", "ref_frames"):
        value = batch[key]  # type: ignore[literal-required]
        assert value.min() >= 0.0 and value.max() <= 1.0, key


def _check_sample(batch: Batch, i: int, cache: Cache, landmarks_only: bool, remove: bool) -> int:
    """Check sample i against the cache; returns its clip's frame count."""
    record = next(r for r in cache.clips() if r.clip == batch["clip"][i])
    reader = _reader(cache, record.clip)
    n, centre = reader.num_frames, int(batch["frame_index"][i])
    assert batch["speaker"][i] == record.speaker and 0 <= centre < n
    assert int(batch["emotion"][i]) == EMOTIONS.index(record.emotion)
    assert int(batch["level"][i]) == record.level - 1
    window = np.clip(np.arange(centre - T // 2, centre + T // 2 + 1), 0, n - 1)  # clamped
    expected_mel = np.stack([mel_window(reader.mel, int(f)) for f in window])
    np.testing.assert_array_equal(batch["mel"][i].numpy(), expected_mel)
    expected_lm = pixels_to_normalized(reader.landmarks[window], SIZE)
    np.testing.assert_allclose(batch["landmarks"][i].numpy(), expected_lm, atol=1e-6)
    if not landmarks_only:
        torch.testing.assert_close(batch["target"][i], _image(reader, centre, remove))
        mask = torch.from_numpy(np.array(reader.mask(centre, IMAGE))).float()[None] / 255
        torch.testing.assert_close(batch["fg_mask"][i], mask)
        if remove:  # white wherever the mask is 0
            assert (batch["target"][i][:, mask[0] == 0] == 1.0).all()
    return n


def _check_references(batch: Batch, i: int, cache: Cache, source: str, remove: bool) -> None:
    """Where each reference comes from, per `reference_source`."""
    clip, centre = batch["clip"][i], int(batch["frame_index"][i])
    speaker_clips = [r.clip for r in cache.clips() if r.speaker == batch["speaker"][i]]
    for k in range(K):
        ref_lm = batch["ref_landmarks"][i, k]
        if source == "random":
            owners = [c for c in speaker_clips if c != clip]
            matches = [c for c in owners if _matches(cache, c, ref_lm)]
            assert len(matches) == 1, "a random reference comes from another clip of the speaker"
            reader = _reader(cache, matches[0])
        else:
            reader = _reader(cache, clip)
        index = _frame_of(reader, ref_lm)
        if source != "random":
            assert abs(index - centre) >= GAP
        if "ref_frames" in batch:
            torch.testing.assert_close(batch["ref_frames"][i, k], _image(reader, index, remove))


def _matches(cache: Cache, clip: str, landmarks: torch.Tensor) -> bool:
    reader = _reader(cache, clip)
    table = torch.from_numpy(pixels_to_normalized(reader.landmarks, reader.size))
    return bool(((table - landmarks).abs().amax(dim=(1, 2)) < 1e-6).any())


# --------------------------------------------------------------------------------------------
# The batch contract in every mode
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("background", ["keep", "remove"])
@pytest.mark.parametrize("source", ["driven", "random", "spread"])
def test_batch_contract(synth_cache: Path, source: str, background: str) -> None:
    dm = _module(synth_cache, reference_source=source, background=background)
    dm.setup("fit")
    cache = Cache(synth_cache)
    remove = background == "remove"
    for batch in (_first(dm.train_dataloader()), _first(dm.val_dataloader())):
        _check_contract(batch, landmarks_only=False)
        for i in range(BATCH):
            _check_sample(batch, i, cache, landmarks_only=False, remove=remove)
            _check_references(batch, i, cache, source, remove)
    if not remove:  # some real background survives in "keep"
        assert (batch["target"] < 0.99).float().mean() > 0.5


def test_spread_references_span_mouth_opening(synth_cache: Path) -> None:
    dm = _module(synth_cache, reference_source="spread", landmarks_only=True, batch_size=8)
    dm.setup("fit")
    cache = Cache(synth_cache)
    batch = _first(dm.val_dataloader())
    for i in range(8):
        reader = _reader(cache, batch["clip"][i])
        centre = int(batch["frame_index"][i])
        frames = [_frame_of(reader, batch["ref_landmarks"][i, k]) for k in range(K)]
        candidates = [f for f in range(reader.num_frames) if abs(f - centre) >= GAP]
        opening = mouth_opening(reader.landmarks)
        chosen = opening[frames]
        assert np.all(np.diff(chosen) > 0), "references ordered by mouth opening, distinct"
        assert chosen[0] <= np.quantile(opening[candidates], 0.25)
        assert chosen[-1] >= np.quantile(opening[candidates], 0.75)


def test_landmarks_only_reads_no_images(synth_cache: Path, tmp_path: Path) -> None:
    """With every image pack deleted from a copy, landmark-only batches still load in full."""
    copy = Path(shutil.copytree(synth_cache, tmp_path / "no_images"))
    packs = list(copy.glob("clips/*/*/*.pack"))
    assert len(packs) == 2 * 12
    for pack in packs:
        pack.unlink()
    for source in ("driven", "random", "spread"):
        dm = _module(copy, landmarks_only=True, reference_source=source)
        dm.setup("fit")
        cache = Cache(copy)
        for batch in (_first(dm.train_dataloader()), _first(dm.val_dataloader())):
            _check_contract(batch, landmarks_only=True)
            for i in range(BATCH):
                _check_sample(batch, i, cache, landmarks_only=True, remove=False)
                _check_references(batch, i, cache, source, remove=False)
    with_images = _module(copy)
    with_images.setup("fit")
    with pytest.raises(FileNotFoundError, match=r"frames\.pack|masks\.pack"):
        _first(with_images.train_dataloader())


def test_image_size_larger_than_cache_is_an_error(synth_cache: Path) -> None:
    with pytest.raises(ValueError, match=r"image_size=128 is larger"):
        _module(synth_cache, image_size=SIZE * 2).setup("fit")
    _module(synth_cache, image_size=SIZE * 2, landmarks_only=True).setup("fit")  # no images


def test_short_clips_and_full_size(tmp_path: Path) -> None:
    """A clip shorter than the window and the gap still gives a full sample (clamped window)."""
    root = write_cache(
        tmp_path, "synthetic", ["S01", "S02"], 1, frames=3, extra={"test_speakers": ["S02"]}
    )
    dm = _module(
        root, image_size=SIZE, test_samples_per_clip=None, batch_size=3, reference_source="random"
    )
    dm.setup("test")
    batch = _first(dm.test_dataloader())
    assert batch["frame_index"].tolist() == [0, 1, 2]  # every frame of the clip
    assert batch["target"].shape == (3, 3, SIZE, SIZE)
    np.testing.assert_array_equal(batch["landmarks"][0, 0], batch["landmarks"][0, 2])  # clamped
    assert batch["ref_frames"].shape == (3, K, 3, SIZE, SIZE)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mead_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speakers = ["M003", "M012", "M030", "W015", "W024", "W033"]
    return write_cache(tmp_path_factory.mktemp("mead"), "mead", speakers, 5, frames=12, size=16)


def test_mead_splits(mead_cache: Path) -> None:
    dm = _module(mead_cache, dataset="mead", image_size=16, val_fraction=0.1)
    dm.setup()
    assert dm.splits is not None
    train, val, test = dm.splits.train, dm.splits.val, dm.splits.test
    assert {r.speaker for r in test} == {"M003", "M030", "W024"}
    assert {r.speaker for r in train} == {"M012", "W015", "W033"}
    assert {r.speaker for r in val} <= {r.speaker for r in train}  # held-out clips of train spk
    assert not {r.clip for r in train} & {r.clip for r in val}
    assert len(val) == 2 and len(train) == 13 and len(test) == 15  # round(0.1 * 15)
    again = _module(mead_cache, dataset="mead", image_size=16, val_fraction=0.1)
    again.setup()
    assert again.splits is not None and again.splits.val == val  # deterministic for the seed
    seeds = set()
    for seed in range(6):
        other = _module(mead_cache, dataset="mead", image_size=16, val_fraction=0.1, seed=seed)
        other.setup()
        assert other.splits is not None
        seeds.add(tuple(r.clip for r in other.splits.val))
    assert len(seeds) > 1
    custom = _module(mead_cache, dataset="mead", image_size=16, test_speakers=["W033"])
    custom.setup()
    assert custom.splits is not None
    assert {r.speaker for r in custom.splits.test} == {"W033"}


def test_synthetic_holds_out_its_speakers(synth_cache: Path) -> None:
    dm = _module(synth_cache)
    dm.setup()
    assert dm.splits is not None
    assert {r.speaker for r in dm.splits.test} == {"S03"}
    assert {r.speaker for r in dm.splits.train} == {"S01", "S02"}
    assert len(dm.splits.val) == 2  # round(0.25 * 8), one per training speaker
    assert {r.speaker for r in dm.splits.val} == {"S01", "S02"}
    assert len(dm.train_set or []) == 6 * 3  # samples_per_clip items per clip


def test_cremad_is_test_only(tmp_path: Path) -> None:
    root = write_cache(tmp_path, "cremad", ["1001", "1002"], 2, frames=8, size=16)
    dm = _module(root, dataset="cremad", image_size=16)
    with pytest.raises(ValueError, match="CREMA-D is test-only"):
        dm.train_dataloader()
    with pytest.raises(ValueError, match="CREMA-D is test-only"):
        dm.val_dataloader()
    samples = [pair for batch in dm.test_dataloader() for pair in _identity(batch)]
    assert len(set(samples)) == 8 + 9 + 8 + 9  # test_samples_per_clip=None: every frame
    assert {r.speaker for r in dm.splits.test} == {"1001", "1002"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("dataset", "command"),
    [
        ("synthetic", "pmfs data synth --out"),
        ("mead", "pmfs data preprocess mead"),
        ("cremad", "pmfs data preprocess cremad"),
    ],
)
def test_missing_cache_names_the_command(tmp_path: Path, dataset: str, command: str) -> None:
    dm = _module(tmp_path / "nothing", dataset=dataset)
    with pytest.raises(CacheNotFoundError, match=command) as info:
        dm.setup("fit")
    assert str(tmp_path / "nothing") in str(info.value)


def test_wrong_dataset_and_bad_arguments(synth_cache: Path) -> None:
    with pytest.raises(ValueError, match="holds a 'synthetic' cache but dataset='mead'"):
        _module(synth_cache, dataset="mead").setup("fit")
    with pytest.raises(ValueError, match="odd"):
        _module(synth_cache, window=4)
    with pytest.raises(ValueError, match="val_fraction"):
        _module(synth_cache, val_fraction=1.0)


def test_configured_from_yaml(synth_cache: Path) -> None:
    """Typed constructor arguments: jsonargparse (LightningCLI) builds and checks it."""
    parser = ArgumentParser()
    parser.add_class_arguments(TalkingFaceDataModule, "data")
    config = parser.parse_string(
        f"data: {{root: {synth_cache}, dataset: synthetic, reference_source: spread, "
        f"background: remove, test_speakers: [S03], num_workers: 0}}"
    )
    dm = parser.instantiate(config).data
    assert isinstance(dm, TalkingFaceDataModule)
    assert dm.spec.reference_source == "spread" and dm.spec.background == "remove"
    with pytest.raises(SystemExit):  # a wrong literal fails at parse time
        parser.parse_string(f"data: {{root: {synth_cache}, reference_source: nearest}}")


# --------------------------------------------------------------------------------------------
# Reproducibility and DDP
# --------------------------------------------------------------------------------------------


def _identity(batch: Batch) -> list[tuple[str, int]]:
    return list(zip(batch["clip"], batch["frame_index"].tolist(), strict=True))


def _batches(loader: torch.utils.data.DataLoader, n: int) -> Iterator[Batch]:
    for i, batch in enumerate(loader):
        if i == n:
            break
        yield batch


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_batches(synth_cache: Path, workers: int) -> None:
    def first_batches(seed: int) -> list[Batch]:
        dm = _module(synth_cache, seed=seed, num_workers=workers, landmarks_only=workers > 0)
        dm.setup("fit")
        return list(_batches(dm.train_dataloader(), 2))

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    for x, y in zip(a, b, strict=True):
        assert _identity(x) == _identity(y)
        torch.testing.assert_close(x["ref_landmarks"], y["ref_landmarks"], rtol=0, atol=0)
    assert [_identity(x) for x in a] != [_identity(x) for x in c]


def test_epochs_draw_new_frames(synth_cache: Path) -> None:
    dm = _module(synth_cache, landmarks_only=True, batch_size=18)
    dm.setup("fit")
    loader = dm.train_dataloader()
    epochs = []
    for epoch in (0, 1, 0):
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]  # as Lightning does
        epochs.append(sorted(_identity(next(iter(loader)))))
    assert epochs[0] != epochs[1]
    assert epochs[2] == epochs[0]  # an epoch's items depend on (seed, epoch, index) only


def test_items_do_not_depend_on_the_number_of_workers(synth_cache: Path) -> None:
    identities = []
    for workers in (0, 2):
        dm = _module(synth_cache, landmarks_only=True, batch_size=6, num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)  # type: ignore[attr-defined]
        identities.append([_identity(b) for b in _batches(loader, 2)])
    assert identities[0] == identities[1]


def test_validation_is_deterministic(synth_cache: Path) -> None:
    batches = []
    for _ in range(2):
        dm = _module(synth_cache, reference_source="random", landmarks_only=True)
        dm.setup("fit")
        loader = dm.val_dataloader()
        batches += [next(iter(loader)), next(iter(loader))]
    for batch in batches[1:]:
        assert _identity(batch) == _identity(batches[0])
        torch.testing.assert_close(batch["ref_landmarks"], batches[0]["ref_landmarks"])


def test_distributed_sampler_shards_disjointly(synth_cache: Path) -> None:
    """Lightning's own loader re-instantiation with a DistributedSampler per rank of 2."""
    seen: list[set[tuple[str, int]]] = []
    for rank in range(2):
        dm = _module(synth_cache, landmarks_only=True, batch_size=3)
        dm.setup("fit")
        loader = dm.train_dataloader()
        sampler: DistributedSampler = DistributedSampler(
            loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0
        )
        loader = _update_dataloader(loader, sampler)
        seen.append({pair for batch in loader for pair in _identity(batch)})
    assert len(seen[0]) == len(seen[1]) == 9  # 18 items, 3 per clip, split in two
    assert not seen[0] & seen[1]
    clips = [clip for clip, _ in seen[0] | seen[1]]
    assert sorted(set(clips)) == sorted(r.clip for r in dm.splits.train)  # type: ignore[union-attr]
    assert all(clips.count(c) == 3 for c in set(clips))


class _Recorder(LightningModule):
    """Records the (clip, frame) of every training sample its rank sees."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[str, int]] = []

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        self.seen += _identity(batch)
        return (self.weight * batch["landmarks"].mean()).sum()

    def on_train_end(self) -> None:
        sampler = self.trainer.train_dataloader.sampler  # type: ignore[union-attr]
        rank = sampler.rank
        path = Path(self.out) / f"rank{self.global_rank}.json"
        path.write_text(json.dumps({"rank": rank, "seen": self.seen}))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_ddp_trainer_ranks_see_disjoint_samples(synth_cache: Path, tmp_path: Path) -> None:
    """The real Trainer, `ddp_spawn` on 2 CPU processes: Lightning's sampler, our dataset."""
    dm = _module(synth_cache, landmarks_only=True, batch_size=3)
    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ReleaseProcessGroup()],  # what `pmfs fit` adds: no abort at the ranks' exit
    )
    trainer.fit(_Recorder(str(tmp_path)), dm)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1]  # each rank's EpochSampler has its rank
    seen = [{tuple(pair) for pair in r["seen"]} for r in ranks]
    assert len(seen[0]) == len(seen[1]) == 9 and not seen[0] & seen[1]


def test_reads_the_real_synthetic_cache(tmp_path: Path) -> None:
    """End to end with `pmfs data synth`'s generator: its held-out speakers, real masks."""
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

    config = SynthConfig(
        out=tmp_path / "synth",
        speakers=3,
        clips=2,
        size=64,
        min_seconds=1.0,
        max_seconds=1.2,
        workers=1,
        progress=False,
        test_speakers=1,
    )
    build_synthetic_dataset(config)
    cache = Cache(tmp_path / "synth")
    dm = _module(tmp_path / "synth", image_size=SIZE, background="remove", val_fraction=0.25)
    dm.setup()
    assert dm.splits is not None
    assert {r.speaker for r in dm.splits.test} == set(cache.extra["test_speakers"])
    assert not {r.speaker for r in dm.splits.train} & set(cache.extra["test_speakers"])
    batch = _first(dm.train_dataloader())
    for key, shape in {
        "target": (BATCH, 3, SIZE, SIZE),
        "ref_frames": (BATCH, K, 3, SIZE, SIZE),
    }.items():
        assert tuple(batch[key].shape) == shape  # type: ignore[literal-required]
    background = batch["fg_mask"] == 0  # (B, 1, H, W)
    assert background.any() and (~background).any()
    assert (batch["target"].masked_select(background) == 1.0).all()  # white outside the person
    assert batch["landmarks"].abs().max() <= 1.0


@pytest.mark.parametrize("background", ["keep", "remove"])
def test_images_on_device_gives_the_same_batch(synth_cache: Path, background: str) -> None:
    """uint8 from the loader, float32 after `on_after_batch_transfer`: the same batch."""
    floats = _module(synth_cache, background=background)
    uint8 = _module(synth_cache, background=background, images_on_device=True)
    for dm in (floats, uint8):
        dm.setup("fit")
    expected = _first(floats.val_dataloader())
    raw = _first(uint8.val_dataloader())
    assert raw["target"].dtype == torch.uint8 and raw["ref_frames"].dtype == torch.uint8
    assert ("ref_masks" in raw) == (background == "remove")
    batch = uint8.on_after_batch_transfer(raw, 0)
    assert set(batch) == set(expected)
    for key in ("target", "fg_mask", "ref_frames", "landmarks", "mel"):
        torch.testing.assert_close(batch[key], expected[key])
