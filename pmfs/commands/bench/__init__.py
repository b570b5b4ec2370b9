"""`pmfs bench`: the speed tables of DESIGN §6, measured, never asserted.

Sub-commands (one module each, registered in `SUBCOMMANDS`):

- `loader` (`loader.py`): samples/s of the training loader from a cache, landmark-only and
  stage-3 samples, with 0, 1 and 2 DataLoader workers, plus a profile of a stage-3 sample.
- `train` (`train.py`): one training step of each stage and of the whole `PMFS` system on a
  synthetic batch; median ms/step, samples/s, peak memory.
- `infer` (`infer.py`): `PMFS.generate_clip` on a synthetic clip at 128² and 256²: frames/s,
  FLOPs per frame of the whole chain and of the renderer, peak memory.
- `all` (also `pmfs bench` with no sub-command): the three above, one report, one JSON.
- `faces` (`faces.py`): frames/s per worker of the dlib landmark path at 256², 720p and 1080p,
  on real frames of the talking-man sample (else scikit-image's astronaut); no model.
- `memory` (`memory.py`): peak RSS of a real `pmfs infer` process (a checkpoint, a face) at
  several audio lengths, e.g. 10 s and 60 s: memory must not grow with the audio (issue 16).

The model comes from a `pmfs fit` config (`--config`, default experiments/full.yaml) through the
real CLI parser (`model.py`). `--device cpu|cuda`, `--precision 32|bf16-mixed`; warm-up
iterations are not timed, times are the median of `--repeats`. Peak memory: the process's RSS
sampled every 5 ms (and its rise over the RSS before the run), and
`torch.cuda.max_memory_allocated` on a GPU (`harness.py`). Every sub-command prints a table and,
with `--json PATH`, writes its numbers as JSON together with the machine (CPU model, cores, torch
version, GPU).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pmfs.commands.bench.faces import FacesOptions, faces_payload, faces_table
from pmfs.commands.bench.harness import machine, report
from pmfs.commands.bench.infer import InferOptions, infer_payload, infer_table
from pmfs.commands.bench.loader import LoaderOptions, loader_payload, loader_table
from pmfs.commands.bench.memory import MemoryOptions, memory_payload, memory_table
from pmfs.commands.bench.train import TrainOptions, train_payload, train_table
from pmfs.options import add_options, option, options_from_args

Part = Literal["loader", "train", "infer"]
PARTS: tuple[Part, ...] = ("loader", "train", "infer")


@dataclass(frozen=True)
class AllOptions(InferOptions, TrainOptions):
    """Options of `pmfs bench [all]`: those of train and infer, the loader's as one string."""

    loader_args: str = option(
        "", help='options for the loader part, as for `pmfs bench loader` (e.g. "--cache DIR")'
    )
    skip: tuple[Part, ...] = option((), help="parts to leave out")


def all_payload(options: AllOptions) -> dict[str, Any] | None:
    """Every benchmark in turn; None when one of them cannot run (logged)."""
    payload: dict[str, Any] = {"benchmark": "all", "machine": machine()}
    if "loader" not in options.skip:
        argv = ["loader", *shlex.split(options.loader_args)]
        payload["loader"] = loader_payload(
            options_from_args(LoaderOptions, build_parser().parse_args(argv))
        )
    measures: dict[str, Callable[[AllOptions], dict[str, Any] | None]] = {
        "train": train_payload,
        "infer": infer_payload,
    }
    for name, measure in measures.items():
        if name not in options.skip:
            payload[name] = measure(options)
    if any(payload.get(name, {}) is None for name in PARTS):
        return None
    return payload


def all_table(payload: dict[str, Any]) -> str:
    """The tables of the parts that ran, one after the other."""
    tables = {"loader": loader_table, "train": train_table, "infer": infer_table}
    return "\n\n".join(tables[name](payload[name]) for name in PARTS if name in payload)


@dataclass(frozen=True)
class Benchmark:
    """A sub-command of `pmfs bench`.

    Attributes:
        options: its options dataclass (also its parser).
        measure: options → the JSON document, None when it cannot run (logged).
        table: the JSON document → the Markdown table printed.
        help: its help line.
    """

    options: type
    measure: Callable[[Any], dict[str, Any] | None]
    table: Callable[[dict[str, Any]], str]
    help: str


SUBCOMMANDS: dict[str, Benchmark] = {
    "all": Benchmark(
        AllOptions,
        all_payload,
        all_table,
        "loader, train and infer in one table (the default)",
    ),
    "loader": Benchmark(
        LoaderOptions,
        loader_payload,
        loader_table,
        "samples/s of the data loader (DESIGN §6)",
    ),
    "train": Benchmark(
        TrainOptions,
        train_payload,
        train_table,
        "training step time and peak memory of each stage and the whole system",
    ),
    "infer": Benchmark(
        InferOptions,
        infer_payload,
        infer_table,
        "whole-chain frames/s, FLOPs per frame and peak memory at 128² and 256²",
    ),
    "faces": Benchmark(
        FacesOptions,
        faces_payload,
        faces_table,
        "frames/s per worker of the dlib landmark path at 256², 720p and 1080p",
    ),
    "memory": Benchmark(
        MemoryOptions,
        memory_payload,
        memory_table,
        "peak RSS of a real `pmfs infer` run at several audio lengths (bounded memory)",
    ),
}
"""name → the benchmark."""


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs bench` parser with one sub-parser per benchmark."""
    parser = argparse.ArgumentParser(
        prog="pmfs bench",
        description=__doc__.splitlines()[0] + " Without a sub-command: `all`.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}"
    )
    for name, bench in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=bench.help, description=bench.help)
        add_options(sub, bench.options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pmfs bench [<benchmark>] ...` (no benchmark named: `all`); returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["all", *argv]
    args = build_parser().parse_args(argv)
    bench = SUBCOMMANDS[args.command]
    options: Any = options_from_args(bench.options, args)
    return report(bench.measure(options), bench.table, options.json)
