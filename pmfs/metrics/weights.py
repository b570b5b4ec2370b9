"""Pretrained weights of the optional metrics (LPIPS, FID, SyncNet): locating and loading them.

These metrics need weights that the user supplies (DESIGN §5): a path, or the file name in the
standard torch hub cache (`<torch.hub.get_dir()>/checkpoints/`). Without them a metric is skipped
with one clear line (`check_weights`), never faked; asked for explicitly, a missing file raises
`MetricWeightsError` naming the file and where it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "MetricWeightsError",
    "cached_weights",
    "check_weights",
    "load_state_dict",
    "require_weights",
]


class MetricWeightsError(FileNotFoundError):
    """The pretrained weights of an optional metric are missing (a `FileNotFoundError`)."""


def cached_weights(filename: str) -> Path:
    """Where the torch hub cache keeps `filename`: `<torch.hub.get_dir()>/checkpoints/<name>`.

    The file need not exist; pass the result to `check_weights` / `require_weights`.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _missing_reason(path: str | Path | None, name: str, source: str) -> str | None:
    if path is None:
        return f"{name}: no weights file given; get it from {source}"
    if not Path(path).is_file():
        return f"{name}: weights file {str(path)!r} not found; get it from {source}"
    return None


def check_weights(path: str | Path | None, name: str, source: str) -> str | None:
    """The one-line reason to skip a metric whose weights are absent, or None when present.

    Args:
        path: the weights file, or None when the user gave none.
        name: the metric and file, e.g. "LPIPS (alex.pth)".
        source: where the file comes from (a URL or package), named in the reason.

    Returns:
        None if `path` is an existing file, else e.g.
        "LPIPS (alex.pth): weights file '/x/alex.pth' not found; get it from <source>".
    """
    return _missing_reason(path, name, source)


def require_weights(path: str | Path | None, name: str, source: str) -> Path:
    """`path` as a `Path` if the file exists, else raise `MetricWeightsError` (one line).

    Args:
        path: the weights file (None counts as missing).
        name: the metric and file, e.g. "LPIPS (alex.pth)".
        source: where the file comes from, named in the error.
    """
    reason = _missing_reason(path, name, source)
    if reason is not None:
        raise MetricWeightsError(reason)
    assert path is not None
    return Path(path)


def load_state_dict(
    path: Path, expected: dict[str, tuple[int, ...]], ignore_prefixes: Iterable[str] = ()
) -> dict[str, Tensor]:
    """Load a state-dict file and check its keys and shapes against `expected`.

    Args:
        path: a `torch.save`d `{name: tensor}` mapping (loaded with `weights_only=True`).
        expected: every key the model needs and its shape.
        ignore_prefixes: keys starting with one of these are dropped silently (e.g. the
            classifier of a backbone of which only the features are used).

    Returns:
        `{name: tensor}` with exactly the keys of `expected`, on the CPU.

    Raises:
        ValueError: the file is not a state dict, or keys are missing, unexpected or misshapen.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle or zip error: the file is not what it is named
        raise ValueError(f"cannot read weights file {str(path)!r}: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"weights file {str(path)!r} is not a state dict of tensors")
    prefixes = tuple(ignore_prefixes)
    keys = {k for k in state if not (prefixes and str(k).startswith(prefixes))}
    missing, unexpected = sorted(set(expected) - keys), sorted(keys - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"weights file {str(path)!r} has the wrong keys (missing {missing}, unexpected "
            f"{unexpected}); is it the right file?"
        )
    wrong = [
        f"{k}: {tuple(state[k].shape)} instead of {shape}"
        for k, shape in expected.items()
        if tuple(state[k].shape) != shape
    ]
    if wrong:
        raise ValueError(f"weights file {str(path)!r} has misshapen tensors: {'; '.join(wrong)}")
    return {k: state[k] for k in expected}
