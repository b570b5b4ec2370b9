"""Settings of `pmfs data preprocess`: the options that change a clip's content.

`PreprocessSettings` is also the command's parser for them (`pmfs.options`): each field is a flag
of `pmfs data preprocess` (`--size`, `--detector`, ...) except `jpeg_quality`. Kept free of heavy
imports: the command line reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pmfs.faces import TEMPLATE_CROP_SCALE, TEMPLATE_CROP_SHIFT, DetectorName
from pmfs.options import option


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

    size: int = option(256, help="crop side in pixels")
    detector: DetectorName = option(
        "face-alignment",
        help="face-alignment (S3FD + 2D FAN) or the per-clip .npy landmark files of the layout",
    )
    smooth_window: int = option(5, help="Savitzky-Golay window, frames (<= 2: off)")
    max_gap: int = option(8, help="longest gap interpolated, frames")
    crop_scale: float = option(TEMPLATE_CROP_SCALE, help="crop side / face size")
    crop_shift: float = option(TEMPLATE_CROP_SHIFT, help="crop centre shift down, face sizes")
    max_av_mismatch: float = option(0.2, help="seconds of A/V length difference tolerated")
    jpeg_quality: int = 95  # not a flag

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings plus the output frame rate and sample rate (the cache's settings)."""
        from pmfs.audio import SAMPLE_RATE, VIDEO_FPS

        return {**dataclasses.asdict(self), "fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE}
