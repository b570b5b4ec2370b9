"""Landmark metrics against independent NumPy computations, known cases and DDP-style syncing."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from pmfs.metrics import (
    FaceLMD,
    LandmarkDistance,
    MouthLMD,
    MouthOpeningSync,
    VelocityLMD,
    face_lmd,
    mouth_lmd,
    mouth_opening_sync,
    velocity_lmd,
)

# --------------------------------------------------------------------------------------------
# Independent NumPy references (pixel conversion, lip points, inner-lip pairs written out here)
# --------------------------------------------------------------------------------------------

LIP_POINTS = list(range(48, 68))
INNER_PAIRS = [(61, 67), (62, 66), (63, 65)]


def np_to_pixels(points: np.ndarray, size: int) -> np.ndarray:
    """grid_sample(align_corners=False) convention: x_norm = (2 x_px + 1) / size - 1."""
    return ((points + 1.0) * size - 1.0) / 2.0


def np_point_distances(
    preds: np.ndarray, target: np.ndarray, points: list[int], velocity: bool, size: int
) -> np.ndarray:
    """Flat array of per-point pixel distances, (B, T, 68, 2) inputs."""
    p = np_to_pixels(preds[:, :, points].astype(np.float64), size)
    t = np_to_pixels(target[:, :, points].astype(np.float64), size)
    if velocity:
        p, t = p[:, 1:] - p[:, :-1], t[:, 1:] - t[:, :-1]
    return np.sqrt(((p - t) ** 2).sum(axis=-1)).ravel()


def np_opening(clip: np.ndarray) -> np.ndarray:
    """(T, 68, 2) -> (T,) mean inner-lip gap."""
    gaps = [np.hypot(*(clip[:, a] - clip[:, b]).T) for a, b in INNER_PAIRS]
    return np.mean(gaps, axis=0)


def np_sync(pred_clip: np.ndarray, true_clip: np.ndarray, max_offset: int) -> tuple[float, int]:
    """Correlation at offset 0 and the best offset k of corr(pred[t + k], true[t])."""
    p, g = np_opening(pred_clip.astype(np.float64)), np_opening(true_clip.astype(np.float64))
    T = len(p)
    corrs = {}
    for k in range(-max_offset, max_offset + 1):
        ts = np.arange(max(0, -k), min(T, T - k))
        corrs[k] = np.corrcoef(p[ts + k], g[ts])[0, 1]
    return corrs[0], max(corrs, key=corrs.__getitem__)


def random_landmarks(generator: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(*shape, 68, 2, generator=generator) * 2 - 1


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------------------------
# LMD
# --------------------------------------------------------------------------------------------

LMD_CASES = [
    (MouthLMD, LIP_POINTS, False),
    (FaceLMD, list(range(68)), False),
    (VelocityLMD, LIP_POINTS, True),
]


@pytest.mark.parametrize(("metric_cls", "points", "velocity"), LMD_CASES)
@pytest.mark.parametrize("crop_size", [256, 64])
def test_lmd_matches_numpy_over_updates(
    generator: torch.Generator,
    metric_cls: type[LandmarkDistance],
    points: list[int],
    velocity: bool,
    crop_size: int,
) -> None:
    metric = metric_cls(crop_size=crop_size)
    batches = [random_landmarks(generator, b, t) for b, t in [(3, 5), (1, 5), (2, 9)] for _ in "pt"]
    distances = []
    for preds, target in zip(batches[::2], batches[1::2], strict=True):
        metric.update(preds, target)
        distances.append(
            np_point_distances(preds.numpy(), target.numpy(), points, velocity, crop_size)
        )
    expected = np.concatenate(distances).mean()  # every point distance weighs the same
    np.testing.assert_allclose(metric.compute().item(), expected, rtol=1e-5)


def test_functional_lmd_matches_numpy(generator: torch.Generator) -> None:
    preds, target = random_landmarks(generator, 2, 6), random_landmarks(generator, 2, 6)
    p, t = preds.numpy(), target.numpy()
    for value, points, velocity in [
        (mouth_lmd(preds, target), LIP_POINTS, False),
        (face_lmd(preds, target), list(range(68)), False),
        (velocity_lmd(preds, target), LIP_POINTS, True),
        (velocity_lmd(preds, target, region="face"), list(range(68)), True),
    ]:
        expected = np_point_distances(p, t, points, velocity, 256).mean()
        np.testing.assert_allclose(value.item(), expected, rtol=1e-5)


def test_lmd_known_cases(generator: torch.Generator) -> None:
    target = random_landmarks(generator, 2, 4)
    assert face_lmd(target, target.clone()).item() == 0.0
    assert MouthLMD()(target, target).item() == 0.0
    # A shift of 2/256 normalized units along x is one pixel of the 256 crop: 3 px along a 3-4-5.
    shifted = target + torch.tensor([3.0, 4.0]) * (2.0 / 256)
    torch.testing.assert_close(face_lmd(shifted, target), torch.tensor(5.0))
    torch.testing.assert_close(mouth_lmd(shifted, target, crop_size=128), torch.tensor(2.5))
    # A constant shift moves no point between frames: zero velocity error.
    assert velocity_lmd(shifted, target).item() == pytest.approx(0.0, abs=1e-4)
    # Only the lips count for M-LMD: moving the eyes changes F-LMD alone.
    eyes_moved = target.clone()
    eyes_moved[:, :, 36:48] += 0.5
    assert mouth_lmd(eyes_moved, target).item() == 0.0
    assert face_lmd(eyes_moved, target).item() > 0.0


def test_lmd_is_differentiable(generator: torch.Generator) -> None:
    preds = random_landmarks(generator, 1, 3).requires_grad_()
    mouth_lmd(preds, random_landmarks(generator, 1, 3)).backward()
    assert preds.grad is not None
    assert preds.grad[:, :, 48:].abs().sum() > 0 and preds.grad[:, :, :48].abs().sum() == 0


@pytest.mark.parametrize(
    ("preds_shape", "target_shape", "match"),
    [
        ((2, 3, 68, 2), (2, 4, 68, 2), "same shape"),
        ((3, 68, 2), (3, 68, 2), r"\(B, T, 68, 2\)"),
        ((2, 3, 31, 2), (2, 3, 31, 2), r"\(B, T, 68, 2\)"),
        ((2, 1, 68, 2), (2, 1, 68, 2), "T >= 2"),
    ],
)
def test_lmd_rejects_bad_shapes(
    preds_shape: tuple[int, ...], target_shape: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        VelocityLMD().update(torch.zeros(preds_shape), torch.zeros(target_shape))


def test_lmd_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="region"):
        LandmarkDistance(region="lips")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop_size"):
        MouthLMD(crop_size=0)


# --------------------------------------------------------------------------------------------
# Mouth-opening sync
# --------------------------------------------------------------------------------------------


def test_sync_matches_numpy_over_updates(generator: torch.Generator) -> None:
    metric = MouthOpeningSync(max_offset=3)
    # A perturbed copy so that correlations are neither ~0 nor 1; single clips and batches.
    corrs, offsets = [], []
    for shape in [(4, 20), (30,), (2, 12)]:
        target = random_landmarks(generator, *shape)
        preds = target + 0.3 * random_landmarks(generator, *shape)
        metric.update(preds, target)
        for p, t in zip(
            preds.reshape(-1, *shape[-1:], 68, 2),
            target.reshape(-1, *shape[-1:], 68, 2),
            strict=True,
        ):
            corr, offset = np_sync(p.numpy(), t.numpy(), max_offset=3)
            corrs.append(corr)
            offsets.append(offset)
    result = metric.compute()
    assert set(result) == {"corr", "offset", "abs_offset"}
    assert len(corrs) == 7 and 0.2 < np.mean(corrs) < 0.99
    np.testing.assert_allclose(result["corr"].item(), np.mean(corrs), rtol=1e-5)
    np.testing.assert_allclose(result["offset"].item(), np.mean(offsets), rtol=1e-6)
    np.testing.assert_allclose(result["abs_offset"].item(), np.mean(np.abs(offsets)), rtol=1e-6)


def test_functional_sync_matches_numpy(generator: torch.Generator) -> None:
    target = random_landmarks(generator, 5, 16)
    preds = random_landmarks(generator, 5, 16)  # unrelated: best offsets spread over the range
    corr, offset = mouth_opening_sync(preds, target, max_offset=4)
    assert corr.shape == (5,) and offset.shape == (5,) and offset.dtype == torch.int64
    for i in range(5):
        expected_corr, expected_offset = np_sync(preds[i].numpy(), target[i].numpy(), 4)
        assert corr[i].item() == pytest.approx(expected_corr, abs=1e-5)
        assert offset[i].item() == expected_offset


def test_sync_identical_clips(generator: torch.Generator) -> None:
    target = random_landmarks(generator, 3, 25)
    corr, offset = mouth_opening_sync(target, target)
    torch.testing.assert_close(corr, torch.ones(3))
    assert offset.tolist() == [0, 0, 0]


@pytest.mark.parametrize("k", [-5, -2, 0, 1, 4])
def test_sync_finds_shift(generator: torch.Generator, k: int) -> None:
    T, margin = 40, 5
    base = random_landmarks(generator, 2, T + 2 * margin)
    target = base[:, margin : margin + T]
    preds = base[:, margin - k : margin - k + T]  # preds[t] == target[t - k]: prediction lags by k
    metric = MouthOpeningSync(max_offset=5)
    metric.update(preds, target)
    result = metric.compute()
    assert result["offset"].item() == k and result["abs_offset"].item() == abs(k)
    if k == 0:
        assert result["corr"].item() == pytest.approx(1.0)
    else:  # i.i.d. openings: unrelated at offset 0
        assert abs(result["corr"].item()) < 0.6


def test_sync_constant_opening_counts_as_uncorrelated(generator: torch.Generator) -> None:
    target = random_landmarks(generator, 20)
    still = target[:1].expand(20, 68, 2).clone()  # a mouth that never moves
    corr, offset = mouth_opening_sync(still, target, max_offset=2)
    assert corr.item() == 0.0 and offset.item() == 0  # ties go to the smallest |offset|


def test_sync_rejects_short_clips_and_bad_offsets() -> None:
    clip = torch.zeros(11, 68, 2)
    with pytest.raises(ValueError, match=r"T=11 .* max_offset=5"):
        MouthOpeningSync(max_offset=5).update(clip, clip)
    with pytest.raises(ValueError, match="max_offset"):
        MouthOpeningSync(max_offset=-1)
    with pytest.raises(ValueError, match="same shape"):
        mouth_opening_sync(torch.zeros(12, 68, 2), torch.zeros(1, 12, 68, 2), max_offset=1)


# --------------------------------------------------------------------------------------------
# Distributed: merged states and a real 2-process gloo run equal one process fed everything
# --------------------------------------------------------------------------------------------


def _shards(seed: int) -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b in (3, 1, 2, 2):  # uneven shards: ranks see different amounts of data
        target = random_landmarks(gen, b, 14)
        out.append((target + 0.3 * random_landmarks(gen, b, 14), target))
    return out


def _metrics() -> dict[str, MouthLMD | FaceLMD | VelocityLMD | MouthOpeningSync]:
    return {
        "m_lmd": MouthLMD(),
        "f_lmd": FaceLMD(),
        "v_lmd": VelocityLMD(),
        "sync": MouthOpeningSync(max_offset=3),
    }


def _flatten(results: dict[str, Tensor | dict[str, Tensor]]) -> dict[str, float]:
    flat = {}
    for name, value in results.items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        flat.update({f"{name}/{key}": v.item() for key, v in items})
    return flat


def _single_process_reference(shards: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
    metrics = _metrics()
    for preds, target in shards:
        for metric in metrics.values():
            metric.update(preds, target)
    return _flatten({name: metric.compute() for name, metric in metrics.items()})


def test_merge_state_equals_single_process() -> None:
    shards = _shards(seed=1)
    parts = [_metrics(), _metrics()]
    for i, (preds, target) in enumerate(shards):
        for metric in parts[i % 2].values():
            metric.update(preds, target)
    for name, metric in parts[0].items():
        metric.merge_state(parts[1][name])
    merged = _flatten({name: metric.compute() for name, metric in parts[0].items()})
    assert merged == pytest.approx(_single_process_reference(shards), rel=1e-6)


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        metrics = _metrics()
        for preds, target in _shards(seed=1)[rank::world_size]:
            for metric in metrics.values():
                metric.update(preds, target)
        results = _flatten({name: metric.compute() for name, metric in metrics.items()})
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gloo_two_processes_equal_single_process(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    expected = _single_process_reference(_shards(seed=1))
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt") == pytest.approx(expected, rel=1e-6)


def test_forward_gives_batch_value_and_accumulates(generator: torch.Generator) -> None:
    first, second = random_landmarks(generator, 2, 14), random_landmarks(generator, 2, 14)
    sync = MouthOpeningSync(max_offset=3)
    assert sync(first, first)["corr"].item() == pytest.approx(1.0)
    batch = sync(second, first)["corr"].item()
    assert sync.compute()["corr"].item() == pytest.approx((1.0 + batch) / 2, rel=1e-6)
    lmd = FaceLMD()
    assert lmd(first, first).item() == 0.0
    batch = lmd(second, first).item()
    assert lmd.compute().item() == pytest.approx(batch / 2, rel=1e-6)  # equal point counts
