"""The settings of one `pmfs infer` run: `InferenceOptions`, which is also the command's parser.

Each field carries its flag's help text (`pmfs.options.option`); `pmfs.commands.infer` builds
its parser from the fields, so a flag and its option cannot drift. Torch-free, so `--help` stays
quick.

`TemporalOptions` are the settings of the predicted landmarks' temporal post-processing
(`pmfs.inference.temporal`: smoothing, the voice-activity gate). `InferenceOptions` inherits
them, so they are `pmfs infer` flags; `pmfs evaluate` runs the same post-processing with the same
defaults (`EvaluateOptions.temporal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pmfs.batch import Emotion, Level
from pmfs.faces import DETECTOR_HELP, ImageDetectorName
from pmfs.options import option

Smoothing = Literal["none", "one_euro", "savgol"]
"""Temporal smoothing of the predicted mouth: none, a One-Euro filter run forward and backward,
or Savitzky–Golay."""


@dataclass(frozen=True)
class TemporalOptions:
    """Temporal post-processing of the predicted landmarks (`pmfs.inference.temporal`).

    Attributes:
        smoothing: the smoother of the audio-driven points (lips and lower jaw), applied in the
            head's canonical frame; both are zero-phase, so a mouth opening is not delayed.
            One-Euro by default: on the demo's test split it takes the jitter as far down as
            Savitzky–Golay and keeps fast motion better (docs/results.md, issue 16).
        savgol_window: Savitzky–Golay window, frames (odd).
        savgol_order: Savitzky–Golay polynomial order (< window).
        euro_min_cutoff: One-Euro cutoff of a still mouth, Hz (lower: smoother when slow).
        euro_beta: how much the One-Euro cutoff rises with the mouth's speed, Hz per pixel/s
            (pixels of the 256 crop, in the canonical frame; higher: less lag when fast).
        vad: close the mouth where silero-vad hears no speech.
        vad_threshold: silero-vad's speech probability threshold.
        vad_ramp: frames over which the mouth closes after speech and opens before it (the
            mouth is fully free at the first speech frame).

    Raises:
        ValueError: an even window, an order ≥ the window, a threshold outside (0, 1), a
            negative ramp or One-Euro parameter.
    """

    smoothing: Smoothing = option(
        "one_euro", help="temporal smoothing of the predicted mouth (zero-phase; none: off)"
    )
    savgol_window: int = option(5, help="Savitzky-Golay window, frames (odd)", minimum=3)
    savgol_order: int = option(2, help="Savitzky-Golay polynomial order", minimum=1)
    euro_min_cutoff: float = option(3.0, help="One-Euro cutoff of a still mouth, Hz", above=0)
    euro_beta: float = option(
        0.8, help="One-Euro cutoff rise, Hz per px/s of mouth speed (256 crop)", minimum=0
    )
    vad: bool = option(True, help="let the mouth move in silence (no voice-activity gate)")
    vad_threshold: float = option(0.5, help="silero-vad speech probability threshold", above=0)
    vad_ramp: int = option(
        3, help="frames over which the mouth closes after speech and opens before it", minimum=0
    )

    def __post_init__(self) -> None:
        if self.savgol_window % 2 == 0 or self.savgol_order >= self.savgol_window:
            raise ValueError(
                f"--savgol-window must be odd and > --savgol-order, got window "
                f"{self.savgol_window}, order {self.savgol_order}"
            )
        if not 0 < self.vad_threshold < 1:
            raise ValueError(f"--vad-threshold must be in (0, 1), got {self.vad_threshold}")
        if self.vad_ramp < 0 or self.euro_min_cutoff <= 0 or self.euro_beta < 0:
            raise ValueError(
                f"need --vad-ramp ≥ 0, --euro-min-cutoff > 0 and --euro-beta ≥ 0, got "
                f"{self.vad_ramp}, {self.euro_min_cutoff} and {self.euro_beta}"
            )


@dataclass(frozen=True)
class InferenceOptions(TemporalOptions):
    """Settings of one `pmfs infer` run (with the `TemporalOptions` it inherits).

    Attributes:
        num_references: K reference frames (None: the checkpoint's `num_references`, else 3).
        size: side of the face crop the renderer makes (None: the checkpoint's `image_size`).
            A renderer with a working size (`network.init_args.working_size`) is sharp at any
            size (256², 512²); the paper's full-resolution renderer is best at its training size.
        device: "cpu", "cuda", "cuda:1" or "auto" (a GPU when there is one).
        template_frames: use only the first frames of the template video (it is then played
            forward and backward); None: as many as the audio needs.
        duration: use only the first `duration` seconds of the audio (a quick preview);
            None: all of it.
        max_gap: longest run of frames without a face that is interpolated; longer runs are
            passed through unchanged.
        smooth_window: Savitzky–Golay window of the landmark track (frames; not a flag).
        crop_scale: crop side / face size (None: preprocessing's default,
            `pmfs.faces.TEMPLATE_CROP_SCALE`); use the value the model's training data was
            cropped with (`pmfs data preprocess --crop-scale`).
        crop_shift: downward shift of the crop centre in face sizes (None: the default,
            `pmfs.faces.TEMPLATE_CROP_SHIFT`).
        emotion: a name of `pmfs.batch.EMOTIONS` (None: neutral for a model trained with
            emotion labels).
        level: intensity, 1–3 (`pmfs.batch.LEVELS`; None: 1).
        chunk: frames per renderer pass.
        detector: the landmark detector of the target's frames ("auto": face-alignment when its
            weights are in the torch hub cache, else dlib); `--landmarks` replaces it.
        batch_size: frames per detector batch.
        crf: H.264 quality of the output.
        progress: show a progress bar.

    Raises:
        ValueError: `duration` ≤ 0, or bad `TemporalOptions` (the other bounds are checked by
            `options_from_args`).
    """

    num_references: int | None = option(
        None,
        help="K reference frames (default: the ckpt's)",
        flag="--references",
        metavar="REFERENCES",
        minimum=1,
    )
    size: int | None = option(
        None,
        help="side of the face crop the renderer makes (default: the ckpt's image_size)",
        minimum=16,
    )
    device: str = option("auto", help="auto, cpu, cuda or cuda:N")
    template_frames: int | None = option(
        None,
        help="use only the first N frames of the face video (played forward and backward)",
        minimum=1,
    )
    duration: float | None = option(
        None, help="use only the first SECONDS of the audio (a quick preview)"
    )
    max_gap: int = option(
        8, help="frames without a face interpolated; longer gaps are passed through unchanged"
    )
    smooth_window: int = 5
    crop_scale: float | None = option(
        None,
        help="crop side / face size, as the model's training data was cropped (default: "
        "`pmfs data preprocess`'s)",
        above=0,
    )
    crop_shift: float | None = option(
        None, help="downward shift of the crop centre, in face sizes (default: preprocessing's)"
    )
    emotion: Emotion | None = option(None, help="emotion label")
    level: Level | None = option(None, help="intensity")
    chunk: int = option(16, help="frames per renderer pass", minimum=1)
    detector: ImageDetectorName = option("auto", help=DETECTOR_HELP)
    batch_size: int = option(16, help="frames per detector batch", minimum=1)
    crf: int = option(18, help="H.264 quality (0 best … 51 worst)")
    progress: bool = option(True, help="hide the progress bar")

    def __post_init__(self) -> None:
        super().__post_init__()
        # Checked here, not with `above=0`, to keep the message's unit.
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"--duration must be > 0 seconds, got {self.duration}")
