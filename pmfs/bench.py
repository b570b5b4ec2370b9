"""`pmfs bench`: the speed tables of DESIGN §6, measured, never asserted.

Sub-commands (one function each, registered in `SUBCOMMANDS`):

- `loader`: samples/s of the training loader from a cache — landmark-only samples (stages 1–2,
  target ≥ 5,000/s per worker) and stage-3 samples (T=5, K=3, 256², target ≥ 200/s per worker;
  float32 batches, and uint8 batches left for the device) — with 0 (main process), 1 and 2
  DataLoader workers, in wall-clock samples/s and per CPU-second of a worker, plus a profile of
  where a stage-3 sample's time goes (JPEG decode + resize, mask decode, landmarks and mel,
  collation with the uint8 → float32 conversion). Numbers: docs/benchmarks.md.

Every sub-command prints a table and, with `--json PATH`, writes its numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs bench` parser with one sub-parser per benchmark."""
    parser = argparse.ArgumentParser(prog="pmfs bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{loader}")
    for name, (add_arguments, _run, help_text) in SUBCOMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `pmfs bench <benchmark> ...`; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    _add_arguments, run, _help = SUBCOMMANDS[args.command]
    return run(args)


def _machine() -> dict[str, Any]:
    """CPU model, core count and accelerator of this machine (for the tables)."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1))
        log.info("wrote %s", path)


# --------------------------------------------------------------------------------------------
# pmfs bench loader
# --------------------------------------------------------------------------------------------


def _add_loader_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache", help="cache folder (default: a small synthetic one in a temp dir)"
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="DataLoader num_workers values to measure (0 = main process)",
    )
    parser.add_argument(
        "--landmark-samples", type=int, default=20000, help="landmark-only samples timed per run"
    )
    parser.add_argument(
        "--image-samples", type=int, default=1000, help="stage-3 samples timed per run"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="batch size of stage-3 runs")
    parser.add_argument(
        "--landmark-batch-size",
        type=int,
        default=64,
        help="batch size of landmark-only runs (stages 1-2 train on larger batches)",
    )
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--references", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument(
        "--reference-source", choices=["driven", "random", "spread"], default="driven"
    )
    parser.add_argument("--background", choices=["keep", "remove"], default="keep")
    parser.add_argument(
        "--warmup-batches",
        type=int,
        default=2,
        help="batches skipped before timing (worker start-up, page cache)",
    )
    parser.add_argument(
        "--profile-samples",
        type=int,
        default=100,
        help="samples of the per-stage profile (0: skip it)",
    )
    parser.add_argument(
        "--synth-args",
        default="--speakers 3 --clips 4 --no-progress",
        help="options for `pmfs data synth` when --cache is not given",
    )
    parser.add_argument(
        "--uint8",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time stage-3 batches whose images stay uint8 for the device (images_on_device)",
    )
    parser.add_argument("--seed", type=int, default=0)


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


def run_loader(args: argparse.Namespace) -> int:
    """`pmfs bench loader`: time the loaders, print a table, write JSON."""
    with _cache_root(args.cache, args.synth_args) as root:
        if root is None:
            return 2
        from pmfs.data.cache import Cache, CacheError

        try:
            cache = Cache(root)
        except (FileNotFoundError, CacheError) as err:
            log.error("%s", err)
            return 2
        runs = [
            _time_loader(cache, args, kind, workers)
            for kind in KINDS
            for workers in args.workers
            if kind != "stage3_uint8" or args.uint8
        ]
        profile = _profile_image_sample(cache, args) if args.profile_samples > 0 else {}
        payload = _loader_payload(cache, args, runs, profile)
    print(_loader_table(payload))
    _write_json(args.json, payload)
    return 0


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
        from pmfs.data.cli import main as data_main

        return data_main(["synth", "--out", str(root), *synth_args.split()])
    except ImportError as err:
        log.error("the synthetic generator is not available: %s", err)
        return 2
    except SystemExit as exit_:  # argparse rejected --synth-args
        return exit_.code if isinstance(exit_.code, int) else 2


def _dataset(cache: Cache, args: argparse.Namespace, landmarks_only: bool) -> TalkingFaceDataset:
    """A training dataset over every clip of the cache (random frames and references)."""
    from pmfs.data.dataset import SampleSpec, TalkingFaceDataset

    spec = SampleSpec(
        window=args.window,
        image_size=args.image_size,
        num_references=args.references,
        reference_source=args.reference_source,
        background=args.background,
        landmarks_only=landmarks_only,
    )
    return TalkingFaceDataset(
        cache, cache.clips(), spec, train=True, samples_per_clip=64, seed=args.seed
    )


def _time_loader(cache: Cache, args: argparse.Namespace, kind: str, workers: int) -> LoaderRun:
    """Samples/s of a DataLoader (random sampling with replacement) after warm-up batches."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from pmfs.data.dataset import Collate

    landmarks_only = kind == "landmarks"
    samples = args.landmark_samples if landmarks_only else args.image_samples
    batch_size = args.landmark_batch_size if landmarks_only else args.batch_size
    total = samples + args.warmup_batches * batch_size
    dataset = _dataset(cache, args, landmarks_only)
    generator = torch.Generator().manual_seed(args.seed)
    sampler = RandomSampler(dataset, replacement=True, num_samples=total, generator=generator)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=Collate(args.background, float_images=kind != "stage3_uint8"),
        prefetch_factor=4 if workers > 0 else None,
    )
    children_cpu = _children_cpu_seconds()
    counted, start, start_cpu = 0, 0.0, 0.0
    for i, batch in enumerate(loader):
        if i == args.warmup_batches:
            start, start_cpu = time.perf_counter(), time.process_time()
        if i >= args.warmup_batches:
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


def _profile_image_sample(cache: Cache, args: argparse.Namespace) -> dict[str, float]:
    """Milliseconds per stage-3 sample spent in each step, one torch thread as in a worker.

    `jpeg_decode` / `mask_decode`: the 1 + K frames (and masks: 1, or 1 + K with background
    removal) decoded at the requested size (JPEG at reduced scale + resize when smaller than the
    cache); `jpeg_decode_full_size` the same at the cache's size; `landmarks_mel`: a landmark-only
    item; `item`: a whole `__getitem__`; `collate`: `Collate` (stack, uint8 → float32, background).
    """
    import numpy as np
    import torch

    n = args.profile_samples
    images = _dataset(cache, args, landmarks_only=False)
    landmarks = _dataset(cache, args, landmarks_only=True)
    rng = np.random.default_rng(args.seed)
    indices = [int(i) for i in rng.integers(len(images), size=n)]
    clips = [cache.open(rec.clip) for rec in cache.clips()]
    frames = [
        (clips[i % len(clips)], int(rng.integers(clips[i % len(clips)].num_frames)))
        for i in range(n)
    ]
    size = None if args.image_size == clips[0].size else args.image_size
    per_sample_images = 1 + args.references
    per_sample_masks = per_sample_images if args.background == "remove" else 1
    items = [images[i] for i in indices]  # also warms the page cache
    batches = [items[i : i + args.batch_size] for i in range(0, n, args.batch_size)]

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
    cache: Cache, args: argparse.Namespace, runs: list[LoaderRun], profile: dict[str, float]
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
        "machine": _machine(),
        "cache": {"root": str(cache.root), "dataset": cache.dataset, "clips": len(cache.clips())},
        "settings": {
            "batch_size": args.batch_size,
            "window": args.window,
            "references": args.references,
            "image_size": args.image_size,
            "reference_source": args.reference_source,
            "background": args.background,
        },
        "targets_per_worker": TARGETS,
        "runs": [r.as_dict() for r in runs],
        "scaling_1_to_2_workers": scaling,
        "profile_stage3_ms_per_sample": profile,
    }


def _loader_table(payload: dict[str, Any]) -> str:
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


SUBCOMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {
    "loader": (_add_loader_arguments, run_loader, "samples/s of the data loader (DESIGN §6)"),
}
"""name → (add its arguments, run it, help). A later issue adds train, infer, ..."""
