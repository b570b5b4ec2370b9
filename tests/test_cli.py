"""The `pmfs` entry point: dispatch, lazy imports, and LightningCLI behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pmfs.cli import COMMANDS, LIGHTNING_SUBCOMMANDS, main

BORING = "lightning.pytorch.demos.boring_classes"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pmfs", *args], capture_output=True, text=True, timeout=300
    )


def test_help_lists_every_command() -> None:
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for name in (*LIGHTNING_SUBCOMMANDS, *COMMANDS):
        assert f"  {name} " in out.stdout


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from pmfs.cli import main; main(['--help']);"
        "heavy = [m for m in ('torch', 'lightning', 'librosa', 'av', 'numpy') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_unknown_command_fails_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_tool_command_loads_and_has_help(name: str) -> None:
    func = COMMANDS[name].load()
    with pytest.raises(SystemExit) as exit_info:
        func(["--help"])
    assert exit_info.value.code == 0


def _write(path: Path, config: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def boring_config(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "base.yaml",
        {
            "seed_everything": 3,
            "trainer": {
                "max_epochs": 2,
                "fast_dev_run": True,
                "logger": False,
                "enable_checkpointing": False,
                "enable_progress_bar": False,
                "default_root_dir": str(tmp_path / "runs"),
            },
            "model": {"class_path": f"{BORING}.BoringModel"},
            "data": {"class_path": f"{BORING}.BoringDataModule"},
        },
    )


def test_fit_runs_a_lightning_module_from_yaml(boring_config: Path) -> None:
    out = _run("fit", "-c", str(boring_config))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "max_steps=1` reached" in out.stderr + out.stdout


def test_configs_stack_and_interpolate(boring_config: Path, tmp_path: Path) -> None:
    overlay = _write(
        tmp_path / "overlay.yaml",
        {"trainer": {"max_epochs": 7, "max_steps": "${trainer.max_epochs}"}},
    )
    out = _run("fit", "-c", str(boring_config), "-c", str(overlay), "--print_config")
    assert out.returncode == 0, out.stderr[-3000:]
    printed = yaml.safe_load(out.stdout)
    assert printed["trainer"]["max_epochs"] == 7
    assert printed["trainer"]["max_steps"] == 7  # resolved after merging
    assert printed["seed_everything"] == 3  # kept from the base file
    assert printed["model"]["class_path"].endswith("BoringModel")


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--model.init_args.not_a_parameter", "3", "not_a_parameter"),
        ("--trainer.not_a_trainer_flag", "1", "not_a_trainer_flag"),
        ("--trainer.max_epochs", "many", "max_epochs"),
    ],
)
def test_bad_keys_fail_before_anything_runs(
    boring_config: Path, flag: str, value: str, named: str
) -> None:
    out = _run("fit", "-c", str(boring_config), flag, value)
    assert out.returncode != 0
    assert named in out.stderr
    assert "Epoch" not in out.stderr  # failed at parse time: no training started
