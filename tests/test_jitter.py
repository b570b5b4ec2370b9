"""The jitter metric (`pmfs.metrics.jitter`): against a plain reference, as a torchmetrics
`Metric`, and on a model's predictions post-processed as at inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pmfs.checkpoints import data_config, load_model
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.evaluation.scores import landmark_scores
from pmfs.inference.options import InferenceOptions
from pmfs.inference.temporal import generated_landmarks
from pmfs.metrics.jitter import MouthJitter, mouth_jitter
from pmfs.stages import PMFS


def reference_jitter(track: np.ndarray, crop_size: int) -> float:
    """Mean |x[t+1] − 2x[t] + x[t−1]| over the lip points 48–67 and frames, written out."""
    values = []
    for t in range(1, len(track) - 1):
        for p in range(48, 68):
            accel = track[t + 1, p] - 2 * track[t, p] + track[t - 1, p]
            values.append(np.hypot(*accel) * crop_size / 2)
    return float(np.mean(values))


@pytest.mark.parametrize("crop_size", [256, 64])
def test_mouth_jitter_matches_a_plain_reference(crop_size: int) -> None:
    tracks = torch.rand(2, 9, 68, 2, generator=torch.Generator().manual_seed(crop_size)) * 2 - 1
    for track in tracks:
        expected = reference_jitter(track.double().numpy(), crop_size)
        assert mouth_jitter(track, crop_size).item() == pytest.approx(expected, rel=1e-5)
    batch = np.mean([reference_jitter(t.double().numpy(), crop_size) for t in tracks])
    assert mouth_jitter(tracks, crop_size).item() == pytest.approx(batch, rel=1e-5)


def test_motion_at_constant_speed_has_no_jitter() -> None:
    t = torch.arange(12, dtype=torch.float32)[:, None, None]
    track = torch.rand(1, 68, 2) * 0.5 + t * torch.tensor([0.01, -0.02])  # (12, 68, 2)
    assert mouth_jitter(track).item() < 1e-4
    track[6, 50, 1] += 1 / 128  # one lip point 1 px off in one frame: |a| = 1, 2, 1 px
    assert mouth_jitter(track).item() == pytest.approx(4 / (10 * 20), abs=1e-4)


def test_the_metric_accumulates_clips_of_any_length() -> None:
    clips = [torch.rand(n, 68, 2, generator=torch.Generator().manual_seed(n)) for n in (5, 11)]
    metric = MouthJitter()
    for clip in clips:
        metric.update(clip)
    sums = [mouth_jitter(c).item() * (len(c) - 2) * 20 for c in clips]
    assert metric.compute().item() == pytest.approx(sum(sums) / (3 * 20 + 9 * 20), rel=1e-5)
    metric.reset()
    metric.update(clips[0][None])
    assert metric.compute().item() == pytest.approx(mouth_jitter(clips[0]).item(), rel=1e-6)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="T >= 3"):
        mouth_jitter(torch.zeros(2, 68, 2))
    with pytest.raises(ValueError, match=r"\(T, 68, 2\)"):
        mouth_jitter(torch.zeros(5, 20, 2))
    with pytest.raises(ValueError, match="crop_size"):
        MouthJitter(crop_size=0)


def test_predicted_jitter_is_at_most_one_and_a_half_times_the_truths(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path
) -> None:
    """Whole test-split clips, landmarks as `pmfs infer` and `pmfs evaluate` make them
    (smoothing and the VAD gate at their defaults): jitter ≤ 1.5 × the ground truth's."""
    model = load_model(known_pmfs_checkpoint)
    assert isinstance(model, PMFS)
    config = data_config(known_pmfs_checkpoint)
    cache = Cache(tiny_synth_root)
    held_out = set(cache.extra["test_speakers"])
    predicted, truth = [], []
    for record in (r for r in cache.clips() if r.speaker in held_out):
        reader = cache.open(record.clip)
        clip = clip_inputs_from_cache(reader, config["image_size"], config["num_references"])
        reader.close()
        landmarks = generated_landmarks(model.eval(), clip, InferenceOptions())
        scores = landmark_scores(landmarks, clip.landmarks)
        predicted.append(scores["jitter"][0])
        truth.append(scores["gt_jitter"][0])
    assert predicted and np.mean(predicted) <= 1.5 * np.mean(truth), (predicted, truth)
