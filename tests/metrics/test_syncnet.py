"""SyncNet LSE-D / LSE-C: MFCC against a loop reference, distances and offset, the network.

The MFCC reference below is written from python_speech_features' code as a plain per-frame
loop (its filterbank double loop, scipy's DCT), independent of the vectorised implementation.
Network tests use random weights (tests/metric_weights.py) and short clips.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.fft import dct

from pmfs.metrics.syncnet import (
    SyncNetScore,
    sync_distances,
    sync_scores,
    syncnet_embeddings,
    syncnet_frames,
    syncnet_mfcc,
)
from pmfs.metrics.syncnet_model import SYNCNET_WEIGHTS_FILE, SyncNetV2, load_syncnet
from pmfs.metrics.weights import MetricWeightsError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metric_weights import write_syncnet_weights


def _reference_mfcc(audio: np.ndarray) -> np.ndarray:
    """python_speech_features.mfcc(int16-scaled audio, 16000) defaults, as loops: (M, 13)."""
    signal = audio.astype(np.float64) * 32768.0
    signal = np.concatenate([signal[:1], signal[1:] - 0.97 * signal[:-1]])
    low, high = 0.0, 2595 * math.log10(1 + 8000 / 700)
    mels = [low + (high - low) * i / 27 for i in range(28)]
    edges = [math.floor(513 * 700 * (10 ** (m / 2595) - 1) / 16000) for m in mels]
    bank = np.zeros((26, 257))
    for j in range(26):
        for i in range(edges[j], edges[j + 1]):
            bank[j, i] = (i - edges[j]) / (edges[j + 1] - edges[j])
        for i in range(edges[j + 1], edges[j + 2]):
            bank[j, i] = (edges[j + 2] - i) / (edges[j + 2] - edges[j + 1])
    num = 1 if len(signal) <= 400 else 1 + math.ceil((len(signal) - 400) / 160)
    rows = []
    for f in range(num):
        frame = np.zeros(512)
        chunk = signal[f * 160 : f * 160 + 400]
        frame[: len(chunk)] = chunk
        power = np.abs(np.fft.rfft(frame)) ** 2 / 512
        energy = max(power.sum(), np.finfo(float).eps)
        bands = np.maximum(bank @ power, np.finfo(float).eps)
        ceps = dct(np.log(bands), type=2, norm="ortho")[:13]
        ceps *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
        ceps[0] = math.log(energy)
        rows.append(ceps)
    return np.stack(rows)


@pytest.fixture(scope="module")
def syncnet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_syncnet_weights(tmp_path_factory.mktemp("syncnet_weights"), seed=0)


@pytest.fixture(scope="module")
def metric(syncnet_weights: Path) -> SyncNetScore:
    return SyncNetScore(syncnet_weights, vshift=3)


def _clip(frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    video = torch.rand(frames, 3, 64, 64, generator=generator)
    audio = 0.1 * torch.randn(frames * 640, generator=generator)
    return video, audio


@pytest.mark.parametrize("samples", [300, 400, 401, 16000 + 123])
def test_mfcc_matches_loop_reference(samples: int) -> None:
    rng = np.random.default_rng(samples)
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(samples) / 16000) + 0.05 * rng.normal(
        size=samples
    )
    audio[: min(200, samples // 2)] = 0.0  # silent start: the eps path of the log
    ours = syncnet_mfcc(audio.astype(np.float32))
    reference = _reference_mfcc(audio.astype(np.float32))
    assert ours.shape == (13, reference.shape[0]) and ours.dtype == np.float32
    np.testing.assert_allclose(ours.T, reference, rtol=1e-4, atol=1e-3)


def test_mfcc_of_a_real_clip_matches_loop_reference(sample_wav: Path) -> None:
    from pmfs.audio import load_audio

    audio = load_audio(sample_wav)  # mono 16 kHz, 2.73 s
    ours = syncnet_mfcc(audio)
    assert ours.shape[1] == 1 + math.ceil((audio.size - 400) / 160)
    np.testing.assert_allclose(ours.T, _reference_mfcc(audio), rtol=1e-4, atol=1e-3)


def test_mfcc_rate_and_scale() -> None:
    assert syncnet_mfcc(np.full(16000, 0.1, np.float32)).shape == (13, 99)  # 100 frames/s
    loud, quiet = np.full(4000, 0.2), np.full(4000, 0.1)
    # Energy row is the log power: halving the amplitude lowers it by log(4).
    diff = syncnet_mfcc(loud)[0] - syncnet_mfcc(quiet)[0]
    np.testing.assert_allclose(diff, math.log(4), atol=1e-4)
    with pytest.raises(ValueError, match="non-empty"):
        syncnet_mfcc(np.zeros((0,)))


def test_distances_match_calc_pdist_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    video, audio = torch.randn(7, 5, generator=generator), torch.randn(7, 5, generator=generator)
    vshift = 3
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    expected = torch.stack(
        [
            torch.nn.functional.pairwise_distance(video[[i]].repeat(7, 1), padded[i : i + 7])
            for i in range(7)
        ]
    )
    assert torch.allclose(sync_distances(video, audio, vshift), expected)


@pytest.mark.parametrize("shift", [-4, 0, 3])
def test_offset_search_finds_a_known_shift(shift: int) -> None:
    generator = torch.Generator().manual_seed(shift + 10)
    stream = torch.randn(60, 32, generator=generator)
    video = stream[10:50]  # (40, 32)
    audio = stream[10 + shift : 50 + shift]  # audio[t] == video[t + shift]
    scores = sync_scores(sync_distances(video, audio, vshift=6), vshift=6)
    # video frame i matches audio frame i - offset = i - shift
    assert int(scores["offset"]) == shift
    # Matched frames are at distance ~0; the |shift| frames whose audio falls outside the clip
    # are compared with zero padding (as calc_pdist), at distance |video[i]|.
    unmatched = video[:shift] if shift > 0 else video[video.shape[0] + shift :]
    expected = unmatched.norm(dim=1).sum() / video.shape[0]
    assert float(scores["lse_d"]) == pytest.approx(float(expected), abs=1e-4)
    assert float(scores["lse_c"]) > 1.0
    distances = sync_distances(video, audio, vshift=6)
    assert torch.isclose(scores["lse_c"], distances.mean(0).median() - scores["lse_d"])


def test_score_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"\(N, 13\)"):
        sync_scores(torch.zeros(4, 12), vshift=6)
    with pytest.raises(ValueError, match=r"both have shape \(N, D\)"):
        sync_distances(torch.zeros(4, 8), torch.zeros(5, 8))


def test_network_keys_match_syncnet_python() -> None:
    state = SyncNetV2().state_dict()
    shapes = {
        "netcnnaud.0.weight": (64, 1, 3, 3),
        "netcnnaud.18.weight": (512, 256, 5, 4),
        "netcnnaud.19.running_mean": (512,),
        "netfcaud.3.weight": (1024, 512),
        "netcnnlip.0.weight": (96, 3, 5, 7, 7),
        "netcnnlip.18.weight": (512, 256, 1, 6, 6),
        "netfclip.1.running_var": (512,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    convs = {k.split(".")[1] for k in state if k.startswith("netcnnlip") and k.endswith("weight")}
    assert convs == {str(i) for i in (0, 1, 4, 5, 8, 9, 11, 12, 14, 15, 18, 19)}


def test_weights_round_trip_and_prefixes(syncnet_weights: Path, tmp_path: Path) -> None:
    saved = torch.load(syncnet_weights, weights_only=True)
    net = load_syncnet(syncnet_weights)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
    prefixed = tmp_path / "instance.model"
    torch.save({f"__S__.{k}": v for k, v in saved.items()}, prefixed)
    reloaded = load_syncnet(prefixed).state_dict()
    assert torch.equal(reloaded["netfclip.3.bias"], saved["netfclip.3.bias"])
    net.train()
    assert not any(m.training for m in net.modules())


def test_missing_and_wrong_weights(tmp_path: Path) -> None:
    missing = tmp_path / SYNCNET_WEIGHTS_FILE
    with pytest.raises(MetricWeightsError) as info:
        SyncNetScore(missing)
    assert "\n" not in str(info.value) and str(missing) in str(info.value)
    wrong = tmp_path / "wrong.model"
    torch.save({"netcnnaud.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not a SyncNet v2 state dict"):
        load_syncnet(wrong)
    module = tmp_path / "module.model"
    torch.save(torch.nn.Linear(2, 2), module)
    with pytest.raises(ValueError, match="state_dict"):
        load_syncnet(module)


def test_frames_preprocessing() -> None:
    frames = torch.zeros(2, 3, 100, 80)
    frames[:, 0] = 1.0  # pure red
    out = syncnet_frames(frames)
    assert out.shape == (2, 3, 224, 224)
    assert torch.allclose(out[:, 2], torch.tensor(255.0)) and torch.all(out[:, :2] == 0.0)  # BGR


def test_embeddings_shapes(metric: SyncNetScore) -> None:
    video, audio = _clip(12, seed=1)
    # 12 frames, but audio for only 10: L = min(12, 10) and N = L - 5.
    video_emb, audio_emb = syncnet_embeddings(metric.net, video, audio[: 10 * 640], batch_size=3)
    assert video_emb.shape == (5, 1024) and audio_emb.shape == (5, 1024)
    with pytest.raises(ValueError, match="too short"):
        syncnet_embeddings(metric.net, video[:5], audio)


def test_score_deterministic_and_metric_means(metric: SyncNetScore) -> None:
    clips = [_clip(10, seed=2), _clip(11, seed=3)]
    first = metric.score(*clips[0])
    assert set(first) == {"lse_d", "lse_c", "offset"}
    again = metric.score(*clips[0])
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert float(first["lse_d"]) > 0 and float(first["lse_c"]) >= 0
    assert abs(int(first["offset"])) <= 3
    second = metric.score(*clips[1])
    metric.reset()
    for video, audio in clips:
        metric.update(video, audio.numpy())
    result = metric.compute()
    for key in ("lse_d", "lse_c", "offset"):
        mean = (first[key].double() + second[key].double()) / 2
        assert float(result[key]) == pytest.approx(float(mean), rel=1e-5)
    expected_abs = (abs(int(first["offset"])) + abs(int(second["offset"]))) / 2
    assert float(result["abs_offset"]) == pytest.approx(expected_abs)
