"""Tests of `pmfs.networks.vgg`: torchvision's VGG19 layout and keys, loading and its errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from vgg_weights import random_vgg19_state, write_random_vgg19

from pmfs.networks.vgg import (
    LAYER_INDICES,
    VGG19_FILENAME,
    VGG19Features,
    load_vgg19,
    vgg19_weights_path,
)

CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]  # torchvision cfg "E"
POOLS = [4, 9, 18, 27]  # (36, the last pool, comes after relu5_4 and is never built)
LAYERS = ("relu1_2", "relu3_1", "relu2_1")  # out of order on purpose


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_vgg19_state()


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("torch_home")
    write_random_vgg19(home)
    return home


def test_layout_matches_torchvision() -> None:
    model = VGG19Features(("relu5_4",))
    assert len(model.features) == 36
    for index, module in enumerate(model.features):
        kind = nn.Conv2d if index in CONVS else nn.MaxPool2d if index in POOLS else nn.ReLU
        assert isinstance(module, kind), (index, module)
        if isinstance(module, nn.ReLU):
            assert not module.inplace
    expected = [f"features.{i}.{p}" for i in CONVS for p in ("weight", "bias")]
    assert list(model.state_dict()) == expected
    assert sum(p.numel() for p in model.parameters()) == 20_024_384  # torchvision's features
    assert [LAYER_INDICES[f"relu{b}_1"] for b in range(1, 6)] == [1, 6, 11, 20, 29]
    assert LAYER_INDICES["relu5_4"] == 35 and len(LAYER_INDICES) == 16


def test_built_only_to_the_deepest_layer_and_outputs_in_order() -> None:
    model = VGG19Features(LAYERS)
    assert len(model.features) == LAYER_INDICES["relu3_1"] + 1 == 12
    outputs = model(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 32, 32), (2, 256, 8, 8), (2, 128, 16, 16)]
    assert all(bool((o >= 0).all()) for o in outputs)
    with pytest.raises(ValueError, match="relu6_1"):
        VGG19Features(("relu6_1",))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 1, 32, 32))


def test_file_round_trips_exactly(
    torch_home: Path, state: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    path = torch_home / "hub" / "checkpoints" / VGG19_FILENAME
    assert vgg19_weights_path("imagenet") == path
    loaded = load_vgg19("imagenet", LAYERS)
    reference = VGG19Features(LAYERS)
    reference.load_state_dict({key: state[key] for key in reference.state_dict()})
    x = torch.rand(1, 3, 32, 32)
    for got, want in zip(loaded(x), reference(x), strict=True):
        assert torch.equal(got, want)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    by_path = load_vgg19(str(path), ("relu1_1",))
    assert torch.equal(by_path.state_dict()["features.0.weight"], state["features.0.weight"])


def test_hub_dir_is_honoured(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # restored after the test
    torch.hub.set_dir(str(torch_home / "hub"))
    assert vgg19_weights_path("imagenet") == torch_home / "hub" / "checkpoints" / VGG19_FILENAME
    assert load_vgg19("imagenet", ("relu1_1",)).state_dict()["features.0.bias"].abs().sum() > 0


def test_missing_file_says_where_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        load_vgg19("imagenet", ("relu1_1",))
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / VGG19_FILENAME) in message
    assert "download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "$TORCH_HOME/hub/checkpoints/" in message
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        load_vgg19(str(tmp_path / "nowhere.pth"), ("relu1_1",))


def _write(path: Path, state: dict[str, torch.Tensor]) -> str:
    torch.save(state, path)
    return str(path)


def test_bad_files_name_the_keys(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in state.items() if k.startswith("features.0.")}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored, as in torchvision's file
    assert (
        load_vgg19(_write(tmp_path / "ok.pth", state), ("relu1_1",))
        .state_dict()["features.0.weight"]
        .shape
    )
    wrong = dict(state, **{"features.0.weight": torch.zeros(64, 1, 3, 3)})
    with pytest.raises(ValueError, match=r"features\.0\.weight.*\(64, 1, 3, 3\)"):
        load_vgg19(_write(tmp_path / "shape.pth", wrong), ("relu1_1",))
    missing = {k: v for k, v in state.items() if k != "features.0.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['features\.0\.bias'\]"):
        load_vgg19(_write(tmp_path / "missing.pth", missing), ("relu1_1",))
    extra = dict(state, **{"features.1.weight": torch.zeros(3)})  # a VGG16/BN-style key
    with pytest.raises(ValueError, match=r"features\.1\.weight"):
        load_vgg19(_write(tmp_path / "extra.pth", extra), ("relu1_1",))
    with pytest.raises(ValueError, match="not a state dict"):
        load_vgg19(_write(tmp_path / "list.pth", [torch.zeros(1)]), ("relu1_1",))  # type: ignore[arg-type]


def test_random_weights_are_fixed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pmfs.networks.vgg"):
        torch.manual_seed(1)
        first = load_vgg19(None, ("relu2_1",))
        torch.manual_seed(2)
        second = load_vgg19(None, ("relu2_1",))
    assert sum("random" in r.getMessage() for r in caplog.records) == 2  # one line per load
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not first.training and not any(p.requires_grad for p in first.parameters())
