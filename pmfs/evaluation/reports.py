"""Reports of `pmfs evaluate`: metrics.json, metrics.md and W&B tables.

`results_dict` is the content of `<out>/metrics.json` (overall, per_emotion, per_level,
per_clip, skipped, counts, ...); `markdown` renders it as `<out>/metrics.md`; with `--wandb` (or
inside an active W&B run) `log_to_wandb` logs one `wandb.Table` per grouping and the overall
numbers as the run's summary.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmfs.evaluation.aggregation import Aggregate, group_order
from pmfs.evaluation.scores import (
    METRICS,
    PATHS,
    OptionalMetrics,
    compute_fid,
    share_real_statistics,
)

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule

    from pmfs.evaluation.options import EvaluateOptions

log = logging.getLogger(__name__)


def results_dict(
    options: EvaluateOptions,
    model: LightningModule,
    dataset: str,
    aggregate: Aggregate,
    metrics: OptionalMetrics,
    paths: tuple[str, ...],
) -> dict[str, Any]:
    """The content of metrics.json (FID computed here, over the whole split)."""
    overall = aggregate.overall.summary()
    for path, fid in metrics.fid.items():
        share_real_statistics(metrics.fid[paths[0]], fid)
        value = compute_fid(fid)
        if value is not None:
            overall[path]["fid"] = value
    per_emotion = {
        e: g.summary() for e, g in sorted(aggregate.per_emotion.items(), key=group_order)
    }
    per_level = {k: g.summary() for k, g in sorted(aggregate.per_level.items(), key=group_order)}
    return {
        "checkpoint": str(options.ckpt),
        "model": type(model).__name__,
        "cache": str(options.data),
        "dataset": dataset,
        "split": options.split,
        "paths": {path: PATHS[path] for path in paths},
        "counts": {
            "clips": aggregate.overall.clips,
            "frames": aggregate.overall.frames,
            "per_emotion": {e: g["clips"] for e, g in per_emotion.items()},
        },
        "overall": overall,
        "per_emotion": per_emotion,
        "per_level": per_level,
        "per_clip": aggregate.per_clip if options.per_clip else {},
        "skipped": dict(metrics.skipped),
        "metrics": {name: METRICS[name] for name in METRICS},
        "settings": {"max_clips": options.max_clips, "max_frames": options.max_frames},
    }


# ----------------------------------------------------------------------------------------------
# Outputs: JSON, Markdown, W&B
# ----------------------------------------------------------------------------------------------


def write_results(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write `<out>/metrics.json` and `<out>/metrics.md`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "metrics.json", out / "metrics.md"
    json_path.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _metric_names(groups: dict[str, dict[str, Any]], path: str) -> list[str]:
    present = {name for group in groups.values() for name in group.get(path, {})}
    return [name for name in METRICS if name in present]


def markdown(results: dict[str, Any]) -> str:
    """metrics.md: the overall table, then per emotion and per (emotion, level) for each path."""
    paths = list(results["paths"])
    counts = results["counts"]
    lines = [
        f"# Evaluation of `{Path(results['checkpoint']).name}`",
        "",
        f"{results['model']} checkpoint `{results['checkpoint']}` on the {results['split']} "
        f"split of the {results['dataset']} cache `{results['cache']}`: {counts['clips']} clips, "
        f"{counts['frames']} frames.",
        "",
        *[f"- `{path}`: {text}" for path, text in results["paths"].items()],
        *[f"- {name} skipped: {reason}" for name, reason in results["skipped"].items()],
        "",
        "## Overall",
        "",
    ]
    overall = results["overall"]
    names = [n for n in METRICS if any(n in overall.get(p, {}) for p in paths)]
    lines += _table(["metric", *paths], [[n, *(overall[p].get(n) for p in paths)] for n in names])
    if not results["per_emotion"]:
        lines += ["", "The clips have no emotion labels: no per-emotion or per-level tables."]
    for grouping, title in (("per_emotion", "emotion"), ("per_level", "emotion/level")):
        groups = results[grouping]
        for path in paths if groups else ():
            cols = _metric_names(groups, path)
            rows = [[k, g["clips"], g["frames"], *(g[path].get(n) for n in cols)]
                    for k, g in groups.items()]  # fmt: skip
            heading = f"## Per {title.replace('/', ' and ')} — `{path}`"
            lines += ["", heading, "", *_table([title, "clips", "frames", *cols], rows)]
    lines += ["", "## Metrics", "", *[f"- `{n}`: {text}" for n, text in METRICS.items()], ""]
    return "\n".join(lines)


def wandb_tables(results: dict[str, Any]) -> dict[str, Any]:
    """One `wandb.Table` per grouping: rows (group, path), columns clips, frames and metrics."""
    import wandb

    paths = list(results["paths"])
    groups_of = {
        "overall": {"all": results["overall"]},
        "per_emotion": results["per_emotion"],
        "per_level": results["per_level"],
    }
    tables = {}
    for grouping, groups in groups_of.items():
        names = [
            n for n in METRICS if any(n in g.get(p, {}) for g in groups.values() for p in paths)
        ]
        rows = [
            [key, path, group["clips"], group["frames"], *(group[path].get(n) for n in names)]
            for key, group in groups.items()
            for path in paths
        ]
        columns: list[str | int] = ["group", "path", "clips", "frames", *names]
        tables[f"evaluate/{grouping}"] = wandb.Table(columns=columns, data=rows)
    return tables


def wandb_mode(out: Path, say: Callable[[str], None]) -> str:
    """`WANDB_MODE` when set, else online with W&B credentials and offline (one line) without."""
    from pmfs.loggers import MODE_ENV, wandb_credentials_source

    if env_mode := os.environ.get(MODE_ENV):
        return env_mode
    if wandb_credentials_source() is None:
        say(
            "W&B: no credentials found: logging offline; upload later with "
            f"`wandb sync {out / 'wandb' / 'offline-run-*'}`"
        )
        return "offline"
    return "online"


def log_to_wandb(
    results: dict[str, Any], options: EvaluateOptions, say: Callable[[str], None] = log.info
) -> str | None:
    """Log the tables (and the overall numbers as summary) to the active W&B run or a new one.

    A new run (only with `options.wandb`) goes to `<out>/wandb` and is finished here; an active
    run is left open. Returns the run's folder, or None when nothing was logged.
    """
    import wandb

    run = wandb.run
    owned = run is None
    if run is None:
        if not options.wandb:
            return None
        out = Path(options.out)
        out.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=options.wandb_project,
            dir=str(out),
            mode=wandb_mode(out, say),  # type: ignore[arg-type]
            job_type="evaluate",
            name=f"evaluate-{Path(options.ckpt).stem}-{results['dataset']}-{options.split}",
            config={k: results[k] for k in ("checkpoint", "model", "dataset", "split", "cache")},
        )
    run.log(wandb_tables(results))
    prefix = f"evaluate/{results['dataset']}/{options.split}"
    for path, values in results["overall"].items():
        if isinstance(values, dict):
            run.summary.update({f"{prefix}/{path}/{k}": v for k, v in values.items()})
    run_dir = str(Path(run.dir).parent)
    if owned:
        run.finish()
    return run_dir
