"""Settings of `pmfs data preprocess` (kept free of heavy imports: the CLI parser reads them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

DetectorName = Literal["face-alignment", "precomputed"]

TEMPLATE_CROP_SCALE = 1.7857
"""Crop side / face size of `pmfs.landmarks.TEMPLATE` (= `crop.template_geometry()[0]`)."""
TEMPLATE_CROP_SHIFT = -0.156
"""Crop centre below the face's bounding-box centre, in face sizes, of `TEMPLATE` (negative:
above; = `crop.template_geometry()[1]`)."""


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that changes a clip's content (hashed into the manifest's `settings_hash`).

    Attributes:
        size: side S of the square crops in pixels.
        detector: "precomputed" or "face-alignment".
        smooth_window: Savitzky–Golay window in frames (≤ 2: no smoothing).
        max_gap: longest run of frames without a face that is interpolated.
        crop_scale: crop side / face size; the default (1.7857) and `crop_shift`'s (-0.156,
            i.e. the centre above the face's) place faces like `pmfs.landmarks.TEMPLATE`, the
            project's canonical head crop, which the synthetic data follows too.
        crop_shift: downward shift of the crop centre, in face sizes.
        max_av_mismatch: largest |audio − video| duration difference in seconds that is
            tolerated (the audio is then cut or zero-padded to the video).
        jpeg_quality: quality of the stored frames.
    """

    size: int = 256
    detector: DetectorName = "face-alignment"
    smooth_window: int = 5
    max_gap: int = 8
    crop_scale: float = TEMPLATE_CROP_SCALE
    crop_shift: float = TEMPLATE_CROP_SHIFT
    max_av_mismatch: float = 0.2
    jpeg_quality: int = 95

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings plus the output frame rate and sample rate (the cache's settings)."""
        from pmfs.audio import SAMPLE_RATE, VIDEO_FPS

        return {**dataclasses.asdict(self), "fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE}
