"""`pmfs sweep`: W&B's grid and command expansion, the shipped ablation sweep, and real local
sweeps of tiny stage-1 configs whose offline W&B runs are read back."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pmfs.cli import main as pmfs_main
from pmfs.commands.sweep import (
    SweepError,
    SweepOptions,
    build_parser,
    command_args,
    expand_command,
    expand_grid,
    load_sweep,
    local_command,
    main,
    variants,
)
from pmfs.options import options_from_args, parser_fields

wandb = pytest.importorskip("wandb")
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args  # noqa: E402
from wandb_reader import offline_runs, run_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ABLATIONS = REPO / "experiments" / "sweeps" / "ablations.yaml"
CONFIGS = Path("tests") / "configs"  # sweep files name configs relative to the repository root
WANDB_ENV = ("WANDB_API_KEY", "WANDB_MODE", "WANDB_RUN_GROUP", "WANDB_TAGS", "NETRC", "WANDB_DIR")


def test_grid_follows_wandb_order() -> None:
    """Parameters sorted by name, last one fastest; constants and int ranges as W&B's grid."""
    parameters = {
        "b": {"values": ["x", "y"]},
        "a": {"distribution": "int_uniform", "min": 1, "max": 2},
        "c": {"value": 0.5},
    }
    runs = expand_grid(parameters)
    assert [params for params, _ in runs] == [
        {"a": 1, "b": "x", "c": 0.5},
        {"a": 1, "b": "y", "c": 0.5},
        {"a": 2, "b": "x", "c": 0.5},
        {"a": 2, "b": "y", "c": 0.5},
    ]
    assert runs[0][1] == ["a", "b"]  # the swept parameters
    with pytest.raises(SweepError, match="lr"):
        expand_grid({"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}})


def test_args_macros_match_wandb() -> None:
    params = {"config": "experiments/x.yaml", "flag": True, "off": False, "lr": 0.001, "n": None}
    theirs = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    ours = command_args(params)
    for key, value in ours.items():
        assert value == theirs[key], key
    assert json.loads(ours["args_json"][0]) == params


def test_command_expansion_like_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"config": "b.yaml", "seed": 3}
    assert expand_command(None, "train.py", params) == [
        "/usr/bin/env",
        "python",
        "train.py",
        "--config=b.yaml",
        "--seed=3",
    ]
    monkeypatch.setenv("DATA_ROOT", "/data")
    command = ["${env}", "${program}", "fit", "--root=${envvar:DATA_ROOT}", "${nope}", "${args}"]
    argv = expand_command(command, "pmfs", params)
    assert argv == ["/usr/bin/env", "pmfs", "fit", "--root=/data", "--config=b.yaml", "--seed=3"]
    assert local_command(argv)[:3] == [sys.executable, "-m", "pmfs"]
    assert local_command(["/usr/bin/env", "python", "x.py"]) == [sys.executable, "x.py"]


def test_non_grid_and_bad_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "bayes.yaml"
    sweep.write_text(yaml.safe_dump({"method": "bayes", "program": "pmfs", "parameters": {}}))
    with pytest.raises(SweepError, match="wandb agent"):
        load_sweep(sweep)
    assert main([str(sweep)]) == 2
    assert "bayes" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_parser_is_the_options_dataclass() -> None:
    parser = build_parser()
    assert parser_fields(parser) == {f.name for f in dataclasses.fields(SweepOptions)}
    options = options_from_args(SweepOptions, parser.parse_args(["x.yaml", "--max-runs", "2"]))
    assert options == SweepOptions(file=Path("x.yaml"), max_runs=2)


def test_help_imports_nothing_heavy() -> None:
    import subprocess

    code = (
        "import sys; from pmfs.cli import main\n"
        "try: main(['sweep', '--help'])\n"
        "except SystemExit as e: assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'lightning', 'numpy', 'wandb') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_shipped_ablation_sweep_is_a_wandb_grid() -> None:
    sweep = load_sweep(ABLATIONS)
    assert sweep["metric"] == {"name": "val/mouth_psnr", "goal": "maximize"}
    runs = variants(sweep)
    assert [run.label for run in runs] == [
        "full",
        "ref_random",
        "no_warping",
        "no_background",
        "mask_content_hull",
        "full_resolution",
        "no_mouth_detail",
        "no_mouth_gan",
    ]
    assert runs[2].command == [
        "/usr/bin/env",
        "pmfs",
        "fit",
        "--config=experiments/full.yaml",
        "--config=experiments/ablations/no_warping.yaml",
    ]


def test_shipped_ablation_dry_run_commands_parse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (REPO / "experiments" / "full.yaml").is_file():
        pytest.skip("experiments/full.yaml is not written yet")
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    assert main([str(ABLATIONS), "--dry-run", "--", "--trainer.max_epochs=1"]) == 0
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 8
    printed = []
    for line in commands:
        argv = shlex.split(line)
        assert argv[:2] == ["pmfs", "fit"] and argv[-1] == "--trainer.max_epochs=1"
        printed.append(_print_config(argv[1:], capsys))
        assert printed[-1]["trainer"]["max_epochs"] == 1
    # the `full` variant stacks full.yaml twice: the same config as full.yaml alone
    alone = _print_config(["fit", "-c", "experiments/full.yaml"], capsys)
    assert printed[0] == {**alone, "trainer": {**alone["trainer"], "max_epochs": 1}}
    assert all(config != printed[0] for config in printed[1:])  # each overlay changes something


def _print_config(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The merged config `pmfs <args> --print_config` prints (it exits 0)."""
    with pytest.raises(SystemExit) as exit_info:
        pmfs_main([*args, "--print_config"])
    assert exit_info.value.code in (0, None), args
    config: dict[str, Any] = yaml.safe_load(capsys.readouterr().out)
    return config


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No W&B credentials or variables (runs go offline by themselves), cwd = repository."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / "wandb"))
    for name in WANDB_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(REPO)


def test_tiny_sweep_runs_groups_and_tags(
    tiny_synth_root: Path,
    tmp_path: Path,
    offline_env: None,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as if this process had a W&B run open: its service must not adopt the variants' runs
    monkeypatch.setenv("WANDB_SERVICE", "2-1-tcp-localhost-9")
    extra = [f"--data.init_args.root={tiny_synth_root}"]
    extra += [f"--trainer.logger.init_args.save_dir={tmp_path}"]
    args = [str(CONFIGS / "sweep_tiny.yaml"), "--max-runs", "2", "--group", "tiny-1", "--", *extra]
    assert main(args) == 0
    out = capfd.readouterr().out
    assert "sweep tiny-1: 2 run(s)" in out and "FAILED" not in out
    infos = sorted((run_info(run) for run in offline_runs(tmp_path)), key=lambda info: info.name)
    assert [info.group for info in infos] == ["tiny-1", "tiny-1"]
    assert [info.tags for info in infos] == [["sweep_variant_a"], ["sweep_variant_b"]]
    assert [info.name for info in infos] == [
        "sweep_base+sweep_variant_a",
        "sweep_base+sweep_variant_b",
    ]
    # each run got its variant: the full config is in the run
    depth = [info.config["model"]["init_args"]["network"]["init_args"]["depth"] for info in infos]
    assert depth == [2, 1]


def test_failing_variants_are_reported_and_the_sweep_goes_on(
    tmp_path: Path, offline_env: None, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main([str(CONFIGS / "sweep_failing.yaml")]) == 1
    out = capfd.readouterr().out
    summary = out[out.index("sweep failing-") :].splitlines()
    assert len(summary) == 4  # title, header, one row per variant
    for row, label in zip(summary[2:], ("sweep_broken", "no_such_overlay"), strict=True):
        label_, code, *_ = row.split()
        assert label_ == label and int(code) != 0 and row.endswith("FAILED")
