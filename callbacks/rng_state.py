"""`RngState`: checkpoints carry the random number generators, so a resumed fit continues exactly.

Lightning restores weights, optimizers and loop counters from a checkpoint but not the global RNGs
(torch, CUDA, NumPy, Python), which drive dropout, scheduled sampling and training noise. With this
callback in the Trainer, `--ckpt_path last` continues with the same next loss as the uninterrupted
run (on CPU with deterministic settings; the loaders' items depend on seed, epoch and index only).

The states are stored as tensors and plain Python values only, so the checkpoint still loads with
`torch.load(weights_only=True)` (what Lightning does when resuming).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback


class RngState(Callback):
    """Save the global RNG states in checkpoints and restore them on resume."""

    def state_dict(self) -> dict[str, Any]:
        states: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        _set_numpy_state(state_dict["numpy"])
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def _numpy_state() -> dict[str, Any]:
    """NumPy's global MT19937 state with its 624 keys as an int64 tensor (no numpy pickles)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    """Restore what `_numpy_state` saved."""
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002 (the global generator is what code uses)
        (state["name"], keys, state["pos"], state["has_gauss"], state["gauss"])
    )
