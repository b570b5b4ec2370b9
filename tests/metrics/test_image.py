"""Image metrics against independent NumPy / skimage / PIL computations, and DDP-style syncing."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

from pmfs.landmarks import mouth_box
from pmfs.metrics import (
    FramePSNR,
    FrameSSIM,
    MouthPSNR,
    MouthSSIM,
    crop_mouths,
    image_metrics,
    image_psnr,
    image_ssim,
)

SIZE = 48

# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------


def np_gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def np_ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(C, H, W) float64 images -> (C, H, W) SSIM map, windows reflect-padded at the borders."""
    w = np_gaussian_window()
    pad = 5

    def blur(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        return np.einsum("chwij,ij->chw", sliding_window_view(padded, (11, 11), axis=(1, 2)), w)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )


def np_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(np_ssim_map(a, b).mean())


def np_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def np_mouth_crop(image: np.ndarray, box: np.ndarray, crop_size: int) -> np.ndarray:
    """(3, H, W) image, (x0, y0, x1, y1) pixel-edge box -> (3, s, s) PIL bilinear resize."""
    centres = np.arange(image.shape[-1]) + 0.5
    cols = np.nonzero((centres >= box[0]) & (centres <= box[2]))[0]
    rows = np.nonzero((centres >= box[1]) & (centres <= box[3]))[0]
    crop = image[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.stack(
        [
            np.asarray(
                Image.fromarray(channel.astype(np.float32), mode="F").resize(
                    (crop_size, crop_size), Image.Resampling.BILINEAR
                )
            )
            for channel in crop
        ]
    )


def random_pair(gen: torch.Generator, batch: int, size: int = SIZE) -> tuple[Tensor, Tensor]:
    """A smooth-ish target and a noisy prediction in [0, 1] (SSIM well inside (0, 1))."""
    coarse = torch.rand(batch, 3, size // 8, size // 8, generator=gen)
    target = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    noise = 0.1 * torch.randn(batch, 3, size, size, generator=gen)
    return (target + noise).clamp(0, 1), target


def random_faces(gen: torch.Generator, batch: int) -> Tensor:
    """(B, 68, 2) normalized landmarks; lips in a small region of random placement."""
    points = torch.rand(batch, 68, 2, generator=gen) * 2 - 1
    centre = torch.rand(batch, 1, 2, generator=gen) * 1.6 - 0.8
    points[:, 48:] = centre + (torch.rand(batch, 20, 2, generator=gen) - 0.5) * 0.5
    return points.clamp(-1, 1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------------------------
# Functional core
# --------------------------------------------------------------------------------------------


def test_psnr_matches_skimage_and_numpy(gen: torch.Generator) -> None:
    preds, target = random_pair(gen, 3)
    values = image_psnr(preds, target)
    assert values.shape == (3,)
    for value, p, t in zip(values, preds.double().numpy(), target.double().numpy(), strict=True):
        assert value.item() == pytest.approx(np_psnr(p, t), rel=1e-5)
        assert value.item() == pytest.approx(
            peak_signal_noise_ratio(t, p, data_range=1.0), rel=1e-5
        )


def test_ssim_matches_numpy(gen: torch.Generator) -> None:
    preds, target = random_pair(gen, 3)
    values = image_ssim(preds, target)
    assert values.shape == (3,)
    pairs = zip(preds.double().numpy(), target.double().numpy(), strict=True)
    expected = [np_ssim(p, t) for p, t in pairs]
    assert min(expected) > 0.3 and max(expected) < 0.95
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-4)


def test_numpy_ssim_reference_agrees_with_skimage_inside(gen: torch.Generator) -> None:
    # The reference's SSIM map away from the 5-px border (where padding plays no part) is
    # skimage's: same window, constants and population covariance.
    preds, target = random_pair(gen, 1)
    p, t = preds[0].double().numpy(), target[0].double().numpy()
    ours = np_ssim_map(p, t)[:, 5:-5, 5:-5].mean()
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    theirs = structural_similarity(p, t, channel_axis=0, data_range=1.0, **options)
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_identical_images(gen: torch.Generator) -> None:
    _, target = random_pair(gen, 2)
    assert torch.isinf(image_psnr(target, target.clone())).all()
    torch.testing.assert_close(image_ssim(target, target.clone()), torch.ones(2))
    # One grey level of 8-bit error everywhere: PSNR = 20 log10(255) ≈ 48.13 dB.
    torch.testing.assert_close(
        image_psnr((target + 1 / 255), target), torch.full((2,), 20 * math.log10(255))
    )


def test_crop_mouths_matches_pil(gen: torch.Generator) -> None:
    images = torch.rand(4, 3, SIZE, SIZE, generator=gen)
    boxes = mouth_box(random_faces(gen, 4), SIZE)
    for crop_size in (16, 32):  # downsampling (antialiased) and upsampling
        crops = crop_mouths(images, boxes, crop_size)
        assert crops.shape == (4, 3, crop_size, crop_size)
        for crop, image, box in zip(crops, images.numpy(), boxes.numpy(), strict=True):
            expected = np_mouth_crop(image, box, crop_size)
            np.testing.assert_allclose(crop.numpy(), expected, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Metric classes
# --------------------------------------------------------------------------------------------


def test_metrics_are_means_of_per_image_values(gen: torch.Generator) -> None:
    metrics = image_metrics("val/", crop_size=24)
    expected: dict[str, list[float]] = {"psnr": [], "ssim": [], "mouth_psnr": [], "mouth_ssim": []}
    for batch in (3, 1, 2):
        (preds, target), landmarks = random_pair(gen, batch), random_faces(gen, batch)
        metrics.update(preds, target, landmarks)
        boxes = mouth_box(landmarks, SIZE).numpy()
        for p, t, box in zip(preds.numpy(), target.numpy(), boxes, strict=True):
            mp_, mt = np_mouth_crop(p, box, 24), np_mouth_crop(t, box, 24)
            pairs = {"psnr": (p, t), "ssim": (p, t), "mouth_psnr": (mp_, mt)}
            pairs["mouth_ssim"] = (mp_, mt)
            for key, (a, b) in pairs.items():
                fn = np_psnr if key.endswith("psnr") else np_ssim
                expected[key].append(fn(a.astype(np.float64), b.astype(np.float64)))
    result = metrics.compute()
    assert set(result) == {"val/psnr", "val/ssim", "val/mouth_psnr", "val/mouth_ssim"}
    for key, values in expected.items():
        assert len(values) == 6
        assert result[f"val/{key}"].item() == pytest.approx(np.mean(values), rel=2e-4), key


def test_mouth_metrics_see_only_the_mouth_box(gen: torch.Generator) -> None:
    _, target = random_pair(gen, 2)
    landmarks = random_faces(gen, 2)
    mask = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    for i, (x0, y0, x1, y1) in enumerate(mouth_box(landmarks, SIZE).tolist()):
        mask[i, :, math.floor(y0) : math.ceil(y1), math.floor(x0) : math.ceil(x1)] = True
    outside = torch.where(mask, target, 1 - target)  # damage everything but the mouth
    assert MouthSSIM(crop_size=16)(outside, target, landmarks).item() == pytest.approx(1.0)
    assert math.isinf(MouthPSNR(crop_size=16)(outside, target, landmarks).item())
    assert FrameSSIM()(outside, target, landmarks).item() < 0.9
    inside = torch.where(mask, 1 - target, target)  # damage the mouth only
    assert MouthSSIM(crop_size=16)(inside, target, landmarks).item() < 0.9
    assert MouthPSNR(crop_size=16)(inside, target, landmarks).item() < 20


def test_frame_metrics_ignore_landmarks(gen: torch.Generator) -> None:
    preds, target = random_pair(gen, 2)
    psnr, ssim = FramePSNR(), FrameSSIM()
    psnr.update(preds, target)  # no landmarks at all
    ssim.update(preds, target, random_faces(gen, 2))
    torch.testing.assert_close(psnr.compute(), image_psnr(preds, target).mean())
    torch.testing.assert_close(ssim.compute(), image_ssim(preds, target).mean())


def test_collection_does_not_merge_coinciding_metrics(gen: torch.Generator) -> None:
    # Identical images give SSIM 1 on frame and mouth alike: equal states after one batch. The
    # collection must still update both afterwards.
    metrics = image_metrics("", crop_size=16)
    (preds, target), landmarks = random_pair(gen, 2), random_faces(gen, 2)
    metrics.update(target, target, landmarks)
    metrics.update(preds, target, landmarks)
    result = metrics.compute()
    expected_frame = (2 + image_ssim(preds, target).sum()) / 4
    expected_mouth = (2 + MouthSSIM(crop_size=16)(preds, target, landmarks) * 2) / 4
    torch.testing.assert_close(result["ssim"], expected_frame)
    torch.testing.assert_close(result["mouth_ssim"], expected_mouth)


@pytest.mark.parametrize(
    ("preds", "target", "landmarks", "match"),
    [
        ((2, 3, 32, 32), (2, 3, 32, 48), (2, 68, 2), "same shape"),
        ((2, 1, 32, 32), (2, 1, 32, 32), (2, 68, 2), r"\(B, 3, H, W\)"),
        ((2, 3, 32, 48), (2, 3, 32, 48), (2, 68, 2), "square"),
        ((2, 3, 32, 32), (2, 3, 32, 32), (2, 5, 68, 2), r"landmarks\[:, T // 2\]"),
        ((2, 3, 32, 32), (2, 3, 32, 32), (3, 68, 2), "3 faces for 2 images"),
    ],
)
def test_rejects_bad_shapes(
    preds: tuple[int, ...], target: tuple[int, ...], landmarks: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MouthPSNR().update(torch.rand(preds), torch.rand(target), torch.zeros(landmarks))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="need the ground-truth landmarks"):
        MouthSSIM().update(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="crop_size"):
        MouthSSIM(crop_size=8)
    with pytest.raises(ValueError, match="at least 11"):
        image_ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


# --------------------------------------------------------------------------------------------
# Distributed: merged states and a real 2-process gloo run equal one process fed everything
# --------------------------------------------------------------------------------------------


def _shards(seed: int) -> list[tuple[Tensor, Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(*random_pair(gen, b), random_faces(gen, b)) for b in (3, 1, 2, 2)]  # uneven


def _single_process_reference(shards: list[tuple[Tensor, Tensor, Tensor]]) -> dict[str, float]:
    metrics = image_metrics("test/", crop_size=16)
    for batch in shards:
        metrics.update(*batch)
    return {key: value.item() for key, value in metrics.compute().items()}


def test_merge_state_equals_single_process() -> None:
    shards = _shards(seed=1)
    parts = [image_metrics("test/", crop_size=16) for _ in range(2)]
    for i, batch in enumerate(shards):
        parts[i % 2].update(*batch)
    for name, metric in parts[0].items(keep_base=True):
        metric.merge_state(parts[1][name])
    merged = {key: value.item() for key, value in parts[0].compute().items()}
    assert merged == pytest.approx(_single_process_reference(shards), rel=1e-6)


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        metrics = image_metrics("test/", crop_size=16)
        for batch in _shards(seed=1)[rank::world_size]:
            metrics.update(*batch)
        results = {key: value.item() for key, value in metrics.compute().items()}
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
    assert len(expected) == 4
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt") == pytest.approx(expected, rel=1e-6)
