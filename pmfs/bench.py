"""`pmfs bench`: the speed tables of DESIGN §6, measured, never asserted.

Sub-commands (one function each, registered in `SUBCOMMANDS`):

- `loader`: samples/s of the training loader from a cache — landmark-only samples (stages 1–2,
  target ≥ 5,000/s per worker) and stage-3 samples (T=5, K=3, 256², target ≥ 200/s per worker;
  float32 batches, and uint8 batches left for the device) — with 0 (main process), 1 and 2
  DataLoader workers, in wall-clock samples/s and per CPU-second of a worker, plus a profile of
  where a stage-3 sample's time goes (JPEG decode + resize, mask decode, landmarks and mel,
  collation with the uint8 → float32 conversion). Numbers: docs/benchmarks.md.

- `train`: one training step (forward, backward, every optimizer step: the stage's own
  `training_step` under a Lightning `Trainer`) of `AudioToMouth`, `MouthToFace`, `FaceRenderer`
  (generator + discriminator) and the whole `PMFS` system, on a synthetic batch of the batch
  contract at the config's image size and batch size; median ms/step, samples/s, peak memory.
- `infer`: `PMFS.generate_clip` on a synthetic clip (references encoded once per clip) at 128²
  and 256²: frames/s, FLOPs per frame of the whole chain (`torch.utils.flop_counter`) and of the
  renderer (`pmfs.networks.renderer_flops`), peak memory. Targets: ≥ 0.7 frames/s on 2 CPU cores
  and ≥ 25 on a GPU at 256², renderer ≤ 50 GFLOPs per 256² frame.
- `all` (also `pmfs bench` with no sub-command): the three above, one report, one JSON.

The model comes from a `pmfs fit` config (`--config`, default experiments/full.yaml) through the
real CLI parser. `--device cpu|cuda`, `--precision 32|bf16-mixed`; warm-up iterations are not
timed, times are the median of `--repeats`. Peak memory: the process's RSS sampled every 5 ms
(and its rise over the RSS before the run), and `torch.cuda.max_memory_allocated` on a GPU.
Every sub-command prints a table and, with `--json PATH`, writes its numbers as JSON together
with the machine (CPU model, cores, torch version, GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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
    parser = argparse.ArgumentParser(
        prog="pmfs bench",
        description=__doc__.splitlines()[0] + " Without a sub-command: `all`.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}"
    )
    for name, (add_arguments, _run, help_text) in SUBCOMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pmfs bench [<benchmark>] ...` (no benchmark named: `all`); returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["all", *argv]
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


def _report(
    payload: dict[str, Any] | None, table: Callable[[dict[str, Any]], str], path: str | None
) -> int:
    """Print a benchmark's table and write its JSON; exit code 2 when it could not run."""
    if payload is None:
        return 2
    print(table(payload))
    _write_json(path, payload)
    return 0


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
    return _report(loader_payload(args), _loader_table, args.json)


def loader_payload(args: argparse.Namespace) -> dict[str, Any] | None:
    """Time the loaders (`pmfs bench loader` arguments); None when there is no cache to read."""
    with _cache_root(args.cache, args.synth_args) as root:
        if root is None:
            return None
        from pmfs.data.cache import Cache, CacheError

        try:
            cache = Cache(root)
        except (FileNotFoundError, CacheError) as err:
            log.error("%s", err)
            return None
        runs = [
            _time_loader(cache, args, kind, workers)
            for kind in KINDS
            for workers in args.workers
            if kind != "stage3_uint8" or args.uint8
        ]
        profile = _profile_image_sample(cache, args) if args.profile_samples > 0 else {}
        return _loader_payload(cache, args, runs, profile)


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


# --------------------------------------------------------------------------------------------
# Shared by train and infer: the model from a config, synthetic inputs, timing, memory
# --------------------------------------------------------------------------------------------

STAGE_NAMES: tuple[str, ...] = ("audio_to_mouth", "mouth_to_face", "renderer", "pmfs")
"""What `pmfs bench train` times: each stage alone, then the whole system (`PMFS`)."""
INFER_TARGET_CPU = 0.7
"""DESIGN §6: whole-chain frames/s at 256² on 2 CPU cores."""
INFER_TARGET_GPU = 25.0
"""DESIGN §6: whole-chain frames/s at 256² on one modern GPU (faster than real time)."""
RENDERER_GFLOPS_TARGET = 50.0
"""DESIGN §6: renderer GFLOPs per 256² frame, references encoded once per clip."""
TRAIN_MEMORY_TARGET_GB = 12.0
"""DESIGN §6: stage 3 at 256², batch 8, under 12 GB of GPU memory."""
VGG19_FILE = "vgg19-dcbb9e9d.pth"


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train`, `infer` and `all`: model config, device, precision, repeats."""
    parser.add_argument(
        "--config",
        action="append",
        help="`pmfs fit` config(s) whose `model` (a pmfs.PMFS) and `data` sizes are used; "
        "repeat to stack overlays (default: experiments/full.yaml)",
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--precision",
        choices=["32", "bf16-mixed"],
        default="32",
        help="bf16-mixed: autocast to bfloat16 (Lightning's precision for training)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations (median)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)


def _add_train_only_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size", type=int, help="H = W of the batches (default: the config's data)"
    )
    parser.add_argument("--batch-size", type=int, help="batch size (default: the config's data)")
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGE_NAMES,
        default=list(STAGE_NAMES),
        help="what to time (pmfs: the whole system, all stages in one step)",
    )


def _add_infer_only_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[128, 256], help="frame sizes H = W to time"
    )
    parser.add_argument("--frames", type=int, default=25, help="frames of the synthetic clip")
    parser.add_argument("--chunk", type=int, default=16, help="frames per forward pass")


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    _add_train_only_arguments(parser)


def _add_infer_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    _add_infer_only_arguments(parser)


@dataclass
class BenchModel:
    """The model a benchmark runs, with the data sizes of its config.

    Attributes:
        model: the `PMFS` system (stages in `.audio_to_mouth`, `.mouth_to_face`, `.renderer`).
        image_size: H = W of the config's data.
        batch_size: the config's training batch size.
        references: K, references per sample.
        window: T, frames per window.
        config: the config files it came from.
        perceptual: "imagenet" or "random" (VGG19 weights not found: same cost, other values).
    """

    model: Any
    image_size: int
    batch_size: int
    references: int
    window: int
    config: list[str]
    perceptual: str


def _vgg19_available() -> bool:
    """Whether torchvision's ImageNet VGG19 weights are in the torch hub cache."""
    import torch

    return (Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE).is_file()


def load_bench_model(configs: list[str], workdir: Path) -> BenchModel:
    """Build the model of `pmfs fit -c <configs...>` with the real CLI parser (nothing trained).

    Without the VGG19 ImageNet weights the perceptual loss gets random weights (same FLOPs and
    time); loggers and callbacks of the config are not built.

    Raises:
        FileNotFoundError: a config file does not exist.
        ValueError: the config's model is not a `pmfs.PMFS`.
    """
    from pmfs.lightning_cli import PMFSLightningCLI
    from pmfs.stages import PMFS

    _check_pmfs_config(configs)
    args = [arg for config in configs for arg in ("-c", config)]
    perceptual = "imagenet"
    if not _vgg19_available():
        overlay = workdir / "random_vgg.yaml"
        overlay.write_text(
            "model:\n  init_args:\n    renderer:\n      init_args:\n"
            "        perceptual_weights: null\n"
        )
        args += ["-c", str(overlay)]
        perceptual = "random"
        log.info("VGG19 ImageNet weights not found: the perceptual loss uses random weights")
    args += ["--trainer.logger", "false", "--trainer.callbacks", "[]"]
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns about `pmfs bench`'s own argv
    try:
        cli = PMFSLightningCLI(args=args, run=False)
    except SystemExit as exit_:  # the parser has printed what is wrong
        raise ValueError(f"{configs}: not a valid `pmfs fit` config (see above)") from exit_
    finally:
        sys.argv = argv
    if not isinstance(cli.model, PMFS):
        raise ValueError(f"{configs}: the model is a {type(cli.model).__name__}, not a PMFS")
    data = cli.config.get("data") or {}
    init = data.get("init_args") or {}
    return BenchModel(
        model=cli.model,
        image_size=int(init.get("image_size", 256)),
        batch_size=int(init.get("batch_size", 8)),
        references=int(init.get("num_references", 3)),
        window=int(cli.model.window),
        config=list(configs),
        perceptual=perceptual,
    )


def _check_pmfs_config(configs: list[str]) -> None:
    """Fail before parsing unless the stacked configs exist and their model is a `PMFS`.

    Raises:
        FileNotFoundError: a config file does not exist.
        ValueError: the last `model.class_path` of the stack is missing or not a `PMFS`.
    """
    import importlib

    import yaml

    from pmfs.stages import PMFS

    class_path = None
    for config in configs:
        if not Path(config).is_file():
            raise FileNotFoundError(
                f"config {config} does not exist; pass --config experiments/full.yaml (run "
                "from the repository root) or the path of a `pmfs fit` config"
            )
        model = (yaml.safe_load(Path(config).read_text()) or {}).get("model") or {}
        class_path = model.get("class_path", class_path) if isinstance(model, dict) else None
    module, _, name = (class_path or "").rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name, None) if module else None
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, PMFS)):
        raise ValueError(
            f"{configs}: model.class_path is {class_path!r}; `pmfs bench` times the whole chain "
            "and needs `model.class_path: pmfs.PMFS` (e.g. experiments/full.yaml)"
        )


def synthetic_landmarks(shape: tuple[int, ...], generator: Any) -> Any:
    """(*shape, 68, 2) normalized landmarks: the canonical template plus 1 % noise."""
    import torch

    from pmfs.landmarks import template_tensor

    noise = 0.01 * torch.randn(*shape, 68, 2, generator=generator)
    return template_tensor() + noise


def synthetic_batch(batch_size: int, window: int, references: int, size: int, seed: int) -> Any:
    """A batch of the batch contract (`pmfs.batch.Batch`) with random values, on the CPU.

    Shapes: `mel` (B, T, 80, 16), `landmarks` (B, T, 68, 2), `target` (B, 3, H, W) and
    `fg_mask` (B, 1, H, W) in [0, 1], `ref_frames` (B, K, 3, H, W), `ref_landmarks`
    (B, K, 68, 2), `emotion` / `level` / `frame_index` (B,) int64, `speaker` / `clip` lists.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    b, t, k = batch_size, window, references
    return {
        "mel": torch.randn(b, t, 80, 16, generator=g),
        "landmarks": synthetic_landmarks((b, t), g),
        "target": torch.rand(b, 3, size, size, generator=g),
        "fg_mask": torch.ones(b, 1, size, size),
        "ref_frames": torch.rand(b, k, 3, size, size, generator=g),
        "ref_landmarks": synthetic_landmarks((b, k), g),
        "emotion": torch.randint(0, 8, (b,), generator=g),
        "level": torch.randint(0, 3, (b,), generator=g),
        "speaker": ["S00"] * b,
        "clip": [f"bench_{i}" for i in range(b)],
        "frame_index": torch.arange(b),
    }


def synthetic_clip(frames: int, references: int, size: int, seed: int) -> Any:
    """A `pmfs.clip.ClipInputs` of random frames/mel and template-like landmarks, on the CPU."""
    import torch

    from pmfs.clip import ClipInputs

    g = torch.Generator().manual_seed(seed)
    return ClipInputs(
        mel=torch.randn(frames, 80, 16, generator=g),
        frames=torch.rand(frames, 3, size, size, generator=g),
        landmarks=synthetic_landmarks((frames,), g),
        ref_frames=torch.rand(references, 3, size, size, generator=g),
        ref_landmarks=synthetic_landmarks((references,), g),
        emotion=0,
        level=0,
    )


def _rss_bytes() -> int:
    """This process's resident set size now (Linux /proc), else its high-water mark."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _release_memory() -> None:
    """Collect garbage and give freed heap back to the OS, so a baseline RSS means something."""
    import ctypes
    import gc
    from contextlib import suppress

    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryPeak:
    """Peak memory while a block runs: process RSS sampled every 5 ms, and CUDA's allocator.

    Attributes (after the block): `baseline_mb` (RSS before), `peak_mb` (highest RSS seen),
    `cuda_peak_mb` (`torch.cuda.max_memory_allocated`, None on the CPU).
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self.cuda_peak_mb: float | None = None
        self._stop = False
        self._thread: Any = None

    def _sample(self) -> None:
        while not self._stop:
            self.peak_mb = max(self.peak_mb, _rss_bytes() / 2**20)
            time.sleep(0.005)

    def __enter__(self) -> MemoryPeak:
        import threading

        import torch

        _release_memory()
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.baseline_mb = self.peak_mb = _rss_bytes() / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        self._stop = True
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_bytes() / 2**20)
        if self.device == "cuda":
            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20

    def as_dict(self) -> dict[str, float | None]:
        return {
            "peak_rss_mb": self.peak_mb,
            "rss_increase_mb": self.peak_mb - self.baseline_mb,
            "peak_cuda_mb": self.cuda_peak_mb,
        }


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values))


def _check_device(args: argparse.Namespace) -> str | None:
    """An error message when the requested device or repeats cannot run here."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: no CUDA GPU is visible to torch here; use --device cpu"
    if args.warmup < 0 or args.repeats < 1:
        return f"need --warmup >= 0 and --repeats >= 1, got {args.warmup} and {args.repeats}"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be >= 1, got {args.threads}"
    return None


def _settings(args: argparse.Namespace, bench: BenchModel) -> dict[str, Any]:
    return {
        "config": bench.config,
        "device": args.device,
        "precision": args.precision,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "references": bench.references,
        "window": bench.window,
        "perceptual_weights": bench.perceptual,
    }


@contextmanager
def _bench_environment(threads: int | None) -> Iterator[None]:
    """Within the block: `threads` torch CPU threads, Lightning's per-Trainer banners off."""
    import lightning.pytorch  # noqa: F401  (sets its loggers' levels on import)
    import torch

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    before = torch.get_num_threads()
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _with_model(
    args: argparse.Namespace, measure: Callable[[argparse.Namespace, BenchModel], dict[str, Any]]
) -> dict[str, Any] | None:
    """Build the model of `args.config` and run `measure` on it; None (logged) on a bad setup."""
    problem = _check_device(args)
    if problem is not None:
        log.error("%s", problem)
        return None
    with _bench_environment(args.threads):
        with tempfile.TemporaryDirectory(prefix="pmfs-bench-") as tmp:
            try:
                bench = load_bench_model(args.config or ["experiments/full.yaml"], Path(tmp))
            except (FileNotFoundError, ValueError) as err:
                log.error("%s", err)
                return None
        return measure(args, bench)


# --------------------------------------------------------------------------------------------
# pmfs bench train
# --------------------------------------------------------------------------------------------


def _stage_module(model: Any, name: str) -> Any:
    """The LightningModule `name` of `STAGE_NAMES` inside the `PMFS` system."""
    return model if name == "pmfs" else model.stage(name)


def _step_timer(device: str) -> Any:
    """A Lightning callback recording each training batch's wall and process CPU time (s)."""
    from lightning.pytorch import Callback

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []
            self._start = self._start_cpu = 0.0

        def on_train_batch_start(self, *args: Any) -> None:
            _synchronize(device)
            self._start, self._start_cpu = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, *args: Any) -> None:
            _synchronize(device)
            self.seconds.append(time.perf_counter() - self._start)
            self.cpu_seconds.append(time.process_time() - self._start_cpu)

    return StepTimer()


def time_train_stage(
    module: Any, batch: dict[str, Any], args: argparse.Namespace
) -> tuple[list[float], list[float], MemoryPeak]:
    """Run `Trainer.fit` on `warmup + repeats` copies of `batch`: the stage's own training_step.

    Forward, backward and every optimizer step of the stage (the renderer: generator and
    discriminator; the system: all of them) are inside each timed batch.

    Returns:
        The timed steps' wall seconds and process CPU seconds (all threads; warm-up excluded),
        and the memory peak of the whole fit.
    """
    import warnings

    from lightning.pytorch import Trainer
    from torch.utils.data import DataLoader

    steps = args.warmup + args.repeats
    timer = _step_timer(args.device)
    trainer = Trainer(
        accelerator="cuda" if args.device == "cuda" else "cpu",
        devices=1,
        precision="32-true" if args.precision == "32" else "bf16-mixed",
        max_epochs=1,
        limit_train_batches=steps,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    batches: list[dict[str, Any]] = [batch] * steps
    loader: DataLoader[dict[str, Any]] = DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
    with MemoryPeak(args.device) as memory, warnings.catch_warnings():
        for message in ("num_workers", "bottleneck", "no `val_dataloader`", "treespec"):
            warnings.filterwarnings("ignore", message=f".*{message}")
        trainer.fit(module, train_dataloaders=loader)
    return timer.seconds[args.warmup :], timer.cpu_seconds[args.warmup :], memory


def train_payload(args: argparse.Namespace) -> dict[str, Any] | None:
    """`pmfs bench train`: step times and peak memory of each stage; None on a bad setup."""
    return _with_model(args, _measure_train)


def _measure_train(args: argparse.Namespace, bench: BenchModel) -> dict[str, Any]:
    size = args.image_size or bench.image_size
    batch_size = args.batch_size or bench.batch_size
    batch = synthetic_batch(batch_size, bench.window, bench.references, size, args.seed)
    stages = []
    for name in args.stages:
        module = _stage_module(bench.model, name)
        seconds, cpu_seconds, memory = time_train_stage(module, batch, args)
        median = _median(seconds)
        stages.append(
            {
                "stage": name,
                "parameters": sum(p.numel() for p in module.parameters()),
                "step_s": seconds,
                "step_ms_median": 1e3 * median,
                "step_cpu_s": cpu_seconds,
                "step_cpu_ms_median": 1e3 * _median(cpu_seconds),
                "samples_per_s": batch_size / median,
                **memory.as_dict(),
            }
        )
        log.info("train %s: %.0f ms per step of %d", name, 1e3 * median, batch_size)
    return {
        "benchmark": "train",
        "machine": _machine(),
        "settings": {**_settings(args, bench), "image_size": size, "batch_size": batch_size},
        "target_renderer_gpu_memory_gb": TRAIN_MEMORY_TARGET_GB,
        "stages": stages,
    }


def run_train(args: argparse.Namespace) -> int:
    """`pmfs bench train`: time a training step of every stage, print a table, write JSON."""
    return _report(train_payload(args), _train_table, args.json)


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _train_table(payload: dict[str, Any]) -> str:
    s = payload["settings"]
    lines = [
        f"train step (forward + backward + optimizer steps) at {s['image_size']}², batch "
        f"{s['batch_size']}, T={s['window']}, K={s['references']}, {s['device']}, precision "
        f"{s['precision']}, median of {s['repeats']} after {s['warmup']} warm-up; "
        f"{_machine_line(payload['machine'])}",
        "",
        "| stage | parameters | ms/step | CPU ms/step | samples/s | peak RSS MB | "
        "RSS increase MB | peak GPU MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["stages"]:
        lines.append(
            f"| {r['stage']} | {r['parameters'] / 1e6:.2f} M | {r['step_ms_median']:,.0f} | "
            f"{r['step_cpu_ms_median']:,.0f} | "
            f"{r['samples_per_s']:.2f} | {_mb(r['peak_rss_mb'])} | {_mb(r['rss_increase_mb'])} "
            f"| {_mb(r['peak_cuda_mb'])} |"
        )
    return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    return (
        f"{machine['cpu']} ({machine['cores']} cores, {machine['torch_threads']} torch threads)"
        f"{gpu}, torch {machine['torch']}"
    )


# --------------------------------------------------------------------------------------------
# pmfs bench infer
# --------------------------------------------------------------------------------------------


def _autocast(args: argparse.Namespace) -> Any:
    import torch

    return torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")


def time_generate_clip(
    model: Any, clip: Any, args: argparse.Namespace
) -> tuple[list[float], list[float], int, MemoryPeak]:
    """Time `PMFS.generate_clip` on a whole clip (references encoded once per call).

    The first warm-up call runs under `torch.utils.flop_counter.FlopCounterMode` (a separate
    untimed call when `--warmup 0`), so the FLOPs come from the same code path as the timings.

    Returns:
        Wall and process CPU seconds of each timed call, the FLOPs of one call (whole clip),
        the memory peak.
    """
    from torch.utils.flop_counter import FlopCounterMode

    flops = 0
    with MemoryPeak(args.device) as memory, _autocast(args):
        for i in range(max(args.warmup, 1)):
            if i == 0:
                with FlopCounterMode(display=False) as counter:
                    model.generate_clip(clip, chunk=args.chunk)
                flops = counter.get_total_flops()
            elif i < args.warmup:
                model.generate_clip(clip, chunk=args.chunk)
        seconds, cpu_seconds = [], []
        for _ in range(args.repeats):
            _synchronize(args.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            model.generate_clip(clip, chunk=args.chunk)
            _synchronize(args.device)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - start_cpu)
    return seconds, cpu_seconds, flops, memory


def infer_payload(args: argparse.Namespace) -> dict[str, Any] | None:
    """`pmfs bench infer`: whole-chain frames/s, FLOPs and peak memory; None on a bad setup."""
    return _with_model(args, _measure_infer)


def _measure_infer(args: argparse.Namespace, bench: BenchModel) -> dict[str, Any]:
    import torch

    from pmfs.networks import renderer_flops

    device = torch.device(args.device)
    model = bench.model.to(device).eval()
    runs = []
    for size in args.sizes:
        clip = synthetic_clip(args.frames, bench.references, size, args.seed).to(device)
        seconds, cpu_seconds, flops, memory = time_generate_clip(model, clip, args)
        renderer = renderer_flops(model.renderer.network, size=size, k=bench.references)
        median = _median(seconds)
        runs.append(
            {
                "image_size": size,
                "frames": args.frames,
                "clip_s": seconds,
                "frames_per_s": args.frames / median,
                "ms_per_frame": 1e3 * median / args.frames,
                "clip_cpu_s": cpu_seconds,
                "cpu_ms_per_frame": 1e3 * _median(cpu_seconds) / args.frames,
                "chain_gflops_per_frame": flops / args.frames / 1e9,
                "renderer_gflops_per_frame": renderer["forward"] / 1e9,
                "renderer_encode_references_gflops": renderer["encode_references"] / 1e9,
                **memory.as_dict(),
            }
        )
        log.info("infer %d²: %.2f frames/s", size, args.frames / median)
    return {
        "benchmark": "infer",
        "machine": _machine(),
        "settings": {**_settings(args, bench), "chunk": args.chunk},
        "targets": {
            "frames_per_s_256_cpu_2_cores": INFER_TARGET_CPU,
            "frames_per_s_256_gpu": INFER_TARGET_GPU,
            "renderer_gflops_per_frame_256": RENDERER_GFLOPS_TARGET,
        },
        "runs": runs,
    }


def run_infer(args: argparse.Namespace) -> int:
    """`pmfs bench infer`: time whole-clip generation, print a table, write JSON."""
    return _report(infer_payload(args), _infer_table, args.json)


def _infer_table(payload: dict[str, Any]) -> str:
    s = payload["settings"]
    target = INFER_TARGET_GPU if s["device"] == "cuda" else INFER_TARGET_CPU
    lines = [
        f"whole chain (PMFS.generate_clip: audio → landmarks → frames, K={s['references']} "
        f"references encoded once per clip, chunks of {s['chunk']}), {s['device']}, precision "
        f"{s['precision']}, median of {s['repeats']} after {s['warmup']} warm-up; "
        f"{_machine_line(payload['machine'])}",
        "",
        "| size | frames | frames/s | ms/frame | CPU ms/frame | chain GFLOPs/frame | "
        "renderer GFLOPs/frame | encode refs GFLOPs/clip | peak RSS MB | peak GPU MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(
            f"| {r['image_size']}² | {r['frames']} | {r['frames_per_s']:.2f} | "
            f"{r['ms_per_frame']:,.0f} | {r['cpu_ms_per_frame']:,.0f} | "
            f"{r['chain_gflops_per_frame']:.1f} | "
            f"{r['renderer_gflops_per_frame']:.1f} | "
            f"{r['renderer_encode_references_gflops']:.1f} | {_mb(r['peak_rss_mb'])} | "
            f"{_mb(r['peak_cuda_mb'])} |"
        )
    lines.append(
        f"\ntargets at 256²: ≥ {target} frames/s ({s['device']}), renderer ≤ "
        f"{RENDERER_GFLOPS_TARGET:.0f} GFLOPs/frame"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# pmfs bench all (also `pmfs bench` alone)
# --------------------------------------------------------------------------------------------

PARTS: tuple[str, ...] = ("loader", "train", "infer")


def _add_all_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    _add_train_only_arguments(parser)
    _add_infer_only_arguments(parser)
    parser.add_argument(
        "--loader-args",
        default="",
        help='options for the loader part, as for `pmfs bench loader` (e.g. "--cache DIR")',
    )
    parser.add_argument("--skip", nargs="+", choices=PARTS, default=[], help="parts to leave out")


def all_payload(args: argparse.Namespace) -> dict[str, Any] | None:
    """Every benchmark in turn; None when one of them cannot run (logged)."""
    import shlex

    payload: dict[str, Any] = {"benchmark": "all", "machine": _machine()}
    if "loader" not in args.skip:
        loader_args = build_parser().parse_args(["loader", *shlex.split(args.loader_args)])
        payload["loader"] = loader_payload(loader_args)
    measures = {"train": train_payload, "infer": infer_payload}
    for name, measure in measures.items():
        if name not in args.skip:
            payload[name] = measure(args)
    if any(payload.get(name, {}) is None for name in PARTS):
        return None
    return payload


def run_all(args: argparse.Namespace) -> int:
    """`pmfs bench [all]`: loader, train and infer; one report, one JSON."""
    payload = all_payload(args)
    if payload is None:
        return 2
    tables = {"loader": _loader_table, "train": _train_table, "infer": _infer_table}
    print("\n\n".join(tables[name](payload[name]) for name in PARTS if name in payload))
    _write_json(args.json, payload)
    return 0


SUBCOMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {
    "all": (_add_all_arguments, run_all, "loader, train and infer in one table (the default)"),
    "loader": (_add_loader_arguments, run_loader, "samples/s of the data loader (DESIGN §6)"),
    "train": (
        _add_train_arguments,
        run_train,
        "training step time and peak memory of each stage and the whole system",
    ),
    "infer": (
        _add_infer_arguments,
        run_infer,
        "whole-chain frames/s, FLOPs per frame and peak memory at 128² and 256²",
    ),
}
"""name → (add its arguments, run it, help)."""
