"""`pmfs bench loader`: samples/s of the training loader from a cache.

Landmark-only samples (stages 1–2, target ≥ 5,000/s per worker) and stage-3 samples (T=5, K=3,
256², target ≥ 200/s per worker; float32 batches, and uint8 batches left for the device) — with
0 (main process), 1 and 2 DataLoader workers, in wall-clock samples/s and per CPU-second of a
worker, plus a profile of where a stage-3 sample's time goes (JPEG decode + resize, mask decode,
landmarks and mel, collation with the uint8 → float32 conversion). Numbers: docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmfs.batch import Background
from pmfs.commands.bench.harness import machine
from pmfs.data.references import ReferenceSource
from pmfs.options import option

if TYPE_CHECKING:
    from pmfs.data.cache import Cache
    from pmfs.data.dataset import TalkingFaceDataset

log = logging.getLogger(__name__)

LANDMARK_TARGET = 5000.0
"""DESIGN §6: landmark-only samples per second per worker."""
IMAGE_TARGET = 200.0
"""DESIGN §6: stage-3 samples (T=5, K=3, 256²) per second per worker."""
KINDS: tuple[str, ...] = ("landmarks", "stage3", "stage3_uint8")
"""The sample kinds `pmfs bench loader` times (see `LoaderRun.kind`)."""
TARGETS: dict[str, float] = {
    "landmarks": LANDMARK_TARGET,
    "stage3": IMAGE_TARGET,
    "stage3_uint8": IMAGE_TARGET,
}


@dataclass(frozen=True)
class LoaderOptions:
    """Options of `pmfs bench loader`."""

    cache: str | None = option(
        None, help="cache folder (default: a small synthetic one in a temp dir)"
    )
    json: str | None = option(None, help="write the results to this JSON file")
    workers: tuple[int, ...] = option(
        (0, 1, 2), help="DataLoader num_workers values to measure (0 = main process)"
    )
    landmark_samples: int = option(20000, help="landmark-only samples timed per run")
    image_samples: int = option(1000, help="stage-3 samples timed per run")
    batch_size: int = option(16, help="batch size of stage-3 runs")
    landmark_batch_size: int = option(
        64, help="batch size of landmark-only runs (stages 1-2 train on larger batches)"
    )
    window: int = option(5, help="T, frames per sample")
    references: int = option(3, help="K, reference frames per stage-3 sample")
    image_size: int = option(256, help="H = W of the stage-3 images")
    reference_source: ReferenceSource = option("driven", help="where the references come from")
    background: Background = option("keep", help="keep or remove the background")
    warmup_batches: int = option(
        2, help="batches skipped before timing (worker start-up, page cache)"
    )
    profile_samples: int = option(100, help="samples of the per-stage profile (0: skip it)")
    synth_args: str = option(
        "--speakers 3 --clips 4 --no-progress",
        help="options for `pmfs data synth` when --cache is not given",
    )
    uint8: bool = option(
        True,
        help="also time stage-3 batches whose images stay uint8 for the device (images_on_device)",
        negatable=True,
    )
    seed: int = option(0, help="seed of the sampler and of the datasets' picks")


@dataclass
class LoaderRun:
    """One timed run: a kind of sample at one num_workers.

    Attributes:
        kind: "landmarks", "stage3", or "stage3_uint8" (images left uint8 for the device,
            `TalkingFaceDataModule(images_on_device=True)`).
        workers: DataLoader num_workers (0: the main process loads).
        batch_size: samples per batch.
        samples: samples timed (after the warm-up batches).
        seconds: wall time of those samples.
        cpu_samples: samples made during `cpu_seconds` (with workers: all, warm-up included).
        cpu_seconds: CPU time of the loading processes (the main process when 0 workers, else
            all workers together), so that `per_cpu_second` does not depend on other load on
            the machine.
    """

    kind: str
    workers: int
    batch_size: int
    samples: int
    seconds: float
    cpu_samples: int
    cpu_seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def per_worker(self) -> float:
        """Samples/s divided by the processes doing the work (the main process when 0)."""
        return self.samples_per_s / max(1, self.workers)

    @property
    def per_cpu_second(self) -> float:
        """Samples per CPU-second of a loading process: a worker's rate on a core of its own."""
        return self.cpu_samples / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "samples_per_s": self.samples_per_s,
            "per_worker": self.per_worker,
            "per_cpu_second": self.per_cpu_second,
        }


def loader_payload(options: LoaderOptions) -> dict[str, Any] | None:
    """Time the loaders (`pmfs bench loader` arguments); None when there is no cache to read."""
    with _cache_root(options.cache, options.synth_args) as root:
        if root is None:
            return None
        from pmfs.data.cache import Cache, CacheError

        try:
            cache = Cache(root)
        except (FileNotFoundError, CacheError) as err:
            log.error("%s", err)
            return None
        runs = [
            _time_loader(cache, options, kind, workers)
            for kind in KINDS
            for workers in options.workers
            if kind != "stage3_uint8" or options.uint8
        ]
        profile = _profile_image_sample(cache, options) if options.profile_samples > 0 else {}
        return _loader_payload(cache, options, runs, profile)


@contextmanager
def _cache_root(cache: str | None, synth_args: str) -> Iterator[Path | None]:
    """The given cache, or a small synthetic one built in a temp dir (None: cannot build one)."""
    if cache is not None:
        yield Path(cache)
        return
    with tempfile.TemporaryDirectory(prefix="pmfs-bench-") as tmp:
        root = Path(tmp) / "synthetic"
        log.info("building a synthetic cache in %s (pmfs data synth %s)", root, synth_args)
        code = _build_synthetic(root, synth_args)
        if code != 0:
            log.error(
                "could not build a synthetic cache (exit %d); pass --cache DIR (a cache built "
                "by `pmfs data synth --out DIR` or `pmfs data preprocess ...`)",
                code,
            )
            yield None
            return
        yield root


def _build_synthetic(root: Path, synth_args: str) -> int:
    """Run `pmfs data synth --out root <synth_args>`; the exit code (2: generator unavailable)."""
    try:
        from pmfs.commands.data import main as data_main

        return data_main(["synth", "--out", str(root), *synth_args.split()])
    except ImportError as err:
        log.error("the synthetic generator is not available: %s", err)
        return 2
    except SystemExit as exit_:  # argparse rejected --synth-args
        return exit_.code if isinstance(exit_.code, int) else 2


def _dataset(cache: Cache, options: LoaderOptions, landmarks_only: bool) -> TalkingFaceDataset:
    """A training dataset over every clip of the cache (random frames and references)."""
    from pmfs.data.dataset import SampleSpec, TalkingFaceDataset

    spec = SampleSpec(
        window=options.window,
        image_size=options.image_size,
        num_references=options.references,
        reference_source=options.reference_source,
        background=options.background,
        landmarks_only=landmarks_only,
    )
    return TalkingFaceDataset(
        cache, cache.clips(), spec, train=True, samples_per_clip=64, seed=options.seed
    )


def _time_loader(cache: Cache, options: LoaderOptions, kind: str, workers: int) -> LoaderRun:
    """Samples/s of a DataLoader (random sampling with replacement) after warm-up batches."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from pmfs.data.collate import Collate

    landmarks_only = kind == "landmarks"
    samples = options.landmark_samples if landmarks_only else options.image_samples
    batch_size = options.landmark_batch_size if landmarks_only else options.batch_size
    total = samples + options.warmup_batches * batch_size
    dataset = _dataset(cache, options, landmarks_only)
    generator = torch.Generator().manual_seed(options.seed)
    sampler = RandomSampler(dataset, replacement=True, num_samples=total, generator=generator)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=Collate(options.background, float_images=kind != "stage3_uint8"),
        prefetch_factor=4 if workers > 0 else None,
    )
    children_cpu = _children_cpu_seconds()
    counted, start, start_cpu = 0, 0.0, 0.0
    for i, batch in enumerate(loader):
        if i == options.warmup_batches:
            start, start_cpu = time.perf_counter(), time.process_time()
        if i >= options.warmup_batches:
            counted += len(batch["clip"])
    seconds, main_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    # the workers have exited and been joined here, so their CPU time is in RUSAGE_CHILDREN
    worker_cpu = _children_cpu_seconds() - children_cpu
    run = LoaderRun(
        kind=kind,
        workers=workers,
        batch_size=batch_size,
        samples=counted,
        seconds=seconds,
        cpu_samples=counted if workers == 0 else total,
        cpu_seconds=main_cpu if workers == 0 else worker_cpu,
    )
    log.info(
        "%s, %d workers: %.0f samples/s, %.0f per worker CPU-second",
        run.kind,
        workers,
        run.samples_per_s,
        run.per_cpu_second,
    )
    return run


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's terminated children (0 where unsupported)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _profile_image_sample(cache: Cache, options: LoaderOptions) -> dict[str, float]:
    """Milliseconds per stage-3 sample spent in each step, one torch thread as in a worker.

    `jpeg_decode` / `mask_decode`: the 1 + K frames (and masks: 1, or 1 + K with background
    removal) decoded at the requested size (JPEG at reduced scale + resize when smaller than the
    cache); `jpeg_decode_full_size` the same at the cache's size; `landmarks_mel`: a landmark-only
    item; `item`: a whole `__getitem__`; `collate`: `Collate` (stack, uint8 → float32, background).
    """
    import numpy as np
    import torch

    n = options.profile_samples
    images = _dataset(cache, options, landmarks_only=False)
    landmarks = _dataset(cache, options, landmarks_only=True)
    rng = np.random.default_rng(options.seed)
    indices = [int(i) for i in rng.integers(len(images), size=n)]
    clips = [cache.open(rec.clip) for rec in cache.clips()]
    frames = [
        (clips[i % len(clips)], int(rng.integers(clips[i % len(clips)].num_frames)))
        for i in range(n)
    ]
    size = None if options.image_size == clips[0].size else options.image_size
    per_sample_images = 1 + options.references
    per_sample_masks = per_sample_images if options.background == "remove" else 1
    items = [images[i] for i in indices]  # also warms the page cache
    batches = [items[i : i + options.batch_size] for i in range(0, n, options.batch_size)]

    def ms(step: Callable[[], object]) -> float:
        start = time.perf_counter()
        step()
        return 1e3 * (time.perf_counter() - start) / n

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        profile = {
            "jpeg_decode": per_sample_images * ms(lambda: [r.frame(i, size) for r, i in frames]),
            "jpeg_decode_full_size": per_sample_images
            * ms(lambda: [r.frame(i) for r, i in frames]),
            "mask_decode": per_sample_masks * ms(lambda: [r.mask(i, size) for r, i in frames]),
            "landmarks_mel": ms(lambda: [landmarks[i] for i in indices]),
            "item": ms(lambda: [images[i] for i in indices]),
            "collate": ms(lambda: [images.collate(b) for b in batches]),
        }
    finally:
        torch.set_num_threads(threads)
    profile["item_plus_collate"] = profile["item"] + profile["collate"]
    return profile


def _loader_payload(
    cache: Cache, options: LoaderOptions, runs: list[LoaderRun], profile: dict[str, float]
) -> dict[str, Any]:
    """The JSON document: settings, machine, runs, scaling, targets, profile."""

    def rate(kind: str, workers: int) -> float | None:
        return next(
            (r.samples_per_s for r in runs if r.kind == kind and r.workers == workers), None
        )

    scaling = {}
    for kind in KINDS:
        one, two = rate(kind, 1), rate(kind, 2)
        scaling[kind] = two / one if one and two else None
    return {
        "benchmark": "loader",
        "machine": machine(),
        "cache": {"root": str(cache.root), "dataset": cache.dataset, "clips": len(cache.clips())},
        "settings": {
            "batch_size": options.batch_size,
            "window": options.window,
            "references": options.references,
            "image_size": options.image_size,
            "reference_source": options.reference_source,
            "background": options.background,
        },
        "targets_per_worker": TARGETS,
        "runs": [r.as_dict() for r in runs],
        "scaling_1_to_2_workers": scaling,
        "profile_stage3_ms_per_sample": profile,
    }


def loader_table(payload: dict[str, Any]) -> str:
    """A Markdown table of the runs (and the profile)."""
    machine = payload["machine"]
    lines = [
        f"loader benchmark on {machine['cpu']} ({machine['cores']} cores), cache "
        f"{payload['cache']['root']} ({payload['cache']['clips']} clips)",
        "",
        "| samples | workers | batch | samples/s | per worker | per worker CPU-s | target/worker |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in payload["runs"]:
        lines.append(
            f"| {run['kind']} | {run['workers']} | {run['batch_size']} | "
            f"{run['samples_per_s']:.0f} | {run['per_worker']:.0f} | "
            f"{run['per_cpu_second']:.0f} | {TARGETS[run['kind']]:.0f} |"
        )
    for kind, factor in payload["scaling_1_to_2_workers"].items():
        if factor is not None:
            lines.append(f"\n{kind}: 1 → 2 workers = ×{factor:.2f}")
    if payload["profile_stage3_ms_per_sample"]:
        lines += ["", "| stage-3 sample step | ms/sample |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in payload["profile_stage3_ms_per_sample"].items()]
    return "\n".join(lines)
