"""Options written once: a command's options dataclass *is* its argument parser.

Each field of an options dataclass carries its help text (and, where needed, its flag, bounds or
positional role) in `option(...)`; `add_options` builds the argparse arguments from the fields
and `options_from_args` builds the dataclass back from the parsed namespace. A field cannot be
on one side and missing from the other, and a default is written in one place only.

    @dataclass(frozen=True)
    class InferOptions:
        out: Path = option(help="the .mp4 to write")             # required: --out
        chunk: int = option(16, help="frames per pass", minimum=1)
        progress: bool = option(True, help="show a progress bar")  # --no-progress

    parser = argparse.ArgumentParser()
    add_options(parser, InferOptions)
    opts = options_from_args(InferOptions, parser.parse_args(argv))

Types understood: `int`, `float`, `str`, `Path`, `bool`, `X | None`, `Literal[...]` (choices),
`tuple[X, ...]` (one or more values). This module imports only the standard library, so a
command's `--help` stays quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_REQUIRED = dataclasses.MISSING


def option(
    default: Any = _REQUIRED,
    *,
    help: str,
    flag: str | None = None,
    short: str | None = None,
    positional: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    metavar: str | None = None,
    repeat: bool = False,
    negatable: bool = False,
) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        default: the default (omitted: the option is required).
        help: the `--help` text.
        flag: the long flag (default `--field-name`; for a bool that defaults to True,
            `--no-field-name`).
        short: an extra short flag such as "-v".
        positional: a positional argument instead of a flag.
        minimum: smallest accepted value (inclusive), checked by `options_from_args`.
        above: values must be strictly greater than this.
        metavar: the placeholder shown in `--help`.
        repeat: a `tuple[X, ...]` field given as one flag per value (`--x a --x b`) instead of
            several values after one flag.
        negatable: a bool field with both `--x` and `--no-x`.

    Returns:
        A `dataclasses.field` with the option's metadata.
    """
    metadata = {
        "help": help,
        "flag": flag,
        "short": short,
        "positional": positional,
        "minimum": minimum,
        "above": above,
        "metavar": metavar,
        "repeat": repeat,
        "negatable": negatable,
    }
    if isinstance(default, list | dict | set):
        raise TypeError("mutable defaults: use a tuple")
    return dataclasses.field(default=default, metadata=metadata)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union {hint}")
    return hint, False


def flag_of(field: dataclasses.Field[Any]) -> str:
    """The long flag of an option field (what `--help` and error messages name)."""
    meta = field.metadata
    if meta.get("flag"):
        return str(meta["flag"])
    name = field.name.replace("_", "-")
    if field.default is True and not meta.get("negatable"):
        return f"--no-{name}"
    return f"--{name}"


def _option_fields(cls: type) -> list[dataclasses.Field[Any]]:
    fields = [f for f in dataclasses.fields(cls) if "help" in f.metadata]
    if not fields:
        raise TypeError(f"{cls.__name__} has no option(...) fields")
    return fields


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    exclude: tuple[str, ...] = (),
) -> None:
    """Add one argument per `option(...)` field of the dataclass `cls` to `parser`.

    Args:
        parser: a parser or an argument group.
        cls: the options dataclass.
        exclude: field names to leave out (a caller that sets them itself).
    """
    hints = typing.get_type_hints(cls)
    for field in _option_fields(cls):
        if field.name in exclude:
            continue
        meta = field.metadata
        hint, optional = _unwrap_optional(hints[field.name])
        required = field.default is _REQUIRED
        kwargs: dict[str, Any] = {"help": meta["help"], "dest": field.name}
        if hint is bool:
            if required:
                raise TypeError(f"{cls.__name__}.{field.name}: a bool option needs a default")
            kwargs["action"] = "store_false" if field.default else "store_true"
            if meta.get("negatable"):
                kwargs["action"] = argparse.BooleanOptionalAction
            # a switch shows no "(default: …)": the flag's name says what it does
            kwargs["default"] = argparse.SUPPRESS
        else:
            if get_origin(hint) is Literal:
                kwargs["choices"] = get_args(hint)
                kwargs["type"] = type(get_args(hint)[0])
            elif get_origin(hint) is tuple:
                inner = get_args(hint)[0]
                if meta.get("repeat"):
                    kwargs["action"] = "append"
                else:
                    kwargs["nargs"] = "+"
                if get_origin(inner) is Literal:
                    kwargs["choices"] = get_args(inner)
                    inner = type(get_args(inner)[0])
                kwargs["type"] = inner
            elif hint in (int, float, str, Path):
                kwargs["type"] = hint
            else:
                raise TypeError(f"{cls.__name__}.{field.name}: unsupported type {hint}")
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if not required:
                kwargs["default"] = field.default
                if kwargs.get("action") == "append":  # argparse appends to a copy of a list
                    default: Any = field.default
                    kwargs["default"] = None if default is None else list(default)
            elif not meta["positional"]:
                kwargs["required"] = True
            if optional and required:
                raise TypeError(f"{cls.__name__}.{field.name}: `X | None` needs a default")
        if meta["positional"]:
            del kwargs["dest"]
            if not required:
                kwargs["nargs"] = "?"
            parser.add_argument(field.name, **kwargs)
            continue
        flags = [flag_of(field)] + ([meta["short"]] if meta.get("short") else [])
        parser.add_argument(*flags, **kwargs)


def options_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The dataclass `cls` built from parsed arguments, bounds checked.

    Args:
        cls: the options dataclass given to `add_options`.
        args: what `parse_args` returned.
        **overrides: values for fields left out of the parser (`exclude`) or set by the caller.

    Returns:
        The options.

    Raises:
        ValueError: a value outside its `minimum`/`above` bound, naming the flag.
    """
    values: dict[str, Any] = {}
    for field in _option_fields(cls):
        if field.name in overrides:
            continue
        value = getattr(args, field.name, field.default)  # a switch left off is absent
        if isinstance(value, list):
            value = tuple(value)
        check_bounds(field, value)
        values[field.name] = value
    return cls(**values, **overrides)


def check_bounds(field: dataclasses.Field[Any], value: Any) -> None:
    """Raise `ValueError` naming the flag when `value` is below the field's bound."""
    minimum, above = field.metadata.get("minimum"), field.metadata.get("above")
    if value is None:
        return
    name = field.name if field.metadata.get("positional") else flag_of(field)
    for item in value if isinstance(value, tuple) else (value,):
        if minimum is not None and item < minimum:
            raise ValueError(f"{name} must be ≥ {minimum:g}, got {item}")
        if above is not None and item <= above:
            raise ValueError(f"{name} must be > {above:g}, got {item}")


def parser_fields(parser: argparse.ArgumentParser) -> set[str]:
    """The `dest` names of a parser's arguments (for tests that check nothing drifted)."""
    return {action.dest for action in parser._actions if action.dest != "help"}
