"""Load a model from a `pmfs fit` checkpoint alone, whatever its class (a stage or `PMFS`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule


class CheckpointError(ValueError):
    """A checkpoint that cannot be turned back into a model (the message says why)."""


def resolve_device(device: str | None = None) -> torch.device:
    """Where a loaded model runs: None or "auto" → the first CUDA GPU if there is one, else the
    CPU; any other name ("cpu", "cuda", "cuda:1") as given.

    Raises:
        ValueError: a CUDA device is asked for but torch sees no GPU.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked but no CUDA GPU is available")
    return torch.device(device)


def model_class(class_path: str) -> type[LightningModule]:
    """The LightningModule class named by a dotted `class_path`, e.g. "pmfs.PMFS"."""
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise CheckpointError(f"cannot import the model class {class_path!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, LightningModule)):
        raise CheckpointError(f"{class_path!r} is not a LightningModule")
    return cls


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu", eval_mode: bool = True
) -> LightningModule:
    """Rebuild the model a `pmfs fit` checkpoint was written by and load its weights.

    `pmfs fit` (LightningCLI) stores the model's whole config in the checkpoint's
    hyperparameters (`_class_path` and nested `class_path`s, see `pmfs.stages.common.save_config`),
    so no YAML is needed.

    Args:
        path: the `.ckpt` file.
        map_location: device for the weights.
        eval_mode: put the model in eval mode.

    Returns:
        The model, e.g. a `pmfs.PMFS`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which one
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {err}") from err
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    class_path = hparams.get("_class_path")
    if class_path is None:
        raise CheckpointError(
            f"{path} holds no model config (no hyper_parameters._class_path): it was not "
            f"written by `pmfs fit`. Rebuild the model in Python and load its state_dict"
        )
    try:
        model = model_class(class_path).load_from_checkpoint(path, map_location=map_location)
    except RuntimeError as err:  # the config builds other weights than the file holds
        if "state_dict" not in str(err):
            raise
        raise CheckpointError(
            f"{path}'s weights do not fit the model its config builds with this PMFS version "
            f"({_key_mismatch(str(err))}): it was written by another version; retrain it "
            "(`pmfs fit`) or check out the version that wrote it"
        ) from err
    return model.eval() if eval_mode else model


def _key_mismatch(message: str) -> str:
    """The first missing / unexpected keys of a `load_state_dict` error, on one line."""
    parts = []
    for label in ("Missing key(s)", "Unexpected key(s)"):
        start = message.find(label)
        if start >= 0:
            keys = message[start:].split(":", 1)[1].split(".\n", 1)[0]
            names = [k.strip(' "') for k in keys.split(",") if k.strip()]
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{label.split()[0].lower()} {', '.join(names[:3])}{more}")
    return "; ".join(parts) or message.splitlines()[0]


def data_config(path: str | Path) -> dict[str, Any]:
    """The DataModule's init arguments saved in a `pmfs fit` checkpoint (e.g. `image_size`).

    Returns:
        The DataModule's hyperparameters; {} when the checkpoint has none.
    """
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=False)
    return dict(checkpoint.get("datamodule_hyper_parameters", {}))
