"""Faces in raw frames: landmark detectors and crop geometry, shared by preprocessing and inference.

`pmfs.faces.detect` finds each frame's 68 landmarks (face-alignment's S3FD + 2D FAN, batched;
dlib's HOG detector + 68-point shape predictor, tracked, `pmfs.faces.dlib_detector`; or a
precomputed .npy) and chooses one with `--detector auto`; `pmfs.faces.crop` fills gaps in a
landmark track, smooths it and cuts one stable square crop. `pmfs data preprocess` and
`pmfs infer` use the same functions, so a face is cropped at inference exactly as the model's
training data was.

This module imports nothing heavy: the command-line parsers read the names below.
"""

from __future__ import annotations

from typing import Literal

DetectorName = Literal["auto", "face-alignment", "dlib", "precomputed"]
"""The landmark detectors of `pmfs.faces.detect.make_detector` ("auto": face-alignment when its
weights are in the torch hub cache, else dlib; `pmfs.faces.detect.resolve_detector`)."""

ImageDetectorName = Literal["auto", "face-alignment", "dlib"]
"""The detectors that look at the pixels (`pmfs infer --detector`; a landmark file is
`--landmarks`)."""

DLIB_LICENCE_NOTE = (
    "dlib's 68-point model is trained on iBUG 300-W: research only, no commercial use"
)
"""The licence line of `--detector` in `--help` (= `pmfs.faces.dlib_detector.LICENCE`)."""

DETECTOR_HELP = (
    "auto: face-alignment when its weights are in the torch hub cache, else dlib; "
    "face-alignment: S3FD + 2D FAN; dlib: HOG + 68-point shape predictor, no download "
    f"({DLIB_LICENCE_NOTE})"
)
"""The `--detector` help of `pmfs data preprocess` and `pmfs infer`."""

TEMPLATE_CROP_SCALE = 1.7857
"""Crop side / face size of `pmfs.landmarks.TEMPLATE` (= `crop.template_geometry()[0]`)."""
TEMPLATE_CROP_SHIFT = -0.156
"""Crop centre below the face's bounding-box centre, in face sizes, of `TEMPLATE` (negative:
above; = `crop.template_geometry()[1]`)."""
