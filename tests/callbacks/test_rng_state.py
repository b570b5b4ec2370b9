"""`callbacks.RngState`: the global RNGs survive a checkpoint loaded with `weights_only=True`."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from callbacks import RngState


def _draws() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.rand(4), np.random.rand(4), random.random()  # noqa: NPY002


def test_states_round_trip_through_a_weights_only_load() -> None:
    torch.manual_seed(1)
    np.random.seed(2)  # noqa: NPY002
    random.seed(3)
    np.random.randn()  # noqa: NPY002  (a cached Gaussian is part of NumPy's state)
    buffer = io.BytesIO()
    torch.save(RngState().state_dict(), buffer)
    expected = _draws()
    _draws()  # move every generator on
    buffer.seek(0)
    RngState().load_state_dict(torch.load(buffer, weights_only=True))
    got = _draws()
    torch.testing.assert_close(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]
