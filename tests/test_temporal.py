"""Temporal post-processing of the predicted landmarks (`pmfs.inference.temporal`, issue 16).

The smoothers against scipy and on a step; the voice-activity gate on real speech with a
generated pause, through a real model (`known_pmfs_checkpoint`, whose mouth follows the audio):
the VAD finds the pause, the gated mouth is closed and still there — stiller than ground-truth
silence of the synthetic set, measured here — and opens on time; without the gate the same
input is neither closed nor still.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter
from torch import Tensor

from pmfs.audio import SAMPLE_RATE, load_audio, mel_windows, num_video_frames
from pmfs.checkpoints import data_config, load_model
from pmfs.clip import ClipInputs
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.inference.options import InferenceOptions, TemporalOptions
from pmfs.inference.smoothing import one_euro_smooth, savgol_smooth
from pmfs.inference.temporal import (
    SAMPLES_PER_FRAME,
    closed_mouth,
    gate_weights,
    generated_landmarks,
    smooth_content,
    speech_activity,
    speech_segments,
)
from pmfs.landmarks import (
    CONTENT_INDICES,
    LIPS,
    mouth_opening,
    pixels_to_normalized,
    template_tensor,
    to_canonical,
)
from pmfs.metrics.jitter import mouth_jitter
from pmfs.stages import PMFS

PX = 128.0
"""Pixels of the 256 crop per normalized unit."""
PAUSE_SECONDS = 2.0
RAMP = TemporalOptions().vad_ramp


# ----------------------------------------------------------------------------------------------
# Smoothers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "window", "order"), [(50, 5, 2), (50, 7, 3), (40, 9, 2), (6, 5, 2), (4, 5, 2)]
)
def test_savgol_matches_scipy(frames: int, window: int, order: int) -> None:
    x = np.random.default_rng(frames + window).normal(size=(frames, 31, 2))
    fitted = min(window, frames - 1 + frames % 2)  # the largest odd window the series holds
    expected = savgol_filter(x, fitted, order, axis=0, mode="interp")
    np.testing.assert_allclose(
        savgol_smooth(torch.from_numpy(x), window, order), expected, atol=1e-9
    )


def _face_track(opening_px: Tensor) -> Tensor:
    """(N, 68, 2) the template face drifting and nodding, its lower lip and chin lowered by
    `opening_px` (N,) pixels of the 256 crop in each frame."""
    n = len(opening_px)
    t = torch.arange(n, dtype=torch.float64)
    face = template_tensor(torch.device("cpu"), torch.float64).expand(n, 68, 2).clone()
    lower = torch.tensor([6, 7, 8, 9, 10, 55, 56, 57, 58, 59, 65, 66, 67])
    face[:, lower, 1] += opening_px[:, None].double() / PX
    angle = 0.05 * torch.sin(t / 9)  # head roll, rad
    rotation = torch.stack(
        [torch.stack([angle.cos(), -angle.sin()], -1), torch.stack([angle.sin(), angle.cos()], -1)],
        -2,
    )  # (N, 2, 2)
    shift = torch.stack([0.1 * torch.sin(t / 7), 0.05 * torch.cos(t / 5)], -1)  # (N, 2)
    return (face @ rotation.transpose(-1, -2) * 0.9 + shift[:, None]).float()


def _onset(opening: Tensor) -> int:
    """First frame whose opening is past the middle between the track's first and last value."""
    return int(torch.nonzero(opening >= (opening[0] + opening[-1]) / 2)[0])


SMOOTHERS = {
    "savgol": TemporalOptions(smoothing="savgol"),
    "one_euro": TemporalOptions(),
}


@pytest.mark.parametrize("name", SMOOTHERS)
def test_smoothers_keep_a_step_onset_and_the_head_motion(name: str) -> None:
    """A mouth opening 12 px at once, on a moving head: its onset frame stays within one frame,
    and without articulation the head's motion passes exactly."""
    options = SMOOTHERS[name]
    step = torch.zeros(60)
    step[30:] = 12.0
    track = _face_track(step)
    smoothed = smooth_content(track, options)
    truth, out = mouth_opening(track) * PX, mouth_opening(smoothed) * PX
    assert _onset(truth) == 30 and abs(_onset(out) - 30) <= 1, out[25:35]
    assert (out - truth)[-5:].abs().max() < 0.5  # settles at the step's height
    still = _face_track(torch.full((60,), 4.0))
    torch.testing.assert_close(smooth_content(still, options), still, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SMOOTHERS)
def test_smoothers_remove_frame_to_frame_noise(name: str) -> None:
    """0.5 px of i.i.d. noise on a speaking mouth: the smoother takes most of the added jitter
    away and ends nearer the clean track; Savitzky–Golay is exactly scipy's on the canonical
    content points."""
    t = torch.arange(100, dtype=torch.float64)
    speech = 6.0 + 5.0 * torch.sin(t / 2.5)  # a syllable every ~16 frames
    clean = _face_track(speech)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 0.5 / PX
    noisy = clean.clone()
    noisy[:, CONTENT_INDICES] += noise[:, CONTENT_INDICES]
    smoothed = smooth_content(noisy, SMOOTHERS[name])
    before, after = mouth_jitter(noisy), mouth_jitter(smoothed)
    assert after - mouth_jitter(clean) < 0.4 * (before - mouth_jitter(clean)), (before, after)
    error = (smoothed - clean)[:, LIPS].norm(dim=-1).mean()
    assert error < 0.8 * (noisy - clean)[:, LIPS].norm(dim=-1).mean()
    if name == "savgol":
        canonical, _ = to_canonical(noisy.double())
        points = canonical[:, CONTENT_INDICES].numpy()
        reference = savgol_filter(points, 5, 2, axis=0, mode="interp")
        ours, _ = to_canonical(smoothed.double())
        np.testing.assert_allclose(ours[:, CONTENT_INDICES].numpy(), reference, atol=1e-5)


def test_one_euro_follows_fast_motion_more_than_slow() -> None:
    """The cutoff rises with speed: a fast swing keeps more of its amplitude than noise does."""
    t = torch.arange(200, dtype=torch.float64)
    fast = (20 * torch.sin(t / 2.0))[:, None, None].expand(200, 1, 2)
    small = (0.3 * torch.sin(t * 2.5))[:, None, None].expand(200, 1, 2)  # near Nyquist, 0.3 px
    kept_fast = one_euro_smooth(fast, 25.0, 3.0, 0.8)[20:-20].std() / fast[20:-20].std()
    kept_small = one_euro_smooth(small, 25.0, 3.0, 0.8)[20:-20].std() / small[20:-20].std()
    assert kept_fast > 0.8 and kept_small < 0.2, (kept_fast, kept_small)


# ----------------------------------------------------------------------------------------------
# The gate's parts
# ----------------------------------------------------------------------------------------------


def test_gate_opens_before_an_onset_and_is_free_during_speech() -> None:
    active = np.zeros(30, dtype=bool)
    active[10:20] = True
    weights = gate_weights(active, ramp=3)
    assert (weights[10:20] == 1).all() and (weights[:6] == 0).all() and (weights[24:] == 0).all()
    assert 0 < weights[9] < 1 and weights[7] < weights[8] < weights[9]  # ramps up to the onset
    np.testing.assert_array_equal(gate_weights(active, ramp=0), active.astype(np.float32))
    assert not gate_weights(np.zeros(5, dtype=bool), ramp=3).any()


def test_speech_detection_refuses_other_sample_rates() -> None:
    with pytest.raises(ValueError, match=r"needs 16000 Hz audio, got 44100 Hz"):
        speech_segments(np.zeros(44100, dtype=np.float32), 44100)


def test_closed_mouth_is_the_least_open_reference_closed() -> None:
    openings = torch.tensor([8.0, 3.0, 12.0])
    refs = torch.stack([_face_track(torch.full((1,), float(o)))[0] for o in openings])
    closed = closed_mouth(refs)
    assert mouth_opening(closed).abs() < 1e-6
    canonical, _ = to_canonical(refs)
    upper = [48, 49, 50, 51, 52, 53, 54, 60, 64]  # kept from reference 1 (3 px)
    torch.testing.assert_close(closed[upper], canonical[1, upper])


def test_temporal_flags_are_infer_options() -> None:
    options = InferenceOptions(smoothing="one_euro", vad=False, vad_ramp=2)
    assert isinstance(options, TemporalOptions) and options.vad_ramp == 2
    with pytest.raises(ValueError, match="savgol-window must be odd"):
        InferenceOptions(savgol_window=4)


# ----------------------------------------------------------------------------------------------
# The gate on real speech, through a real model
# ----------------------------------------------------------------------------------------------


def _lip_motion(landmarks: Tensor) -> Tensor:
    """(N − 1,) mean displacement of the 20 lip points between frames in the head's canonical
    frame (head motion removed), pixels of the 256 crop."""
    canonical, _ = to_canonical(landmarks.float())
    lips = canonical[:, LIPS]
    return (lips[1:] - lips[:-1]).norm(dim=-1).mean(dim=-1) * PX


def ground_truth_silent_motion(root: Path) -> Tensor:
    """Lip motion (`_lip_motion`) of the synthetic set's ground truth over every silent frame
    pair: frames farther than the gate's ramp from any speech the VAD hears in the clip's own
    (synthesized) audio."""
    cache = Cache(root)
    motions = []
    for record in cache.clips():
        reader = cache.open(record.clip)
        audio, landmarks = np.asarray(reader.audio), np.asarray(reader.landmarks)  # (N, 68, 2) px
        truth = torch.from_numpy(pixels_to_normalized(landmarks, reader.size))
        reader.close()
        silent = gate_weights(speech_activity(audio, SAMPLE_RATE, len(truth)), RAMP) == 0
        pairs = torch.from_numpy(silent[1:] & silent[:-1])
        motions.append(_lip_motion(truth)[pairs])
    return torch.cat(motions)


def speech_pause_speech(wav: Path) -> tuple[np.ndarray, int, int]:
    """The MEAD clip, a generated 2 s pause, the clip again.

    The pause is white noise at the recording's own noise floor (the RMS of the clip before the
    VAD's first onset), so it sounds like a pause of this recording, not digital silence.

    Returns:
        (A,) 16 kHz audio; the pause's first sample; the sample where the second copy's speech
        starts (the first 10 ms block 20 dB above that floor).
    """
    speech = load_audio(wav, SAMPLE_RATE)
    floor = float(speech[: speech_segments(speech, SAMPLE_RATE)[0][0]].std())
    pause = np.random.default_rng(0).normal(0.0, floor, round(PAUSE_SECONDS * SAMPLE_RATE))
    blocks = speech[: len(speech) // 160 * 160].reshape(-1, 160)  # 10 ms
    onset = 160 * int(np.argmax(blocks.std(axis=1) > 10 * floor))
    audio = np.concatenate([speech, pause.astype(np.float32), speech])
    return audio, len(speech), len(speech) + len(pause) + onset


def _clip_of(audio: np.ndarray, root: Path, checkpoint: Path) -> ClipInputs:
    """A test-split face of the synthetic cache (its pose track played forward and backward to
    the audio's length, its references) speaking `audio`."""
    config = data_config(checkpoint)
    cache = Cache(root)
    record = next(r for r in cache.clips() if r.speaker in cache.extra["test_speakers"])
    reader = cache.open(record.clip)
    face = clip_inputs_from_cache(reader, config["image_size"], config["num_references"])
    reader.close()
    n, m = num_video_frames(len(audio)), face.num_frames
    bounce = np.arange(n) % (2 * m - 2)
    order = torch.from_numpy(np.where(bounce < m, bounce, 2 * m - 2 - bounce))
    return ClipInputs(
        mel=torch.from_numpy(mel_windows(audio, n)),
        frames=face.frames[order],
        landmarks=face.landmarks[order],
        ref_frames=face.ref_frames,
        ref_landmarks=face.ref_landmarks,
        emotion=face.emotion,
        level=face.level,
        audio=audio,
    )


def test_silence_keeps_the_mouth_closed_and_still(
    sample_wav: Path, known_pmfs_checkpoint: Path, tiny_synth_root: Path
) -> None:
    """Speech – 2 s pause – speech through `pmfs infer`'s landmark path (smoothing as at
    inference): the VAD finds the pause; there the gated mouth is as closed as the speaker's
    most closed reference and moves less than the median ground-truth silent frame of the
    synthetic set; it is free from the second onset on; with the gate off it is neither."""
    audio, pause_start, onset = speech_pause_speech(sample_wav)
    model = load_model(known_pmfs_checkpoint)
    assert isinstance(model, PMFS)
    clip = _clip_of(audio, tiny_synth_root, known_pmfs_checkpoint)
    gated = generated_landmarks(model.eval(), clip, TemporalOptions())
    free = generated_landmarks(model, clip, TemporalOptions(vad=False))
    frames = np.arange(clip.num_frames) * SAMPLES_PER_FRAME  # each frame's centre sample
    margin = (RAMP + 1) * SAMPLES_PER_FRAME  # the ramps on both sides
    pause = np.flatnonzero((frames >= pause_start + margin) & (frames < onset - margin))
    first = int(np.ceil(onset / SAMPLES_PER_FRAME))  # first frame centred past the onset
    assert len(pause) > 40
    # the VAD finds the pause, and the speech on both sides of it
    activity = speech_activity(audio, SAMPLE_RATE, clip.num_frames)
    assert not activity[pause].any() and activity[first : first + 10].all()
    assert activity[pause[0] - 20 : pause[0]].any()
    # closed: no more open than the speaker's most closed reference
    closed = float(mouth_opening(clip.ref_landmarks).min()) * PX + 0.05
    assert (mouth_opening(gated[pause]) * PX).max() <= closed
    assert (mouth_opening(free[pause]) * PX).min() > closed + 1.0  # the model's mouth is open
    # still: every frame moves less than the median ground-truth silent frame
    bound = float(ground_truth_silent_motion(tiny_synth_root).median())
    pairs = pause[1:]  # motion from frame t - 1 to t, both in the pause
    gated_motion, free_motion = _lip_motion(gated)[pairs - 1], _lip_motion(free)[pairs - 1]
    assert gated_motion.max() < bound < free_motion.max(), (bound, free_motion.max())
    # no onset delayed: from the second speech's first frame on, the mouth is the free one
    torch.testing.assert_close(gated[first : first + 25], free[first : first + 25])
