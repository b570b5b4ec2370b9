"""The documentation stays true: commands, config paths and links it names exist, and the
architecture diagram is reproduced by its script."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml
from PIL import Image

from pmfs.cli import COMMANDS, LIGHTNING_SUBCOMMANDS

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
DIAGRAM = REPO_ROOT / "docs" / "images" / "architecture.png"
SCRIPTS = REPO_ROOT / "scripts"

# `pmfs <command>` not preceded by a path or module character ("pmfs/cli.py", "pmfs.cli" and
# "-m pmfs ..." prose are not commands); `pmfs fit|validate|test` names three.
COMMAND = re.compile(r"(?<![\w./-])pmfs ([a-z][a-z0-9_-]*(?:\|[a-z][a-z0-9_-]*)*)")
EXPERIMENT = re.compile(r"experiments/[\w./*<>{}-]*?\.ya?ml")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def load_script(monkeypatch: pytest.MonkeyPatch, name: str = "draw_architecture") -> ModuleType:
    """scripts/<name>.py as a module. scripts/ is not a package: its modules import each other
    as top-level modules, found on the path as when a script runs (`python scripts/<name>.py`)."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def mentioned_commands(text: str) -> set[str]:
    """Every command name that follows `pmfs ` in `text`."""
    return {name for match in COMMAND.finditer(text) for name in match.group(1).split("|")}


def test_command_pattern_reads_commands_not_paths() -> None:
    text = (
        "run `pmfs fit|validate|test -c x` or pmfs infer; see pmfs/cli.py, pmfs.cli, -m pmfs.data"
    )
    assert mentioned_commands(text) == {"fit", "validate", "test", "infer"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_pmfs_command_in_the_docs_is_registered(doc: Path) -> None:
    """Each `pmfs <cmd>` of the docs is a LightningCLI sub-command or an entry of COMMANDS."""
    registered = set(LIGHTNING_SUBCOMMANDS) | set(COMMANDS)
    unknown = mentioned_commands(doc.read_text(encoding="utf-8")) - registered
    assert not unknown, (
        f"{doc.relative_to(REPO_ROOT)} names `pmfs` commands that pmfs.cli does not register: "
        f"{sorted(unknown)}; register them in pmfs.cli.COMMANDS or fix the docs"
    )


def test_the_docs_name_commands_at_all() -> None:
    """Guards the pattern: the docs mention training and data commands."""
    found = set().union(*(mentioned_commands(d.read_text(encoding="utf-8")) for d in DOCS))
    assert {"fit", "data", "sweep"} <= found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_experiment_config_in_the_docs_exists(doc: Path) -> None:
    """Each experiments/*.yaml path exists, a glob matches a file; `<x>` is a placeholder."""
    missing = []
    for path in sorted(set(EXPERIMENT.findall(doc.read_text(encoding="utf-8")))):
        if "<" in path or "{" in path:
            continue
        if not any(REPO_ROOT.glob(path)):
            missing.append(path)
    assert not missing, f"{doc.relative_to(REPO_ROOT)} names configs that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_in_the_docs_resolve(doc: Path) -> None:
    """Markdown links to files of the repository point at files that exist."""
    text = doc.read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in targets if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(REPO_ROOT)} links to missing files: {missing}"


def test_architecture_doc_shows_the_diagram() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "](images/architecture.png)" in text


def test_diagram_plots_the_curriculum_of_full_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ramps drawn in the diagram are read from experiments/full.yaml, not copied."""
    plot = load_script(monkeypatch, "curriculum_plot")
    config = yaml.safe_load((REPO_ROOT / "experiments" / "full.yaml").read_text())
    curriculum = config["model"]["init_args"]["curriculum"]
    ramps = (curriculum["mouth_to_face"], curriculum["renderer"])
    expected = [(r["start"], r["end"], r["final"]) for r in ramps]
    assert list(plot.read_curriculum().values()) == expected
    curriculum["renderer"]["end"] = 123  # another config, another ramp
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    assert list(plot.read_curriculum(other).values())[1] == (expected[1][0], 123, expected[1][2])


def test_draw_architecture_reproduces_the_committed_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic (two runs, same bytes) and the same picture as docs/images/architecture.png."""
    script = load_script(monkeypatch)
    first = script.draw(tmp_path / "a.png")
    second = script.main(["--out", str(tmp_path / "b.png")])
    assert second == 0
    assert first.read_bytes() == (tmp_path / "b.png").read_bytes()
    drawn = np.asarray(Image.open(first).convert("RGB"))
    committed = np.asarray(Image.open(DIAGRAM).convert("RGB"))
    assert drawn.shape == committed.shape == (script.SIZE[1], script.SIZE[0], 3)
    # not blank: boxes, arrows and text cover a real share of the canvas
    assert 0.15 < float((drawn < 250).any(axis=2).mean()) < 0.9
    # the same picture; a little room for another FreeType's glyph rasterisation
    differs = float((np.abs(drawn.astype(np.int16) - committed).max(axis=2) > 48).mean())
    assert differs < 0.01, f"{differs:.2%} of pixels differ: rerun scripts/draw_architecture.py"
