"""Train / validation / test splits of a cache's clips: by speaker or by time (test), by clip
(validation).

Also the rules that say what a dataset holds out (`resolve_test_speakers`, `resolve_test_clips`)
and how its cache is opened (`open_dataset_cache`), shared by `TalkingFaceDataModule` and
`pmfs evaluate`, so that "test" is the same clips for training and evaluation. A videos cache
records its split in cache.json (`extra.split_by`, written by `pmfs data preprocess videos` or
`pmfs data merge`): held-out speakers (`test_speakers`) or, split by time, the clips of the last
part of every video (`test_clips`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmfs.batch import MEAD_TEST_SPEAKERS
from pmfs.data.cache import Cache, CacheError, CacheNotFoundError, ClipRecord

log = logging.getLogger(__name__)


BUILD_COMMANDS: dict[str, str] = {
    "synthetic": "pmfs data synth --out {root}",
    "mead": "pmfs data preprocess mead --root <MEAD download> --out {root}",
    "cremad": "pmfs data preprocess cremad --root <CREMA-D download> --out {root}",
    "videos": "pmfs data preprocess videos --root <folder of videos> --out {root}",
}


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
    test_clips: Collection[str] | None = None,
) -> Splits:
    """Split clips by speaker or by clip id (test) and by clip (validation), deterministically.

    Test = every clip of `test_speakers` (all clips when `test_speakers` is None: a test-only
    dataset), or, when `test_clips` is given, exactly those clips (a split by time).
    Validation = `round(val_fraction × n)` clips (at least one when `val_fraction > 0`
    and there are two or more) of the n clips left, taken round-robin over the
    speakers from a seeded shuffle and never a speaker's last clip, so every training speaker
    keeps training clips. Train = the rest.

    Args:
        records: usable clips (`Cache.clips()`).
        test_speakers: held-out speakers, or None for "everything is test".
        val_fraction: share of the training speakers' clips held out for validation, in [0, 1).
        seed: seed of the shuffle.
        test_clips: the test clips' ids (overrides `test_speakers`).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(records, key=lambda r: (r.speaker, r.clip))
    if test_clips is not None:
        held = set(test_clips)
        test = [r for r in ordered if r.clip in held]
        pool = [r for r in ordered if r.clip not in held]
    elif test_speakers is None:
        return Splits(train=[], val=[], test=ordered)
    else:
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
# Datasets: their caches and held-out speakers
# --------------------------------------------------------------------------------------------


def check_dataset(dataset: str) -> None:
    """Raise `ValueError` unless `dataset` is one of `BUILD_COMMANDS`'."""
    if dataset not in BUILD_COMMANDS:
        raise ValueError(f"dataset must be one of {sorted(BUILD_COMMANDS)}, got {dataset!r}")


def open_dataset_cache(root: str, dataset: str) -> Cache:
    """Open the cache of `dataset` at `root`; a missing one names the command that builds it.

    Raises:
        CacheNotFoundError: no cache.json at `root`.
        CacheError: shard manifests of a sharded preprocessing run are not merged yet.
        ValueError: the cache holds another dataset.
    """
    parts = sorted(Path(root).glob("manifest.shard-*.csv"))
    if parts:
        raise CacheError(
            f"{root} holds {len(parts)} shard manifest(s) not merged yet ({parts[0].name}, ...): "
            f"once every shard has finished, run `pmfs data merge --out {root}`"
        )
    check_dataset(dataset)
    try:
        cache = Cache(Path(root))
    except CacheNotFoundError as err:
        command = BUILD_COMMANDS[dataset].format(root=root)
        raise CacheNotFoundError(
            f"no {dataset} cache at {root} (cache.json missing); build it with `{command}`"
        ) from err
    if cache.dataset != dataset:
        raise ValueError(
            f"{root} holds a {cache.dataset!r} cache but dataset={dataset!r}; "
            f"set dataset: {cache.dataset} or point root at a {dataset} cache"
        )
    return cache


def resolve_test_speakers(
    cache: Cache, dataset: str, test_speakers: Sequence[str] | None, root: str
) -> list[str] | None:
    """The held-out speakers of a dataset (None: everything is test, CREMA-D).

    Args:
        cache: the dataset's cache (the synthetic set names its test speakers in it).
        dataset: what the cache holds.
        test_speakers: the speakers asked for; None: MEAD's M003, M030, W024 / the synthetic
            or videos cache's `extra["test_speakers"]`; ignored for CREMA-D (all of it is test).
        root: the cache folder, as given (named in the error).
    """
    if dataset == "cremad":
        if test_speakers is not None:
            log.warning("CREMA-D is test-only: test_speakers=%s is ignored", test_speakers)
        return None
    if test_speakers is not None:
        return list(test_speakers)
    if dataset == "mead":
        return list(MEAD_TEST_SPEAKERS)
    speakers = cache.extra.get("test_speakers")
    if dataset == "videos":
        if speakers is None:
            raise CacheError(_no_split(cache, root))
        return [str(s) for s in speakers]  # may be empty: one speaker, nobody held out
    if not speakers:
        raise ValueError(
            f"the synthetic cache at {root} names no test speakers "
            f"(cache.json extra.test_speakers); pass test_speakers: [...]"
        )
    return [str(s) for s in speakers]


def _no_split(cache: Cache, root: str) -> str:
    return (
        f"the videos cache at {root} records no split (cache.json extra.split_by "
        f"{cache.extra.get('split_by')!r} without its list): run `pmfs data merge --out {root}` "
        "after a sharded run, or rerun `pmfs data preprocess videos`"
    )


def resolve_test_clips(
    cache: Cache, dataset: str, test_speakers: Sequence[str] | None, root: str
) -> list[str] | None:
    """The test clips of a videos cache split by time (`extra.test_clips`), else None.

    `test_speakers` given explicitly wins over a split by time (a split by speaker then).
    """
    if dataset != "videos" or test_speakers is not None:
        return None
    if cache.extra.get("split_by") != "time":
        return None
    clips = cache.extra.get("test_clips")
    if clips is None:
        raise CacheError(_no_split(cache, root))
    return [str(c) for c in clips]


def dataset_splits(
    cache: Cache,
    dataset: str,
    test_speakers: Sequence[str] | None,
    val_fraction: float,
    seed: int,
    root: str,
) -> Splits:
    """The splits of a dataset's cache (`resolve_test_speakers`, `split_clips`), logged.

    Args:
        cache: the dataset's cache (`open_dataset_cache`).
        dataset: what the cache holds.
        test_speakers: held-out speakers asked for (None: the dataset's own).
        val_fraction: share of the training speakers' clips held out for validation.
        seed: seed of the split.
        root: the cache folder, as given (named in messages).
    """
    test_clips = resolve_test_clips(cache, dataset, test_speakers, root)
    if test_clips is not None:
        splits = split_clips(cache.clips(), None, val_fraction, seed, test_clips=test_clips)
        log.info(
            "%s splits by time: %d train / %d val / %d test clips (the last part of each video)",
            dataset,
            len(splits.train),
            len(splits.val),
            len(splits.test),
        )
        return splits
    held_out = resolve_test_speakers(cache, dataset, test_speakers, root)
    splits = split_clips(cache.clips(), held_out, val_fraction, seed)
    missing = sorted(set(held_out or ()) - {r.speaker for r in cache.clips()})
    if missing:
        log.warning("test speakers %s are not in the cache at %s", missing, root)
    log.info(
        "%s splits: %d train / %d val / %d test clips (test speakers: %s)",
        dataset,
        len(splits.train),
        len(splits.val),
        len(splits.test),
        "all" if held_out is None else ", ".join(held_out) or "none",
    )
    return splits


def check_image_size(cache: Cache, image_size: int, root: str) -> None:
    """`image_size` larger than the cache's crops is an error before any model runs."""
    clips = cache.clips()
    if clips:
        reader = cache.open(clips[0].clip)
        if image_size > reader.size:
            raise ValueError(
                f"image_size={image_size} is larger than the {reader.size}² crops "
                f"of the cache at {root}; use image_size <= {reader.size} or rebuild "
                f"the cache at a larger size"
            )
