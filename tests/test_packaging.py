"""Packaging: pins, the conda environment, the console script, and the CI/README contract."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import sync_environment  # noqa: E402


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _constraints() -> dict[str, str]:
    pins = sync_environment.pins(ROOT / "constraints.txt")
    return {_name(p): p.split("==", 1)[1] for p in pins}


def test_every_constraint_is_an_exact_pin() -> None:
    for line in sync_environment.pins(ROOT / "constraints.txt"):
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.\-+]+", line), line


def test_direct_dependencies_are_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pinned = _constraints()
    missing = [req for req in direct if _name(req) not in pinned]
    assert not missing, f"not pinned in constraints.txt: {missing} (run `make constraints`)"
    assert pinned["torch"] == "2.13.0"


def test_environment_yml_lists_the_same_pins() -> None:
    text = (ROOT / "environment.yml").read_text()
    expected = sync_environment.render(sync_environment.pins(ROOT / "constraints.txt"))
    assert text == expected, "environment.yml drifted from constraints.txt: run `make constraints`"
    assert "python=3.11" in text


def test_installed_versions_match_the_pins() -> None:
    wrong = {}
    for name, version in _constraints().items():
        try:
            installed = md.version(name).split("+")[0]
        except md.PackageNotFoundError:
            wrong[name] = "not installed"
            continue
        if installed != version:
            wrong[name] = f"{installed} installed, {version} pinned"
    assert not wrong, f"the environment does not match constraints.txt: {wrong}"


@pytest.mark.parametrize("package", ["pmfs", "data_modules", "callbacks"])
def test_packages_import(package: str) -> None:
    assert importlib.import_module(package).__doc__


def test_console_script_is_installed() -> None:
    scripts = {ep.name: ep.value for ep in md.entry_points(group="console_scripts")}
    assert scripts.get("pmfs") == "pmfs.cli:main"
    exe = Path(sys.executable).with_name("pmfs")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("pmfs ")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    commands = [line.strip() for line in ci.splitlines() if line.strip() and line[0] != "#"]
    assert "make test" in commands
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.M)
    assert "torch==$(TORCH_VERSION)" in makefile and "-c constraints.txt" in makefile
