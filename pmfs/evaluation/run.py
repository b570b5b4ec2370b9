"""The run of `pmfs evaluate`: a checkpoint over every clip of a split, then the reports.

Every clip of the split is taken by the split rules of `TalkingFaceDataModule`
(`pmfs.data.splits`), so "test" is exactly what training held out: MEAD's test speakers, the
synthetic cache's `test_speakers`, all of CREMA-D (zero-shot). Each clip is run whole
(`pmfs.data.clips.clip_inputs_from_cache` at the checkpoint's image size, references spread over
mouth opening, the checkpoint's background; the landmarks from audio post-processed as
`pmfs infer` does, `EvaluateOptions.temporal`) and scored along every path of the model
(`pmfs.evaluation.scores`); the scores are aggregated (`pmfs.evaluation.aggregation`) and written
as metrics.json and metrics.md (`pmfs.evaluation.reports`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmfs.evaluation.aggregation import Aggregate
from pmfs.evaluation.reports import results_dict, write_results
from pmfs.evaluation.scores import ClipEvaluator, load_optional_metrics, model_paths

if TYPE_CHECKING:
    from pmfs.data.cache import Cache, ClipRecord
    from pmfs.evaluation.options import EvaluateOptions

log = logging.getLogger(__name__)


def evaluate(options: EvaluateOptions, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Evaluate a checkpoint on a split and write metrics.json and metrics.md into `options.out`.

    Args:
        options: what to evaluate.
        say: where the one-line notes go (skipped metrics, W&B mode); `print` in the CLI.

    Returns:
        The content of metrics.json.

    Raises:
        FileNotFoundError: the checkpoint or the cache is missing.
        ValueError: a landmark-stage checkpoint, an empty split, a wrong weights file.
    """
    from pmfs.checkpoints import data_config, load_model, resolve_device

    device = str(resolve_device(options.device))
    model = load_model(options.ckpt, map_location=device)
    paths = model_paths(model, options.ckpt)
    config = data_config(options.ckpt)
    renderer = getattr(model, "renderer", model)
    size = int(config.get("image_size", 256))
    background = str(config.get("background", renderer.background))
    cache, dataset, records = split_records(options, config, size)
    records = records[: options.max_clips]
    metrics = load_optional_metrics(options, paths, device, say)
    window = int(config.get("window", 5))
    evaluator = ClipEvaluator(
        model, paths, metrics, device, window, options.chunk, options.temporal
    )
    started = time.perf_counter()
    num_references = int(config.get("num_references", 3))
    aggregate = run_clips(cache, records, evaluator, options, size, num_references, background)
    results = results_dict(options, model, dataset, aggregate, metrics, paths)
    results["settings"].update(image_size=size, background=background, device=device)
    results["settings"]["temporal"] = dataclasses.asdict(options.temporal)
    results["seconds"] = round(time.perf_counter() - started, 3)
    write_results(results, Path(options.out))
    return results


def split_records(
    options: EvaluateOptions, config: dict[str, Any], size: int
) -> tuple[Cache, str, list[ClipRecord]]:
    """The cache over `options.data`, its dataset and the clips of `options.split`.

    The training run's `test_speakers`, `val_fraction` and `seed` are reused when it trained on
    the same dataset, so that its held-out clips are exactly the ones evaluated.

    Raises:
        FileNotFoundError: no cache at `options.data` (the message names the command to build it).
        ValueError: the split is empty (e.g. "val" of CREMA-D, which is test-only), or the
            checkpoint's image size is larger than the cache's crops.
    """
    from pmfs.data.cache import Cache, CacheNotFoundError
    from pmfs.data.splits import check_image_size, dataset_splits, open_dataset_cache

    root = str(options.data)
    dataset: str | None = options.dataset
    if dataset is None:
        try:
            dataset = Cache(Path(root)).dataset
        except CacheNotFoundError:  # open_dataset_cache says which command builds it
            dataset = str(config.get("dataset", "synthetic"))
    same = dataset == config.get("dataset") and dataset != "cremad"
    cache = open_dataset_cache(root, dataset)
    splits = dataset_splits(
        cache,
        dataset,
        test_speakers=config.get("test_speakers") if same else None,
        val_fraction=float(config.get("val_fraction", 0.1)) if same else 0.1,
        seed=int(config.get("seed", 0)) if same else 0,
        root=root,
    )
    check_image_size(cache, size, root)
    records: list[ClipRecord] = getattr(splits, options.split)
    if not records:
        hint = " (CREMA-D is test-only: use --split test)" if dataset == "cremad" else ""
        raise ValueError(
            f"the {options.split} split of the {dataset} cache at {root} has no clip{hint}"
        )
    return cache, dataset, records


def run_clips(
    cache: Cache,
    records: list[ClipRecord],
    evaluator: ClipEvaluator,
    options: EvaluateOptions,
    size: int,
    num_references: int,
    background: str,
) -> Aggregate:
    """Score every clip of `records`, with a progress bar of clips and frames per second."""
    from tqdm import tqdm

    from pmfs.data.clips import clip_inputs_from_cache

    aggregate = Aggregate()
    started = time.perf_counter()
    bar = tqdm(records, unit="clip", desc="evaluate", disable=not options.progress)
    for record in bar:
        reader = cache.open(record.clip)
        try:
            clip = clip_inputs_from_cache(
                reader, size, num_references, options.max_frames, background
            )
        finally:
            reader.close()
        aggregate.add(record, clip.num_frames, evaluator(clip))
        rate = aggregate.overall.frames / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix_str(f"{rate:.1f} frames/s")
    return aggregate
