"""`RngState`: checkpoints carry the random number generators, so a resumed fit continues exactly.

Lightning restores weights, optimizers and loop counters from a checkpoint but not the global RNGs
(torch, CUDA, NumPy, Python), which drive dropout, scheduled sampling and training noise. With this
callback in the Trainer, `--ckpt_path last` continues with the same next loss as the uninterrupted
run (on CPU with deterministic settings; the loaders' items depend on seed, epoch and index only).
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
            "numpy": np.random.get_state(),  # noqa: NPY002 (the global one is what code uses)
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        np.random.set_state(state_dict["numpy"])  # noqa: NPY002
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
