"""The model `pmfs bench train|infer` time: built from a `pmfs fit` config, with synthetic inputs
of the batch contract, and the options those benchmarks share (config, device, precision, repeats).

Imports no torch at import time (`pmfs bench --help` stays quick).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pmfs.commands.bench.harness import machine_line
from pmfs.options import option

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbb9e9d.pth"
DEFAULT_CONFIG = "experiments/full.yaml"


@dataclass(frozen=True)
class ModelOptions:
    """Options shared by `train`, `infer` and `all`: model config, device, precision, repeats."""

    config: tuple[str, ...] | None = option(
        None,
        help="`pmfs fit` config(s) whose `model` (a pmfs.PMFS) and `data` sizes are used; "
        f"repeat to stack overlays (default: {DEFAULT_CONFIG})",
        repeat=True,
    )
    json: str | None = option(None, help="write the results to this JSON file")
    device: Literal["cpu", "cuda"] = option("cpu", help="where the model runs")
    precision: Literal["32", "bf16-mixed"] = option(
        "32", help="bf16-mixed: autocast to bfloat16 (Lightning's precision for training)"
    )
    warmup: int = option(1, help="untimed iterations first")
    repeats: int = option(3, help="timed iterations (median)")
    threads: int | None = option(None, help="torch CPU threads (default: torch's)")
    seed: int = option(0, help="seed of the synthetic inputs")


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
    from pmfs.commands.lightning import PMFSLightningCLI
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

    from pmfs.stages import PMFS

    class_path = None
    for config in configs:
        class_path = _model_class_path(Path(config), class_path)
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


def _model_class_path(config: Path, class_path: str | None) -> str | None:
    """`model.class_path` after `config` is stacked on `class_path`, following its own `config:`
    key (a base config it names, relative to itself, applied first, as jsonargparse does).

    Raises:
        FileNotFoundError: the config (or a base it names) does not exist.
    """
    import yaml

    if not config.is_file():
        raise FileNotFoundError(
            f"config {config} does not exist; pass --config experiments/full.yaml (run "
            "from the repository root) or the path of a `pmfs fit` config"
        )
    content = yaml.safe_load(config.read_text()) or {}
    bases = content.get("config") or []
    for base in [bases] if isinstance(bases, str) else bases:
        class_path = _model_class_path(config.parent / base, class_path)
    model = content.get("model") or {}
    return model.get("class_path", class_path) if isinstance(model, dict) else None


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


def _check_device(options: ModelOptions) -> str | None:
    """An error message when the requested device or repeats cannot run here."""
    import torch

    if options.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: no CUDA GPU is visible to torch here; use --device cpu"
    if options.warmup < 0 or options.repeats < 1:
        return f"need --warmup >= 0 and --repeats >= 1, got {options.warmup} and {options.repeats}"
    if options.threads is not None and options.threads < 1:
        return f"--threads must be >= 1, got {options.threads}"
    return None


def settings(options: ModelOptions, bench: BenchModel) -> dict[str, Any]:
    """The settings a train or infer report records."""
    return {
        "config": bench.config,
        "device": options.device,
        "precision": options.precision,
        "warmup": options.warmup,
        "repeats": options.repeats,
        "references": bench.references,
        "window": bench.window,
        "perceptual_weights": bench.perceptual,
    }


def settings_line(payload: dict[str, Any]) -> str:
    """How a train or infer report was measured: device, precision, repeats, machine."""
    s = payload["settings"]
    return (
        f"{s['device']}, precision {s['precision']}, median of {s['repeats']} after "
        f"{s['warmup']} warm-up; {machine_line(payload['machine'])}"
    )


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


OptionsT = TypeVar("OptionsT", bound=ModelOptions)


def with_model(
    options: OptionsT, measure: Callable[[OptionsT, BenchModel], dict[str, Any]]
) -> dict[str, Any] | None:
    """Build the model of `options.config` and run `measure` on it; None (logged) on a bad setup."""
    problem = _check_device(options)
    if problem is not None:
        log.error("%s", problem)
        return None
    with _bench_environment(options.threads):
        with tempfile.TemporaryDirectory(prefix="pmfs-bench-") as tmp:
            try:
                bench = load_bench_model(list(options.config or (DEFAULT_CONFIG,)), Path(tmp))
            except (FileNotFoundError, ValueError) as err:
                log.error("%s", err)
                return None
        return measure(options, bench)
