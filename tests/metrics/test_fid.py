"""FID with the FID Inception v3: architecture/keys, loading, features, and the metric.

Weights are random (tests/metric_weights.py), written once per module. The Inception runs at
299² on the CPU (~1 s per image on 2 cores) and each FID `compute()` takes an eigendecomposition
of a 2048² matrix (~4 s), so the tests use two or three images per set and two computes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pmfs.metrics.fid import (
    FID,
    FID_NUM_FEATURES,
    FID_WEIGHTS_FILE,
    FIDInceptionV3,
    load_fid_inception,
)
from pmfs.metrics.weights import MetricWeightsError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metric_weights import write_fid_weights, write_syncnet_weights


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fid_weights(tmp_path_factory.mktemp("fid_weights"), seed=0)


@pytest.fixture(scope="module")
def inception(fid_weights: Path) -> FIDInceptionV3:
    return load_fid_inception(fid_weights)


def test_state_dict_layout_is_torchvision_inception3_with_1008_classes() -> None:
    state = FIDInceptionV3().state_dict()
    # pytorch-fid: torchvision Inception3(num_classes=1008, aux_logits=False); 23,850,960 params.
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == 23_850_960
    assert not any(key.startswith("AuxLogits") for key in state)
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "fc.weight": (1008, 2048),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    bn = FIDInceptionV3().Conv2d_1a_3x3.bn
    assert bn.eps == pytest.approx(1e-3)


def test_weights_round_trip_and_frozen(fid_weights: Path, inception: FIDInceptionV3) -> None:
    saved = torch.load(fid_weights, weights_only=True)
    loaded = inception.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)
    inception.train()
    assert not inception.training and not any(m.training for m in inception.modules())
    assert not any(p.requires_grad for p in inception.parameters())


def test_features_shape_and_input_types(inception: FIDInceptionV3) -> None:
    pixels = torch.randint(0, 256, (2, 3, 48, 40), generator=torch.Generator().manual_seed(1))
    uint8 = pixels.to(torch.uint8)
    features = inception(uint8.float() / 255)  # resized to 299² inside
    assert features.shape == (2, FID_NUM_FEATURES) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and (features >= 0).all()  # pool of ReLU outputs
    assert not torch.allclose(features[0], features[1])
    assert torch.allclose(inception(uint8), features, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        inception(uint8[:, :1])


def test_fid_of_a_set_with_itself_is_zero_and_of_another_positive(fid_weights: Path) -> None:
    generator = torch.Generator().manual_seed(2)
    real = torch.rand(2, 3, 32, 32, generator=generator)
    dark = 0.3 * torch.rand(2, 3, 32, 32, generator=generator)
    fid = FID(fid_weights, reset_real_features=False)
    fid.update(real, real=True)
    fid.update(real, real=False)
    same = float(fid.compute())
    fid.reset()  # keeps the real statistics
    fid.update(dark, real=False)
    different = float(fid.compute())
    assert abs(same) < 1e-3 * different
    assert different > 1e-3
    assert int(fid.real_features_num_samples) == 2 and int(fid.fake_features_num_samples) == 2


def test_missing_weights_raise_one_line(tmp_path: Path) -> None:
    missing = tmp_path / FID_WEIGHTS_FILE
    with pytest.raises(MetricWeightsError) as info:
        FID(missing)
    message = str(info.value)
    assert "\n" not in message and str(missing) in message and "pytorch-fid" in message
    assert isinstance(info.value, FileNotFoundError)


def test_other_state_dict_is_refused(tmp_path: Path) -> None:
    wrong = write_syncnet_weights(tmp_path)
    with pytest.raises(ValueError, match="not an FID Inception v3 state dict"):
        load_fid_inception(wrong)
