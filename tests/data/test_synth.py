"""The synthetic generator's parts: seeds, articulation, speech, face rig, rasteriser, one clip."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, num_video_frames
from pmfs.batch import EMOTIONS
from pmfs.data.synth.articulation import CONTROL_RATE, ArticulatoryTrack, Prosody, build_track
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.emotion import EMOTION_STYLES, emotion_style
from pmfs.data.synth.face import NEUTRAL_FACE, articulate, close_eyes, shape_face
from pmfs.data.synth.generate import plan_clips
from pmfs.data.synth.make import ClipPlan, SynthClip, make_clip, raw_frame_size
from pmfs.data.synth.raster import Canvas, polygon_coverage, stroke_outline
from pmfs.data.synth.seeds import derive_rng
from pmfs.data.synth.speaker import sample_speaker
from pmfs.data.synth.speech import Voice, synthesize
from pmfs.data.synth.utterance import PHONES, Segment, plan_utterance
from pmfs.landmarks import MIRROR_INDICES, mouth_opening

# --------------------------------------------------------------------------------------------
# Seeds and planning
# --------------------------------------------------------------------------------------------


def test_derived_streams_are_stable_and_distinct() -> None:
    a = derive_rng(7, "clip", "S01_angry_1_001").random(4)
    b = derive_rng(7, "clip", "S01_angry_1_001").random(4)
    c = derive_rng(7, "clip", "S01_angry_1_002").random(4)
    d = derive_rng(8, "clip", "S01_angry_1_001").random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, d)


def test_plan_spreads_emotions_and_levels() -> None:
    plans = plan_clips(8, 12)
    ids = [p.clip for p in plans]
    assert len(set(ids)) == len(ids) == 96
    assert ids[0] == "S01_angry_1_001"
    for k in range(8):
        mine = [p for p in plans if p.speaker == f"S{k + 1:02d}"]
        assert {p.emotion for p in mine} == set(EMOTIONS)
    assert {p.level for p in plans if p.emotion == "neutral"} == {1}
    assert {p.level for p in plans if p.emotion == "angry"} == {1, 2, 3}
    for p in plans:
        assert p.clip == f"{p.speaker}_{p.emotion}_{p.level}_{p.index:03d}"


def test_emotion_levels_scale_the_effect() -> None:
    weak, strong = emotion_style("happy", 1), emotion_style("happy", 3)
    assert 0 < weak.mouth_corner < strong.mouth_corner == EMOTION_STYLES["happy"].mouth_corner
    assert emotion_style("sad", 2).inner_brow > 0 > emotion_style("angry", 2).inner_brow
    with pytest.raises(ValueError, match="no level 2"):
        emotion_style("neutral", 2)
    with pytest.raises(ValueError, match="unknown emotion"):
        emotion_style("bored", 1)


# --------------------------------------------------------------------------------------------
# Articulation and speech
# --------------------------------------------------------------------------------------------


def _track(phones: list[tuple[str, float]], f0: float = 120.0) -> ArticulatoryTrack:
    t, segments = 0.0, []
    for symbol, duration in phones:
        segments.append(Segment(symbol, t, t + duration, stressed=True, phrase=0))
        t += duration
    return build_track(segments, Prosody(f0=f0), np.random.default_rng(0))


def test_utterance_covers_the_clip_with_phone_timing() -> None:
    rng = np.random.default_rng(3)
    segments = plan_utterance(rng, 3.0, rate=1.0)
    assert segments[0].phone == "SIL" and segments[-1].phone == "SIL"
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(3.0)
    for a, b in itertools.pairwise(segments):
        assert a.end == pytest.approx(b.start)
    spoken = [s for s in segments if s.phone != "SIL"]
    assert len(spoken) >= 8
    assert all(0.02 < s.duration < 0.5 for s in spoken)
    assert any(PHONES[s.phone].kind == "vowel" for s in spoken)


def test_lip_closure_and_jaw_follow_the_phones() -> None:
    track = _track([("SIL", 0.2), ("AA", 0.2), ("M", 0.12), ("AA", 0.2), ("IY", 0.2), ("SIL", 0.2)])
    at = {name: int(t * CONTROL_RATE) for name, t in (("aa", 0.3), ("m", 0.46), ("iy", 0.82))}
    assert track.closure[at["m"]] > 0.95 > 0.1 > track.closure[at["aa"]]
    assert track.jaw[at["aa"]] > 0.7 > 0.3 > track.jaw[at["iy"]]
    assert track.nasal[at["m"]] > 0.9 and track.voicing[at["aa"]] > 0.9
    assert track.voicing[int(0.05 * CONTROL_RATE)] < 0.05  # leading silence
    assert np.all(np.abs(np.diff(track.jaw)) < 0.05)  # smooth: coarticulated, no jumps


def _low_band_peak(audio: np.ndarray, start: float, stop: float) -> float:
    """Frequency (Hz) of the strongest spectral peak below 1.2 kHz over [start, stop) s."""
    piece = audio[int(start * SAMPLE_RATE) : int(stop * SAMPLE_RATE)]
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size)))
    freqs = np.fft.rfftfreq(piece.size, 1 / SAMPLE_RATE)
    band = (freqs > 180) & (freqs < 1200)
    smooth = np.convolve(spectrum[band], np.ones(15) / 15, mode="same")  # envelope, not harmonics
    return float(freqs[band][np.argmax(smooth)])


def test_formants_follow_the_jaw_and_silence_is_quiet() -> None:
    voice = Voice(f0=110.0)
    track = _track([("SIL", 0.3), ("AA", 0.4), ("SIL", 0.3), ("IY", 0.4), ("SIL", 0.3)], f0=110.0)
    audio = synthesize(track, voice, np.random.default_rng(1), int(1.7 * SAMPLE_RATE))
    assert audio.dtype == np.float32 and audio.shape == (int(1.7 * SAMPLE_RATE),)
    assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0
    f1_open, f1_closed = _low_band_peak(audio, 0.4, 0.6), _low_band_peak(audio, 1.1, 1.3)
    assert f1_open > 550 and f1_closed < 400  # F1 rises with the jaw opening (AA vs IY)

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] ** 2)))

    assert rms(0.4, 0.6) > 20 * rms(0.05, 0.25) > 0  # a noise floor, never digital silence


def test_speakers_differ_in_face_and_voice() -> None:
    a, b, a_again = sample_speaker(0, 0), sample_speaker(0, 1), sample_speaker(0, 0)
    assert a == a_again
    assert a.sex == "female" and b.sex == "male" and a.voice.f0 > 160 > 140 > b.voice.f0
    assert a.geometry != b.geometry and a.palette != b.palette


# --------------------------------------------------------------------------------------------
# Face rig
# --------------------------------------------------------------------------------------------


def test_neutral_face_is_symmetric_with_closed_lips() -> None:
    mirrored = NEUTRAL_FACE[MIRROR_INDICES] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, NEUTRAL_FACE, atol=1e-9)
    assert mouth_opening(NEUTRAL_FACE[:, :2]) == pytest.approx(0.0, abs=1e-9)


def test_every_speaker_face_is_symmetric_and_ordered() -> None:
    for index in range(6):
        face = shape_face(sample_speaker(0, index).geometry)
        mirrored = face[MIRROR_INDICES] * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(mirrored, face, atol=1e-9)
        assert face[36, 1] < face[39, 1] or sample_speaker(0, index).geometry.eye_tilt <= 0
        assert face[37, 1] < face[41, 1] and face[19, 1] < face[37, 1] < face[30, 1] < face[51, 1]
        assert face[51, 1] < face[62, 1] <= face[66, 1] < face[57, 1] < face[8, 1]


def test_mouth_opens_with_the_jaw_and_closes_with_the_lips() -> None:
    jaw = np.array([0.0, 0.5, 1.0, 1.0, 1.0])
    rounding = np.array([0.0, 0.0, 0.0, 1.0, 0.0])
    closure = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    points = articulate(NEUTRAL_FACE, jaw, rounding, closure)
    opening = mouth_opening(points[..., :2])
    assert opening[0] < 1e-9 < opening[1] < opening[2]
    assert opening[4] < 1e-9  # lips closed over an open jaw
    assert points[2, 8, 1] > points[0, 8, 1] + 0.3  # the chin drops
    width = points[:, 54, 0] - points[:, 48, 0]
    assert width[3] < 0.85 * width[2]  # rounding narrows the mouth
    closed = close_eyes(points.copy(), np.ones(5))
    np.testing.assert_allclose(closed[:, 37, 1], closed[:, 41, 1] - 0.004)


# --------------------------------------------------------------------------------------------
# Rasteriser
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5, 0.37])
def test_polygon_coverage_is_exact_area(offset: float) -> None:
    square = np.array([[10.2, 10.0], [30.2, 10.0], [30.2, 30.0], [10.2, 30.0]]) + offset
    triangle = np.array([[5.3, 40.1], [45.7, 44.9], [20.2, 60.6]])
    for shape in (square, triangle, triangle[::-1]):
        cov = polygon_coverage(shape, 80, 80)
        assert cov is not None
        x, y = shape[:, 0], shape[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
        assert cov.values.sum() == pytest.approx(area, rel=2e-3)
        assert cov.values.min() >= 0 and cov.values.max() <= 1


def test_polygon_edges_are_subpixel_exact() -> None:
    cov = polygon_coverage(
        np.array([[10.0, 10.0], [20.25, 10.0], [20.25, 20.0], [10.0, 20.0]]), 40, 40
    )
    assert cov is not None
    row = cov.values[15 - cov.y0]
    # pixel 10 covers [9.5, 10.5): half inside; pixel 20 covers [19.5, 20.5): 0.75 inside
    assert row[10 - cov.x0] == pytest.approx(0.5)
    assert row[20 - cov.x0] == pytest.approx(0.75)
    assert row[15 - cov.x0] == pytest.approx(1.0)


def test_rings_union_and_clipping_at_the_border() -> None:
    a = np.array([[2.0, 2.0], [8.0, 2.0], [8.0, 8.0], [2.0, 8.0]])
    b = a + np.array([20.0, 5.0])
    both = polygon_coverage([a, b], 40, 40)
    assert both is not None and both.values.sum() == pytest.approx(72.0)
    outside = polygon_coverage(a - 100.0, 40, 40)
    assert outside is None
    half_out = polygon_coverage(a - np.array([5.0, 0.0]), 40, 40)
    assert half_out is not None and half_out.values.sum() == pytest.approx(6.0 * 3.5)


def test_canvas_paints_and_tracks_the_person_mask() -> None:
    canvas = Canvas(np.zeros((32, 32, 3)))
    canvas.fill(
        np.array([[4.0, 4.0], [20.0, 4.0], [20.0, 20.0], [4.0, 20.0]]), (200, 100, 50), person=True
    )
    canvas.stroke(np.array([[2.0, 28.0], [30.0, 28.0]]), 1.0, (255, 255, 255))
    image, mask = canvas.to_uint8()
    assert tuple(image[12, 12]) == (200, 100, 50) and mask[12, 12] == 255
    assert mask[28, 16] == 0 and image[28, 16, 0] == 255  # a stroke is not the person
    assert stroke_outline(np.array([[0.0, 0.0], [10.0, 0.0]]), 2.0).shape == (4, 2)


# --------------------------------------------------------------------------------------------
# One clip: the landmarks are the drawn geometry
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(0, 3), (1, 11)], ids=["S01", "S02"])
def clip(request: pytest.FixtureRequest) -> SynthClip:
    """A 128² surprised (level 3: wide jaw openings) clip, in memory, with raw frames."""
    speaker_index, seed = request.param
    plan = ClipPlan(speaker_index, f"S{speaker_index + 1:02d}", "surprised", 3, 1)
    return make_clip(plan, seed=seed, size=128, seconds=(2.4, 2.6), raw=True)


def _inside(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels fully inside the polygon `points` (independent of the render)."""
    cov = polygon_coverage(points.astype(np.float64), size, size)
    if cov is None:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    rows, cols = np.nonzero(cov.values > 0.999)
    return rows + cov.y0, cols + cov.x0


def test_clip_arrays_follow_the_contract(clip: SynthClip) -> None:
    data = clip.data
    n = data.frames.shape[0]
    assert data.frames.shape == (n, 128, 128, 3) and data.fg_mask.shape == (n, 128, 128)
    assert data.landmarks.shape == (n, 68, 2) and data.landmarks.dtype == np.float32
    assert n == num_video_frames(data.audio.shape[0]) and data.audio.shape[0] == n * 640
    assert data.mel.shape == (80, 1 + data.audio.shape[0] // 200)
    assert data.meta["fps"] == VIDEO_FPS and data.meta["size"] == 128
    height, width = raw_frame_size(128)
    raw = clip.raw_frames
    assert raw is not None and raw.shape == (n, height, width, 3)
    x0, y0, w, h = data.meta["crop_box"]
    np.testing.assert_array_equal(raw[:, y0 : y0 + h, x0 : x0 + w], data.frames)
    np.testing.assert_allclose(clip.raw_landmarks - [x0, y0], data.landmarks, atol=1e-4)


def test_lip_colour_fills_the_lip_landmark_polygons(clip: SynthClip) -> None:
    frames, lm = clip.data.frames.astype(np.float64), clip.data.landmarks
    lips = np.asarray(clip.speaker.palette.lips)
    upper_lip = [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]
    for i in range(frames.shape[0]):
        rows, cols = _inside(lm[i, upper_lip], 128)
        assert rows.size >= 4, f"frame {i}: the upper lip polygon covers no whole pixel"
        # The upper-lip shade; the lip line along 60–64 darkens the row next to it a little.
        error = np.abs(frames[i, rows, cols] - 0.88 * lips).max(axis=1)
        assert np.median(error) < 18 and (error < 25).mean() > 0.8, (i, np.median(error))


def test_mouth_interior_is_dark_when_open(clip: SynthClip) -> None:
    frames, lm = clip.data.frames, clip.data.landmarks
    opening = mouth_opening(lm)
    assert opening.max() > 4.0  # pixels at 128²: the mouth does open
    for i in np.flatnonzero(opening > max(0.75 * opening.max(), 3.5)):
        rows, cols = _inside(lm[i, 60:68], 128)
        luminance = frames[i, rows, cols].mean(axis=-1)
        assert luminance.size >= 10 and luminance.min() < 60
        assert (luminance < 100).mean() > 0.3  # dark inside (teeth and tongue take the rest)
    for i in np.flatnonzero(opening < 0.05):  # closed lips: no interior drawn
        assert _inside(lm[i, 60:68], 128)[0].size == 0


def test_mask_covers_the_face_not_the_corners(clip: SynthClip) -> None:
    masks, lm = clip.data.fg_mask, clip.data.landmarks
    for i in range(masks.shape[0]):
        # Move every landmark 1.5 px toward the nose: jaw points sit on the face's edge.
        towards = lm[i, 30] - lm[i]
        inward = lm[i] + 1.5 * towards / np.maximum(np.linalg.norm(towards, axis=1), 1e-6)[:, None]
        cols = np.clip(np.round(inward[:, 0]).astype(int), 0, 127)
        rows = np.clip(np.round(inward[:, 1]).astype(int), 0, 127)
        assert masks[i][rows, cols].min() > 200, i
        face = _inside(lm[i, :17], 128)
        assert masks[i][face].min() == 255
        assert masks[i][0, 0] == 0 and masks[i][0, -1] == 0
    assert 0.15 < masks.mean() / 255 < 0.7


def test_raw_rendering_gives_the_same_crop() -> None:
    plan = plan_clips(1, 2)[1]
    crop_only = make_clip(plan, seed=5, size=64, seconds=(1.0, 1.2))
    with_raw = make_clip(plan, seed=5, size=64, seconds=(1.0, 1.2), raw=True)
    assert crop_only.raw_frames is None and with_raw.raw_frames is not None
    np.testing.assert_array_equal(crop_only.data.frames, with_raw.data.frames)
    np.testing.assert_array_equal(crop_only.data.fg_mask, with_raw.data.fg_mask)
    np.testing.assert_array_equal(crop_only.data.landmarks, with_raw.data.landmarks)


def test_config_rejects_bad_options(tmp_path: Path) -> None:
    assert SynthConfig(out=tmp_path).num_test_speakers == 2
    assert SynthConfig(out=tmp_path, speakers=1).num_test_speakers == 0
    for bad, match in (
        ({"size": 33}, "even"),
        ({"speakers": 0}, "at least one speaker"),
        ({"min_seconds": 3.0, "max_seconds": 2.0}, "clip length"),
        ({"speakers": 2, "test_speakers": 2}, "training speaker"),
        ({"test_speakers": -1}, "training speaker"),
    ):
        with pytest.raises(ValueError, match=match):
            SynthConfig(out=tmp_path, **bad)
