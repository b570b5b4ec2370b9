"""LPIPS on random-weight files: loading, an independent re-computation, properties, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lpips_weights import random_alexnet_state, random_lpips_state, write_random_lpips_weights
from torch import Tensor

from pmfs.metrics import LPIPS, MetricWeightsError, check_weights, lpips_skip_reason
from pmfs.metrics.lpips import ALEXNET_FILE, LPIPS_ALEX_FILE, load_lpips_network, lpips

SIZE = 64

# --------------------------------------------------------------------------------------------
# Independent reference: the lpips package's forward pass written out with torch.nn.functional
# on the raw state dicts (slices features[0:2], [2:5], [5:8], [8:10], [10:12]).
# --------------------------------------------------------------------------------------------


def reference_lpips(
    x: Tensor, y: Tensor, backbone: dict[str, Tensor], heads: dict[str, Tensor]
) -> Tensor:
    """(B, 3, H, W) images in [0, 1] -> (B,) float64 distances."""
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def conv(h: Tensor, i: int, stride: int, padding: int) -> Tensor:
        w, b = backbone[f"features.{i}.weight"].double(), backbone[f"features.{i}.bias"].double()
        return F.relu(F.conv2d(h, w, b, stride=stride, padding=padding))

    def taps(image: Tensor) -> list[Tensor]:
        h = ((image.double() * 2 - 1) - shift) / scale
        relu1 = conv(h, 0, 4, 2)
        relu2 = conv(F.max_pool2d(relu1, 3, 2), 3, 1, 2)
        relu3 = conv(F.max_pool2d(relu2, 3, 2), 6, 1, 1)
        relu4 = conv(relu3, 8, 1, 1)
        relu5 = conv(relu4, 10, 1, 1)
        feats = [relu1, relu2, relu3, relu4, relu5]
        return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in feats]

    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for i, (a, b) in enumerate(zip(taps(x), taps(y), strict=True)):
        weight = heads[f"lin{i}.model.1.weight"].double()
        total += F.conv2d((a - b) ** 2, weight).mean(dim=(1, 2, 3))
    return total


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_random_lpips_weights(tmp_path_factory.mktemp("lpips"))


@pytest.fixture
def images() -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, SIZE, SIZE, generator=gen)
    return a, (a + 0.1 * torch.randn(a.shape, generator=gen)).clamp(0, 1), torch.rand(a.shape)


def test_loading_round_trips(weight_files: tuple[Path, Path]) -> None:
    network = load_lpips_network(*weight_files)
    backbone, heads = random_alexnet_state(0), random_lpips_state(1)
    for key, value in network.features.state_dict().items():
        torch.testing.assert_close(value, backbone[f"features.{key}"], rtol=0, atol=0)
    for i in range(5):
        torch.testing.assert_close(network.lins[i].weight, heads[f"lin{i}.model.1.weight"])
    assert not any(p.requires_grad for p in network.parameters())
    assert not network.train().training  # a fixed measure stays in eval mode


def test_matches_independent_computation(
    weight_files: tuple[Path, Path], images: tuple[Tensor, Tensor, Tensor]
) -> None:
    network = load_lpips_network(*weight_files)
    a, b, _ = images
    expected = reference_lpips(a, b, random_alexnet_state(0), random_lpips_state(1))
    assert expected.min() > 0
    torch.testing.assert_close(network(a, b).double(), expected, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(lpips(a, b, network).double(), expected.mean(), rtol=1e-4, atol=0)


def test_distance_properties(
    weight_files: tuple[Path, Path], images: tuple[Tensor, Tensor, Tensor]
) -> None:
    network = load_lpips_network(*weight_files)
    a, near, far = images
    assert network(a, a.clone()).abs().max().item() < 1e-6  # identical images: 0
    d_near, d_far = network(a, near), network(a, far)
    assert (d_near > 0).all() and (d_far > d_near).all()  # more noise, larger distance
    torch.testing.assert_close(network(near, a), d_near)  # symmetric


def test_differentiable_as_a_loss(weight_files: tuple[Path, Path]) -> None:
    network = load_lpips_network(*weight_files)
    preds = torch.rand(1, 3, 32, 32).requires_grad_()
    lpips(preds, torch.rand(1, 3, 32, 32), network).backward()
    assert preds.grad is not None and preds.grad.abs().sum() > 0


def test_metric_is_mean_over_images_and_merges(
    weight_files: tuple[Path, Path], images: tuple[Tensor, Tensor, Tensor]
) -> None:
    a, near, far = images
    network = load_lpips_network(*weight_files)
    expected = torch.cat([network(a, near), network(a[:1], far[:1])]).mean()
    metric = LPIPS(*weight_files)
    metric.update(a, near)
    metric.update(a[:1], far[:1])
    torch.testing.assert_close(metric.compute(), expected)
    first, second = LPIPS(*weight_files), LPIPS(*weight_files)
    first.update(a, near)
    second.update(a[:1], far[:1])
    first.merge_state(second)
    torch.testing.assert_close(first.compute(), expected)


def test_missing_files(tmp_path: Path, weight_files: tuple[Path, Path]) -> None:
    backbone, heads = weight_files
    missing = tmp_path / "nowhere" / ALEXNET_FILE
    with pytest.raises(MetricWeightsError, match=r"alexnet-owt-7be5be79\.pth.*download\.pytorch"):
        LPIPS(missing, heads)
    with pytest.raises(FileNotFoundError, match=r"nowhere/alex\.pth.*lpips"):
        load_lpips_network(backbone, tmp_path / "nowhere" / LPIPS_ALEX_FILE)
    reason = lpips_skip_reason(backbone, tmp_path / "nowhere" / LPIPS_ALEX_FILE)
    assert reason is not None and "\n" not in reason and "alex.pth" in reason
    assert lpips_skip_reason(backbone, heads) is None


def test_defaults_to_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weight_files: tuple[Path, Path]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reason = lpips_skip_reason()
    assert reason is not None and str(tmp_path / "hub" / "checkpoints" / ALEXNET_FILE) in reason
    write_random_lpips_weights(tmp_path / "hub" / "checkpoints")
    assert lpips_skip_reason() is None
    torch.testing.assert_close(
        LPIPS().network.lins[2].weight, load_lpips_network(*weight_files).lins[2].weight
    )


def test_check_weights(tmp_path: Path) -> None:
    present = tmp_path / "w.pth"
    present.write_bytes(b"x")
    assert check_weights(present, "M (w.pth)", "somewhere") is None
    assert check_weights(None, "M (w.pth)", "https://x") == (
        "M (w.pth): no weights file given; get it from https://x"
    )
    reason = check_weights(tmp_path / "no.pth", "M (no.pth)", "https://x")
    assert reason is not None and "no.pth" in reason and "https://x" in reason


@pytest.mark.parametrize(
    ("which", "edit", "match"),
    [
        ("backbone", lambda s: s.pop("features.10.bias"), r"missing \['features\.10\.bias'\]"),
        ("backbone", lambda s: s.update(extra=torch.zeros(1)), r"unexpected \['extra'\]"),
        ("heads", lambda s: s.update({"lin5.model.1.weight": torch.zeros(1)}), "unexpected"),
        ("heads", lambda s: s.update({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}), "shape"),
        ("backbone", lambda s: s.clear(), "missing"),
    ],
)
def test_wrong_keys(
    tmp_path: Path, weight_files: tuple[Path, Path], which: str, edit: object, match: str
) -> None:
    backbone, heads = weight_files
    state = random_alexnet_state(0) if which == "backbone" else random_lpips_state(1)
    assert callable(edit)
    edit(state)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    paths = (bad, heads) if which == "backbone" else (backbone, bad)
    with pytest.raises(ValueError, match=match) as error:
        load_lpips_network(*paths)
    assert "bad.pth" in str(error.value)


def test_not_a_state_dict(tmp_path: Path, weight_files: tuple[Path, Path]) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights file"):
        load_lpips_network(weight_files[0], garbage)
    torch.save([torch.zeros(1)], garbage)
    with pytest.raises(ValueError, match="not a state dict"):
        load_lpips_network(weight_files[0], garbage)


def test_rejects_bad_images(weight_files: tuple[Path, Path]) -> None:
    network = load_lpips_network(*weight_files)
    with pytest.raises(ValueError, match="equal-shaped"):
        network(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))
    with pytest.raises(ValueError, match="H, W >= 32"):
        network(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_checkpoints_leave_the_network_out(
    weight_files: tuple[Path, Path], images: tuple[Tensor, Tensor, Tensor]
) -> None:
    module = torch.nn.ModuleDict({"lpips": LPIPS(*weight_files), "head": torch.nn.Linear(2, 2)})
    state = module.state_dict()
    assert sorted(state) == ["head.bias", "head.weight"]  # metric states are not persistent
    module.load_state_dict(state)  # strict: the network keeps its own weights
    a, near, _ = images
    metric = module["lpips"]
    assert isinstance(metric, LPIPS)
    expected = load_lpips_network(*weight_files)(a, near).mean()
    metric.update(a.double(), near.double())  # other float dtypes follow the network's
    torch.testing.assert_close(metric.compute(), expected)
