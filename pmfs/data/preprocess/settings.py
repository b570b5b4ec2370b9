"""Settings of `pmfs data preprocess`: the options that change a clip's content.

`PreprocessSettings` is also the command's parser for them (`pmfs.options`): each field is a flag
of `pmfs data preprocess` (`--size`, `--detector`, ...) except `jpeg_quality`. `VideoSettings`
holds the options of the videos layout (clip lengths, split). Kept free of heavy imports: the
command line reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from pmfs.faces import DETECTOR_HELP, TEMPLATE_CROP_SCALE, TEMPLATE_CROP_SHIFT, DetectorName
from pmfs.options import option


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that changes a clip's content (hashed into the manifest's `settings_hash`).

    Attributes:
        size: side S of the square crops in pixels.
        detector: "auto" (resolved to face-alignment or dlib before a run,
            `pmfs.faces.detect.resolve_detector`), "face-alignment", "dlib" or "precomputed".
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
        "auto", help=DETECTOR_HELP + "; precomputed: the per-clip .npy landmark files of the layout"
    )
    smooth_window: int = option(5, help="Savitzky-Golay window, frames (<= 2: off)")
    max_gap: int = option(8, help="longest gap interpolated, frames")
    crop_scale: float = option(TEMPLATE_CROP_SCALE, help="crop side / face size")
    crop_shift: float = option(TEMPLATE_CROP_SHIFT, help="crop centre shift down, face sizes")
    max_av_mismatch: float = option(0.2, help="seconds of A/V length difference tolerated")
    jpeg_quality: int = 95  # not a flag

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings plus the output frame rate, how frames are resampled to it (the
        nearest frame in time, `pmfs.video`; clips cut before that rule have another hash and
        are redone on resume) and the sample rate: the cache's settings."""
        from pmfs.audio import SAMPLE_RATE, VIDEO_FPS

        rate = {"fps": VIDEO_FPS, "frame_sampling": "nearest", "sample_rate": SAMPLE_RATE}
        return {**dataclasses.asdict(self), **rate}


SplitBy = Literal["speaker", "time"]
"""How a videos cache is split: held-out speakers, or the last part of every video."""


@dataclass(frozen=True)
class VideoSettings:
    """How the videos layout is cut into clips and split (hashed with `PreprocessSettings`).

    Attributes:
        min_clip: shortest clip in seconds; a video (or, with `split_by="time"`, the train or
            test part of one) shorter than this is recorded as skipped (`too_short`).
        max_clip: longest clip in seconds, at least 2 × `min_clip`.
        min_pause: shortest pause (audio quieter than the video's speech level) a video is cut
            at, in seconds; where no pause falls between `min_clip` and `max_clip` the cut is
            made at `max_clip` (`pmfs.data.preprocess.segment`).
        split_by: "speaker" (held-out speakers, a `test_fraction` of them chosen by a hash of
            their names) or "time" (the last `test_fraction` of every video is test, with a cut
            there, so that no clip spans the two parts).
        test_fraction: share of the speakers, or of every video's duration, that is test.
    """

    min_clip: float = option(2.0, help="shortest clip, seconds", above=0.0)
    max_clip: float = option(10.0, help="longest clip, seconds (>= 2 x --min-clip)", above=0.0)
    min_pause: float = option(0.2, help="shortest pause a video is cut at, seconds", above=0.0)
    split_by: SplitBy = option(
        "speaker", help="test = held-out speakers, or the last part of every video (time)"
    )
    test_fraction: float = option(0.2, help="share of speakers / of each video for test", minimum=0)

    def __post_init__(self) -> None:
        if self.max_clip < 2 * self.min_clip:
            raise ValueError(
                f"--max-clip ({self.max_clip:g} s) must be at least 2 x --min-clip "
                f"({self.min_clip:g} s), so that a long video can always be cut"
            )
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be in [0, 1), got {self.test_fraction:g}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings (merged into the cache's settings, so they are hashed)."""
        return dataclasses.asdict(self)
