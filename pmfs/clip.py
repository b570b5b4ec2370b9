"""Whole-clip inputs and outputs of the image stages (media, evaluation, inference).

A training batch holds T-frame windows of random frames; media, `pmfs evaluate` and `pmfs infer`
run a model over *every* frame of one clip instead. `ClipInputs` is that clip, already cropped and
at the model's image size; `FaceRenderer.generate_clip` and `PMFS.generate_clip` turn it into a
`ClipOutput`. `pmfs.data.clips.clip_inputs_from_cache` builds one from a cache clip.

At inference the target frames repeat (a template video played forward and backward, or one
image): `ClipInputs.frames` then holds each distinct frame once and `frame_order` says which one
each output frame shows, so memory does not grow with the audio's length; `target_frames` builds
a chunk's (c, 3, H, W) frames on demand.
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
            their lower faces are hidden from the renderer, the rest is kept); with
            `frame_order`, (M, 3, H, W): the M distinct frames, each once. Read a range of
            output frames with `target_frames`, which works in both cases.
        landmarks: (N, 68, 2) normalized landmarks of the N target frames (their pose drives
            stage 2; the renderer-only path draws them as they are).
        ref_frames: (K, 3, H, W) float32 [0, 1] reference frames of the identity.
        ref_landmarks: (K, 68, 2) their normalized landmarks.
        emotion: index into `EMOTIONS`, or None.
        level: index into `LEVELS`, or None.
        audio: (samples,) float32 16 kHz mono audio of the clip, for muxing (optional).
        frame_order: (N,) int64 row of `frames` each output frame shows; None: `frames` has one
            row per output frame.
    """

    mel: Tensor
    frames: Tensor
    landmarks: Tensor
    ref_frames: Tensor
    ref_landmarks: Tensor
    emotion: int | None = None
    level: int | None = None
    audio: np.ndarray | None = None
    frame_order: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.frames.shape[0] if self.frame_order is None else self.frame_order.shape[0]
        if self.mel.shape[0] != n or self.landmarks.shape[0] != n:
            raise ValueError(
                f"a clip needs one mel window and one landmark set per frame, got "
                f"{self.mel.shape[0]} mel windows, {self.landmarks.shape[0]} landmark sets and "
                f"{n} frames"
            )
        order, rows = self.frame_order, self.frames.shape[0]
        if order is not None and n and not (int(order.min()) >= 0 and int(order.max()) < rows):
            raise ValueError(
                f"frame_order must index the {rows} distinct frames, got values "
                f"{int(order.min())}..{int(order.max())}"
            )
        if self.ref_frames.shape[0] != self.ref_landmarks.shape[0] or self.ref_frames.ndim != 4:
            raise ValueError(
                f"ref_frames must be (K, 3, H, W) with K landmark sets, got "
                f"{tuple(self.ref_frames.shape)} and {tuple(self.ref_landmarks.shape)}"
            )

    @property
    def num_frames(self) -> int:
        """N."""
        return int(self.mel.shape[0])

    def target_frames(self, start: int, stop: int) -> Tensor:
        """(c, 3, H, W) target frames `start` to `stop` (exclusive) of the N, built on demand."""
        if self.frame_order is None:
            return self.frames[start:stop]
        return self.frames[self.frame_order[start:stop]]

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
            frame_order=None if self.frame_order is None else self.frame_order.to(device),
        )

    def head(self, frames: int) -> ClipInputs:
        """The first `frames` frames (references unchanged)."""
        order = self.frame_order
        return ClipInputs(
            mel=self.mel[:frames],
            frames=self.frames if order is not None else self.frames[:frames],
            landmarks=self.landmarks[:frames],
            ref_frames=self.ref_frames,
            ref_landmarks=self.ref_landmarks,
            emotion=self.emotion,
            level=self.level,
            audio=None if self.audio is None else self.audio[: frames * 640],
            frame_order=None if order is None else order[:frames],
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
