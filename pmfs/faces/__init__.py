"""Faces in raw frames: landmark detectors and crop geometry, shared by preprocessing and inference.

`pmfs.faces.detect` finds each frame's 68 landmarks (face-alignment's S3FD + 2D FAN, batched,
or a precomputed .npy); `pmfs.faces.crop` fills gaps in a landmark track, smooths it and cuts
one stable square crop. `pmfs data preprocess` and `pmfs infer` use the same functions, so a
face is cropped at inference exactly as the model's training data was.

This module imports nothing heavy: the command-line parsers read the names below.
"""

from __future__ import annotations

from typing import Literal

DetectorName = Literal["face-alignment", "precomputed"]
"""The landmark detectors of `pmfs.faces.detect.make_detector`."""

TEMPLATE_CROP_SCALE = 1.7857
"""Crop side / face size of `pmfs.landmarks.TEMPLATE` (= `crop.template_geometry()[0]`)."""
TEMPLATE_CROP_SHIFT = -0.156
"""Crop centre below the face's bounding-box centre, in face sizes, of `TEMPLATE` (negative:
above; = `crop.template_geometry()[1]`)."""
