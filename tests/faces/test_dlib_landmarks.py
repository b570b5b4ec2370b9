"""The dlib landmark backend on scikit-image's astronaut photo (shipped with scikit-image, so on
every machine): the 68 points land on the face, the track choice, a face too small to fit, and
`--detector auto` choosing between face-alignment and dlib. Real dlib and its real 68-point model
(`face-recognition-models`); nothing is mocked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pmfs.faces.crop import LandmarkGapError
from pmfs.faces.detect import make_detector, resolve_detector
from pmfs.faces.dlib_detector import (
    LICENCE,
    MIN_FACE,
    DlibDetector,
    DlibLandmarks,
    DlibModelError,
    FaceBox,
    FaceTooSmallError,
    choose_face,
)
from pmfs.inference.options import InferenceOptions
from pmfs.inference.template import load_template
from pmfs.inference.tracking import DlibFaces, NoFaceError, detect_template
from pmfs.landmarks import JAW, LEFT_EYE, LIPS, NOSE_BASE, RIGHT_EYE


@pytest.fixture(scope="module")
def dlib_landmarks() -> DlibLandmarks:
    return DlibLandmarks()


def _scaled_astronaut(scale: float) -> np.ndarray:
    """(S, S, 3) uint8: the 512² astronaut resized by `scale` (Lanczos)."""
    side = round(512 * scale)
    image = Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def test_points_land_on_the_astronauts_face(dlib_landmarks: DlibLandmarks) -> None:
    track = dlib_landmarks.track([data.astronaut()])
    left, top, right, bottom, score = track.boxes[0]
    # measured: box (179, 83)–(266, 170), score 1.53; the only face of the photo
    assert score > 1.0 and track.faces[0] == 1
    assert (left, top, right, bottom) == pytest.approx((179, 83, 266, 170), abs=3)
    points = track.landmarks[0]
    inner = np.concatenate([RIGHT_EYE, LEFT_EYE, NOSE_BASE, LIPS])
    assert (points[inner, 0] > left).all() and (points[inner, 0] < right).all()
    assert (points[inner, 1] > top).all() and (points[inner, 1] < bottom + 10).all()
    right_eye, left_eye = points[RIGHT_EYE].mean(0), points[LEFT_EYE].mean(0)
    nose, mouth, chin = points[30], points[LIPS].mean(0), points[JAW[8]]
    # image's left to right: the subject's right eye first; top to bottom: eyes, nose, mouth, chin
    assert right_eye[0] + 40 < left_eye[0] and abs(right_eye[1] - left_eye[1]) < 8
    assert max(right_eye[1], left_eye[1]) + 15 < nose[1] < mouth[1] - 8 < chin[1] - 20
    assert right_eye[0] < nose[0] < left_eye[0] and right_eye[0] < mouth[0] < left_eye[0]
    # measured on this photo: eyes (203, 102) / (247, 104), nose tip (225, 127), chin (221, 178)
    np.testing.assert_allclose(points[30], (225, 127), atol=4)
    np.testing.assert_allclose(points[8], (221, 178), atol=4)


def test_the_tracked_face_wins_over_a_better_scoring_newcomer() -> None:
    tracked = FaceBox(100, 100, 199, 199, 0.2)
    same = FaceBox(104, 98, 203, 197, 0.15)  # the tracked face, moved, a low score
    other = FaceBox(400, 300, 599, 499, 2.5)  # a second, larger face scoring higher
    assert choose_face([other, same], tracked) == same
    assert choose_face([other], tracked) is None  # a gap, never a jump to the other face
    assert choose_face([other, same], None) == other  # no track: the best score starts one
    weak = FaceBox(10, 10, 89, 89, 0.12)  # a false face's score (astronaut at upsample 1)
    assert choose_face([weak], None) is None
    assert same.iou(tracked) > 0.8 and other.iou(tracked) == 0.0


def test_a_tiny_face_is_no_face_with_its_reason(dlib_landmarks: DlibLandmarks) -> None:
    tiny = _scaled_astronaut(0.5)  # HOG finds the face at upsample 1: 45 px, under 64
    track = dlib_landmarks.track([tiny, tiny])
    assert np.isnan(track.landmarks).all()
    assert track.too_small == pytest.approx([45, 45], abs=4)
    reason = track.reason()
    assert reason is not None and "2 with a face too small" in reason and "under 64 px" in reason
    detector = DlibDetector()  # the preprocessing detector needs no job: `None` stands for it
    with pytest.raises(FaceTooSmallError, match=r"^face_too_small: the face is at most 4\d px"):
        detector([tiny] * 3, None, 25.0)  # type: ignore[arg-type]
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(LandmarkGapError, match=r"^no_face: no face found in any of the 2 frames"):
        detector([blank, blank], None, 25.0)  # type: ignore[arg-type]
    assert detector([data.astronaut()], None, 25.0).shape == (1, 68, 2)  # type: ignore[arg-type]


def test_inference_says_why_a_tiny_face_is_no_face(tmp_path: Path) -> None:
    image = tmp_path / "tiny.png"
    Image.fromarray(_scaled_astronaut(0.5)).save(image)
    options = InferenceOptions(detector="dlib")
    with pytest.raises(NoFaceError) as info:
        detect_template(load_template(image), options)
    message = str(info.value)
    assert "\n" not in message and "tiny.png" in message
    assert "1 with a face too small for the 68-point model (largest 4" in message
    assert f"under {MIN_FACE} px" in message


def test_a_face_just_large_enough_is_fitted(dlib_landmarks: DlibLandmarks) -> None:
    track = dlib_landmarks.track([_scaled_astronaut(0.8)])  # box 73 px at upsample 0
    assert np.isfinite(track.landmarks).all() and track.boxes[0, 2] - track.boxes[0, 0] + 1 >= 64
    assert track.reason() is None


def test_large_frames_are_reduced_before_detection(dlib_landmarks: DlibLandmarks) -> None:
    """The astronaut in a 2048² frame is found on a 512² copy and fitted at full size: the
    landmarks are 4× those of the 512² photo (± the model's integer pixels and the box)."""
    big = np.asarray(
        Image.fromarray(data.astronaut()).resize((2048, 2048), Image.Resampling.LANCZOS)
    )
    assert dlib_landmarks.factor(2048, 2048) == 4
    small, large = dlib_landmarks.track([data.astronaut()]), dlib_landmarks.track([big])
    centre = lambda p: (p + 0.5) * 4 - 0.5  # noqa: E731  pixel-index convention
    error = np.abs(large.landmarks[0] - centre(small.landmarks[0]))
    assert np.median(error) < 2 and error.max() < 12  # measured: median 0.5, max 5.5 px


def test_auto_picks_dlib_without_face_alignment_weights_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    choice = resolve_detector("auto")
    assert choice.name == "dlib"
    assert choice.line.startswith("landmark detector: dlib (--detector auto: face-alignment's")
    assert "s3fd-619a316812.pth" in choice.line and str(tmp_path / "empty") in choice.line
    assert LICENCE in choice.line and "\n" not in choice.line
    assert isinstance(make_detector("auto"), DlibDetector)
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    track = detect_template(load_template(path), InferenceOptions())  # detector="auto"
    assert np.isfinite(track.landmarks).all() and track.rule == "the tracked one is used"


def test_auto_picks_face_alignment_when_its_weights_are_cached(torch_home: Path) -> None:
    choice = resolve_detector("auto")
    assert choice.name == "face-alignment" and str(torch_home) in choice.line
    assert LICENCE not in choice.line
    assert resolve_detector("dlib").line == f"landmark detector: dlib (--detector dlib; {LICENCE})"


def test_dlib_faces_is_the_inference_detector() -> None:
    detections = DlibFaces()(np.stack([data.astronaut()] * 2))
    assert detections.landmarks.shape == (2, 68, 2) and (detections.faces == 1).all()
    assert detections.rule == "the tracked one is used" and detections.reason is None


def test_without_dlib_auto_names_both_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine with neither face-alignment's weights nor dlib (dlib hidden from the import
    system): one error naming the weights folder and the packages to install."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "dlib" else find_spec(name, *a),
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(DlibModelError) as info:
        resolve_detector("auto")
    message = str(info.value)
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in message and "\n" not in message
    assert "pip install dlib-bin face-recognition-models" in message
