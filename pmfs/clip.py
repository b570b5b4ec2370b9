"""Whole-clip inputs and outputs of the image stages (media, evaluation, inference).

A training batch holds T-frame windows of random frames; media, `pmfs evaluate` and `pmfs infer`
run a model over *every* frame of one clip instead. `ClipInputs` is that clip, already cropped and
at the model's image size; `FaceRenderer.generate_clip` and `PMFS.generate_clip` turn it into a
`ClipOutput`. `pmfs.data.clips.clip_inputs_from_cache` builds one from a cache clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class ClipInputs:
    """One clip, cropped, at the model's image size H = W.

    Attributes:
        mel: (N, 80, 16) mel window of each of the N frames (`pmfs.audio.mel_windows`).
        frames: (N, 3, H, W) float32 [0, 1]: the target frames (the template video at inference;
            their lower faces are hidden from the renderer, the rest is kept).
        landmarks: (N, 68, 2) normalized landmarks of `frames` (their pose drives stage 2; the
            renderer-only path draws them as they are).
        ref_frames: (K, 3, H, W) float32 [0, 1] reference frames of the identity.
        ref_landmarks: (K, 68, 2) their normalized landmarks.
        emotion: index into `EMOTIONS`, or None.
        level: index into `LEVELS`, or None.
        audio: (samples,) float32 16 kHz mono audio of the clip, for muxing (optional).
    """

    mel: Tensor
    frames: Tensor
    landmarks: Tensor
    ref_frames: Tensor
    ref_landmarks: Tensor
    emotion: int | None = None
    level: int | None = None
    audio: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.frames.shape[0]
        if self.mel.shape[0] != n or self.landmarks.shape[0] != n:
            raise ValueError(
                f"a clip needs one mel window and one landmark set per frame, got "
                f"{self.mel.shape[0]} mel windows, {self.landmarks.shape[0]} landmark sets and "
                f"{n} frames"
            )
        if self.ref_frames.shape[0] != self.ref_landmarks.shape[0] or self.ref_frames.ndim != 4:
            raise ValueError(
                f"ref_frames must be (K, 3, H, W) with K landmark sets, got "
                f"{tuple(self.ref_frames.shape)} and {tuple(self.ref_landmarks.shape)}"
            )

    @property
    def num_frames(self) -> int:
        """N."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> int:
        """H = W."""
        return int(self.frames.shape[-1])

    def to(self, device: torch.device | str) -> ClipInputs:
        """A copy with every tensor on `device`."""
        return ClipInputs(
            mel=self.mel.to(device),
            frames=self.frames.to(device),
            landmarks=self.landmarks.to(device),
            ref_frames=self.ref_frames.to(device),
            ref_landmarks=self.ref_landmarks.to(device),
            emotion=self.emotion,
            level=self.level,
            audio=self.audio,
        )

    def head(self, frames: int) -> ClipInputs:
        """The first `frames` frames (references unchanged)."""
        return ClipInputs(
            mel=self.mel[:frames],
            frames=self.frames[:frames],
            landmarks=self.landmarks[:frames],
            ref_frames=self.ref_frames,
            ref_landmarks=self.ref_landmarks,
            emotion=self.emotion,
            level=self.level,
            audio=None if self.audio is None else self.audio[: frames * 640],
        )


@dataclass
class ClipOutput:
    """What a model made of a clip.

    Attributes:
        frames: (N, 3, H, W) float32 [0, 1] generated frames.
        landmarks: (N, 68, 2) normalized landmarks the frames were drawn from.
        sketches: (N, S, H, W) sketches of the centre frames (S = 1 unless grouped).
    """

    frames: Tensor
    landmarks: Tensor
    sketches: Tensor
