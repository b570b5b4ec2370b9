"""`pmfs.options`: an options dataclass is its own argument parser (issue 13, item 5)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import pytest

from pmfs.options import add_options, flag_of, options_from_args, parser_fields
from pmfs.options import option as opt


@dataclass(frozen=True)
class Example:
    """Every kind of field the commands use."""

    source: Path = opt(help="input", positional=True)
    out: Path = opt(help="the file to write")
    count: int = opt(3, help="how many", minimum=1)
    scale: float | None = opt(None, help="a scale", above=0)
    mode: Literal["keep", "remove"] = opt("keep", help="background")
    parts: tuple[Literal["a", "b", "c"], ...] = opt(("a", "b"), help="parts")
    progress: bool = opt(True, help="show a progress bar")
    verbose: bool = opt(False, help="log more", short="-v")
    references: int | None = opt(None, help="K", flag="--refs")


def _parse(argv: list[str]) -> Example:
    parser = argparse.ArgumentParser()
    add_options(parser, Example)
    return options_from_args(Example, parser.parse_args(argv))


def test_defaults_come_from_the_dataclass() -> None:
    got = _parse(["in.mp4", "--out", "o.mp4"])
    assert got == Example(source=Path("in.mp4"), out=Path("o.mp4"))


def test_every_kind_of_flag_round_trips() -> None:
    flags = ["--count", "5", "--scale", "1.5", "--mode", "remove", "--parts", "c"]
    got = _parse(["in.mp4", "--out", "o.mp4", *flags, "--no-progress", "-v", "--refs", "2"])
    assert got.count == 5 and got.scale == 1.5 and got.mode == "remove"
    assert got.parts == ("c",) and got.progress is False and got.verbose is True
    assert got.references == 2 and isinstance(got.out, Path)


def test_bounds_are_checked_with_the_flag_named() -> None:
    with pytest.raises(ValueError, match=r"--count must be ≥ 1, got 0"):
        _parse(["in.mp4", "--out", "o", "--count", "0"])
    with pytest.raises(ValueError, match=r"--scale must be > 0, got -1"):
        _parse(["in.mp4", "--out", "o", "--scale", "-1"])


def test_choices_and_required_are_enforced_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(["in.mp4", "--out", "o", "--mode", "blur"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["in.mp4"])
    assert "--out" in capsys.readouterr().err


def test_switches_show_no_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(parser, Example)
    parser.print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: True)" not in text and "(default: False)" not in text
    assert "how many (default: 3)" in text


def test_parser_and_dataclass_cannot_drift() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, Example)
    assert parser_fields(parser) == {f.name for f in fields(Example)}
    assert flag_of(fields(Example)[6]) == "--no-progress"


def test_unsupported_fields_are_refused() -> None:
    @dataclass
    class Bad:
        when: complex = opt(1j, help="no")

    with pytest.raises(TypeError, match="unsupported type"):
        add_options(argparse.ArgumentParser(), Bad)


@dataclass(frozen=True)
class Actions:
    """A repeatable flag and a `--x/--no-x` pair."""

    config: tuple[str, ...] | None = opt(None, help="configs", repeat=True)
    uint8: bool = opt(True, help="also uint8", negatable=True)


def test_repeatable_and_negatable_flags() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, Actions)
    assert options_from_args(Actions, parser.parse_args([])) == Actions()
    got = options_from_args(Actions, parser.parse_args(["--config", "a", "--config", "b"]))
    assert got.config == ("a", "b") and got.uint8 is True
    assert options_from_args(Actions, parser.parse_args(["--no-uint8"])).uint8 is False
