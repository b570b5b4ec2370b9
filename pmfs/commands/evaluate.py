"""`pmfs evaluate`: DESIGN §5 metrics of a checkpoint on a split, overall, per emotion and level.

The options are `pmfs.evaluation.options.EvaluateOptions` (the parser is built from its fields);
the evaluation is `pmfs.evaluation.run.evaluate`. Outputs: `<out>/metrics.json`,
`<out>/metrics.md` and, with `--wandb` (or inside an active W&B run), one `wandb.Table` per
grouping. This module imports no torch at import time (`pmfs evaluate --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence

from pmfs.evaluation.options import WEIGHTS, EvaluateOptions
from pmfs.inference.options import TemporalOptions
from pmfs.options import add_options, options_from_args


def build_parser() -> argparse.ArgumentParser:
    """The parser of `pmfs evaluate` (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="pmfs evaluate",
        description="Metrics of a checkpoint on a split (DESIGN §5), overall, per emotion and "
        "per level, from audio (the whole chain) and from ground-truth landmarks (the renderer): "
        "<out>/metrics.json, <out>/metrics.md, W&B tables.",
    )
    names = [field.name for field in dataclasses.fields(EvaluateOptions)]
    first, last = names.index(WEIGHTS[0]), names.index(WEIGHTS[-1])  # in the usage line's order
    add_options(parser, EvaluateOptions, exclude=_all_but(names[:first]))
    weights = parser.add_argument_group("optional metrics (skipped when the weights are absent)")
    add_options(weights, EvaluateOptions, exclude=_all_but(WEIGHTS))
    add_options(parser, EvaluateOptions, exclude=_all_but(names[last + 1 :]))
    temporal = parser.add_argument_group("the predicted landmarks' post-processing (as pmfs infer)")
    add_options(temporal, TemporalOptions)
    return parser


def _all_but(kept: Sequence[str]) -> tuple[str, ...]:
    """The options' field names other than `kept` (what `add_options` should leave out)."""
    return tuple(f.name for f in dataclasses.fields(EvaluateOptions) if f.name not in kept)


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs evaluate ...`: evaluate, write the outputs, print the overall table. Returns 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        temporal = options_from_args(TemporalOptions, args)
        options = options_from_args(EvaluateOptions, args, temporal=temporal)
    except ValueError as err:
        parser.error(str(err))
    from pmfs.evaluation.reports import log_to_wandb, markdown
    from pmfs.evaluation.run import evaluate

    results = evaluate(options, say=print)
    run_dir = log_to_wandb(results, options, say=print)
    overall = markdown(results).split("## Overall\n\n", 1)[1].split("\n\n", 1)[0]
    print(overall)
    print(f"wrote {options.out / 'metrics.json'} and {options.out / 'metrics.md'}")
    if run_dir is not None:
        print(f"W&B tables logged to {run_dir}")
    return 0
