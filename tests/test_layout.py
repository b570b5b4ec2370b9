"""The layout shows the architecture (issue 13): commands apart from the library, layers that
import only downward, files small enough to read in one sitting, and a module map that is true.

Static checks over the source text (AST), no imports of the modules themselves.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pmfs.cli import COMMANDS

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("pmfs", "callbacks", "data_modules", "scripts")
MAX_LINES = 400
REASON = re.compile(r"^# Over 400 lines: \S")
"""A longer file says why in a comment of its first ten lines: `# Over 400 lines: <reason>`."""
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"


def source_files(*roots: str) -> list[Path]:
    """Every .py file below the given top-level folders, sorted."""
    return sorted(p for root in roots for p in (REPO_ROOT / root).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in `path` (function bodies included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def test_the_library_imports_neither_callbacks_nor_data_modules() -> None:
    """`pmfs` is the library: callbacks and data modules build on it, never the reverse."""
    arrows = [
        f"{rel(path)} → {name}"
        for path in source_files("pmfs")
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in ("callbacks", "data_modules")
    ]
    assert not arrows, "pmfs must not import callbacks/data_modules:\n" + "\n".join(arrows)


UPPER_LAYERS = ("pmfs.commands", "pmfs.inference", "pmfs.evaluation")


def test_stages_and_networks_do_not_import_commands_or_inference() -> None:
    """Training code knows neither the command line nor the inference pipeline."""
    layers = ("pmfs/stages", "pmfs/networks", "pmfs/losses", "pmfs/metrics", "pmfs/data")
    arrows = [
        f"{rel(path)} → {name}"
        for layer in layers
        for path in source_files(layer)
        for name in sorted(imported_modules(path))
        if name == "pmfs.cli" or name.startswith(UPPER_LAYERS)
    ]
    assert not arrows, "\n".join(arrows)


def test_every_command_lives_in_pmfs_commands() -> None:
    """'Where is `pmfs X`?' is answered by `pmfs/commands/X`."""
    for name, command in COMMANDS.items():
        module = command.target.split(":")[0]
        assert module.startswith("pmfs.commands."), f"`pmfs {name}` is implemented in {module}"
        path = REPO_ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


@pytest.mark.parametrize("path", source_files(*SOURCE_ROOTS), ids=rel)
def test_no_source_file_is_long_without_a_reason(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) > MAX_LINES:
        assert any(REASON.match(line) for line in lines[:10]), (
            f"{rel(path)} has {len(lines)} lines (> {MAX_LINES}): split it along its seams, or "
            "say why not in its first lines: `# Over 400 lines: <reason>`"
        )


PATH = re.compile(r"`((?:pmfs|callbacks|data_modules)(?:/[\w.]+)*/?)`")
FILE = re.compile(r"`(\w+\.py)`")


def mapped_paths(text: str) -> set[str]:
    """Every `pmfs/...`, `callbacks/...`, `data_modules/...` path written in backticks, plus
    `<package>/<file>.py` for a line that names a package and, after it, bare `file.py` names."""
    named: set[str] = set()
    for line in text.splitlines():
        paths = [m.rstrip("/") for m in PATH.findall(line)]
        named.update(paths)
        packages = [p for p in paths if not p.endswith(".py")]
        if len(packages) == 1:
            named.update(f"{packages[0]}/{name}" for name in FILE.findall(line))
    return named


def test_the_architecture_map_names_every_module() -> None:
    """docs/architecture.md names every module (packages by their folder, `__init__` implied)."""
    named = mapped_paths(ARCHITECTURE.read_text(encoding="utf-8"))
    missing = []
    for path in source_files("pmfs", "callbacks", "data_modules"):
        module = rel(path)
        if path.name == "__init__.py":
            module = rel(path.parent)
        if module not in named:
            missing.append(module)
    assert not missing, "docs/architecture.md does not name: " + ", ".join(missing)


def test_every_path_in_the_architecture_map_exists() -> None:
    named = mapped_paths(ARCHITECTURE.read_text(encoding="utf-8"))
    assert named, "the map names no module"
    stale = sorted(p for p in named if not (REPO_ROOT / p).exists())
    assert not stale, "docs/architecture.md names paths that do not exist: " + ", ".join(stale)
