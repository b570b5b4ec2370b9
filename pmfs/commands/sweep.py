"""`pmfs sweep FILE`: run every variant of a W&B sweep file here, one after the other.

The file is a standard W&B sweep configuration (`wandb sweep FILE` + `wandb agent` run it where a
W&B server is reachable); this command expands the same file without a server:

- the grid is W&B's: parameters sorted by name, the cartesian product of their `values` (the last
  parameter changes fastest), `value` constants and `int_uniform` ranges as W&B treats them;
- each variant's command is built like `wandb agent` builds it (wandb 0.31,
  `wandb/wandb_agent.py::Agent._command_run`): `command` (default `${env} ${interpreter}
  ${program} ${args}`), whole-token macros `${env}` → `/usr/bin/env`, `${interpreter}` →
  `python`, `${program}`, `${args}` → `--name=value` per parameter (sorted by name), and the
  other `${args_*}` forms; `${envvar:NAME}` inside a token; an unknown macro expands to nothing;
- to run it here, a leading `/usr/bin/env` is dropped and `pmfs` / `python` become this
  interpreter (`sys.executable -m pmfs`), so the variant runs in the same environment;
- each run gets `WANDB_RUN_GROUP=<sweep>` and `WANDB_TAGS=<variant>` (read by
  `pmfs.loggers.WandbLogger`); a failing variant is recorded and the sweep goes on.

Only `method: grid` runs here (random and bayes need W&B's scheduler: use `wandb agent`).
This module imports no torch, lightning or wandb.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pmfs.options import add_options, option, options_from_args

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
ENVVAR_MACRO = re.compile(r"\$\{envvar\:([A-Z0-9_]*)\}")  # wandb's SWEEP_COMMAND_ENV_VAR_REGEX
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


class SweepError(ValueError):
    """A sweep file that `pmfs sweep` cannot expand (the message names the file and the fix)."""


@dataclass(frozen=True)
class Variant:
    """One run of a sweep.

    Attributes:
        params: the run's parameters, by name in W&B's (sorted) order, constants included.
        label: a short name of the swept values (`no_warping`, `lr=0.001+no_warping`), its tag.
        command: the command `wandb agent` would run, e.g. `["/usr/bin/env", "pmfs", "fit", ...]`.
    """

    params: dict[str, Any]
    label: str
    command: list[str]


@dataclass(frozen=True)
class Outcome:
    """How a variant's run ended: its exit code and wall-clock duration in seconds."""

    variant: Variant
    returncode: int
    seconds: float


def load_sweep(path: Path) -> dict[str, Any]:
    """Read and check a sweep file; raises `FileNotFoundError` / `SweepError` naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist")
    sweep = yaml.safe_load(path.read_text())
    if not isinstance(sweep, dict) or not isinstance(sweep.get("parameters"), dict):
        raise SweepError(f"{path}: a sweep file is a mapping with a `parameters` mapping")
    method = sweep.get("method", "grid")
    if method != "grid":
        raise SweepError(
            f"{path}: method {method!r} needs W&B's scheduler; run it with `wandb sweep {path}`"
            " and `wandb agent`, or use `method: grid` for `pmfs sweep`"
        )
    if "program" not in sweep and "command" not in sweep:
        raise SweepError(f"{path}: give `program` (and optionally `command`) as for `wandb sweep`")
    return sweep


def _parameter_values(name: str, spec: Any) -> tuple[list[Any], bool]:
    """The grid values of one parameter and whether it is swept (False: a constant)."""
    if not isinstance(spec, dict):
        raise SweepError(f"parameter {name!r}: expected a mapping like {{values: [...]}}")
    if "values" in spec and not spec.get("probabilities"):
        return list(spec["values"]), True
    if "value" in spec:
        return [spec["value"]], False
    if spec.get("distribution") == "int_uniform" and {"min", "max"} <= spec.keys():
        return list(range(int(spec["min"]), int(spec["max"]) + 1)), True
    raise SweepError(
        f"parameter {name!r}: {spec} is not a grid parameter; grid search takes `values`,"
        " `value` or `distribution: int_uniform` with `min`/`max` (nested `parameters` too are"
        " not expanded here)"
    )


def expand_grid(parameters: Mapping[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """W&B's grid: every combination of the parameters' values, in W&B's order.

    Args:
        parameters: the `parameters` section of a sweep file.

    Returns:
        One `(params, swept_names)` per run: `params` maps every parameter, sorted by name, to its
        value; `swept_names` are the parameters with more than a constant.
    """
    names = sorted(parameters)
    grids = {name: _parameter_values(name, parameters[name]) for name in names}
    swept = [name for name in names if grids[name][1]]
    runs = []
    for values in itertools.product(*(grids[name][0] for name in names)):
        runs.append((dict(zip(names, values, strict=True)), swept))
    return runs


def command_args(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """The `${args...}` macro values wandb's agent derives from a run's parameters.

    Same formats as `wandb.sdk.launch.sweeps.utils.create_sweep_command_args` (wandb 0.31).
    """
    flags = [f"--{name}={value}" for name, value in params.items()]
    no_booleans = [
        f"--{name}" if value is True else f"--{name}={value}"
        for name, value in params.items()
        if value is not False
    ]
    return {
        "args": flags,
        "args_no_equals": [token for n, v in params.items() for token in (f"--{n}", str(v))],
        "args_no_hyphens": [flag[2:] for flag in flags],
        "args_no_boolean_flags": no_booleans,
        "args_json": [json.dumps(dict(params))],
        "args_append_hydra": ["+" + flag[2:] for flag in flags],
        "args_override_hydra": ["++" + flag[2:] for flag in flags],
    }


def expand_command(
    command: Sequence[Any] | None,
    program: str | None,
    params: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv that `wandb agent` runs for one run (see the module docstring).

    Args:
        command: the sweep file's `command` (None: W&B's default).
        program: the sweep file's `program`.
        params: the run's parameters (name → value).
        environ: environment for `${envvar:NAME}` (default `os.environ`).
    """
    environ = os.environ if environ is None else environ
    macros = command_args(params)
    if any(str(token) == "${args_json_file}" for token in command or ()):
        raise SweepError("`${args_json_file}` needs the agent's run folder; use `${args_json}`")
    macros.update(env=["/usr/bin/env"], interpreter=["python"])
    macros["program"] = [program] if program else []
    argv: list[str] = []
    for token in command or DEFAULT_COMMAND:
        text = ENVVAR_MACRO.sub(lambda match: environ.get(match[1], match[1]), str(token))
        if text.startswith("${") and text.endswith("}"):
            argv += macros.get(text[2:-1]) or []
        else:
            argv.append(text)
    return argv


def local_command(command: Sequence[str]) -> list[str]:
    """The agent's argv made to run with this interpreter: `pmfs ...` → `python -m pmfs ...`."""
    argv = display_command(command)
    if argv[:1] == ["pmfs"]:
        return [sys.executable, "-m", "pmfs", *argv[1:]]
    if argv[:1] and argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


def display_command(command: Sequence[str]) -> list[str]:
    """The agent's argv as a user types it: without the leading `/usr/bin/env`."""
    return list(command[1:] if command[:1] == ["/usr/bin/env"] else command)


def variant_label(params: Mapping[str, Any], swept: Sequence[str]) -> str:
    """Tag of a variant: config files by stem, other values as `name=value`, joined by `+`."""
    parts = []
    for name in swept:
        value = params[name]
        if isinstance(value, str) and value.endswith(CONFIG_SUFFIXES):
            parts.append(Path(value).stem)
        else:
            parts.append(f"{name}={value}")
    return "+".join(parts).replace(",", ";") or "default"  # WANDB_TAGS is comma-separated


def variants(sweep: Mapping[str, Any], extra_args: Sequence[str] = ()) -> list[Variant]:
    """Every run of a (checked) sweep, in W&B's order; `extra_args` end every command."""
    program = sweep.get("program")
    runs = []
    for params, swept in expand_grid(sweep["parameters"]):
        command = expand_command(sweep.get("command"), program, params)
        runs.append(Variant(params, variant_label(params, swept), [*command, *extra_args]))
    return runs


def sweep_group(path: Path, sweep: Mapping[str, Any], group: str | None = None) -> str:
    """The W&B group of a sweep's runs: `group`, else `<name or file stem>-<YYYYmmdd-HHMMSS>`."""
    if group:
        return group
    return f"{sweep.get('name') or path.stem}-{datetime.now():%Y%m%d-%H%M%S}"


def run_variant(variant: Variant, group: str) -> Outcome:
    """Run one variant here (output streamed to this terminal); never raises on its failure."""
    from pmfs.loggers import own_wandb_service  # lightning: imported only when runs start

    env = own_wandb_service(os.environ) | {"WANDB_RUN_GROUP": group, "WANDB_TAGS": variant.label}
    argv = local_command(variant.command)
    start = time.perf_counter()
    try:
        returncode = subprocess.run(argv, env=env, check=False).returncode
    except OSError as error:  # e.g. the program does not exist: record it, go on
        print(f"pmfs sweep: cannot run {shlex.join(argv)}: {error}", file=sys.stderr, flush=True)
        returncode = 127
    return Outcome(variant, returncode, time.perf_counter() - start)


def format_summary(outcomes: Sequence[Outcome], group: str) -> str:
    """A plain-text table: variant, exit code, duration."""
    width = max([len("variant"), *(len(outcome.variant.label) for outcome in outcomes)])
    lines = [f"sweep {group}: {len(outcomes)} run(s)", f"{'variant':<{width}}  exit  duration"]
    for outcome in outcomes:
        status = "ok" if outcome.returncode == 0 else "FAILED"
        lines.append(
            f"{outcome.variant.label:<{width}}  {outcome.returncode:>4}  "
            f"{outcome.seconds:>7.1f} s  {status}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class SweepOptions:
    """Options of `pmfs sweep` (the arguments after `--` are not options: they end every run)."""

    file: Path = option(help="the sweep file, e.g. experiments/sweeps/x.yaml", positional=True)
    dry_run: bool = option(False, help="print one `pmfs fit ...` command per variant")
    max_runs: int | None = option(None, help="run only the first N variants")
    group: str | None = option(None, help="W&B group of the runs (default: <sweep>-<timestamp>)")


def build_parser() -> argparse.ArgumentParser:
    """Options of `pmfs sweep`."""
    parser = argparse.ArgumentParser(
        prog="pmfs sweep",
        description=(
            "Run every variant of a W&B sweep file (method: grid) here, one after the other, "
            "as `wandb agent` would: each run is grouped by the sweep and tagged by its variant. "
            "Arguments after `--` are added to every run (e.g. -- --trainer.max_epochs=1)."
        ),
    )
    add_options(parser, SweepOptions)
    return parser


def main(argv: Sequence[str]) -> int:
    """`pmfs sweep FILE [--dry-run] [--max-runs N] [--group G] [-- args for every run]`."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    options = options_from_args(SweepOptions, build_parser().parse_args(argv[:split]))
    extra = argv[split + 1 :]
    if options.max_runs is not None and options.max_runs < 1:
        print(f"pmfs sweep: --max-runs {options.max_runs}: give a positive number", file=sys.stderr)
        return 2
    try:
        sweep = load_sweep(options.file)
        runs = variants(sweep, extra)[: options.max_runs]
    except (OSError, SweepError, yaml.YAMLError) as error:
        print(f"pmfs sweep: {error}", file=sys.stderr)
        return 2
    if options.dry_run:
        for variant in runs:
            print(shlex.join(display_command(variant.command)))
        return 0
    group = sweep_group(options.file, sweep, options.group)
    outcomes = []
    for index, variant in enumerate(runs, start=1):
        command = shlex.join(display_command(variant.command))
        print(f"pmfs sweep: [{index}/{len(runs)}] {variant.label}: {command}", flush=True)
        outcomes.append(run_variant(variant, group))
    print(format_summary(outcomes, group), flush=True)
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1
