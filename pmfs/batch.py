"""The batch contract (DESIGN §2): every loader yields it, every stage reads from it.

Also the labels and names every layer shares (emotions, levels, splits, background handling).
This module imports no torch at run time, so commands can build their `--help` from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict, get_args

if TYPE_CHECKING:
    import torch

Emotion = Literal["angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised"]
"""MEAD's eight emotions, by name."""

EMOTIONS: tuple[str, ...] = get_args(Emotion)
"""MEAD's eight emotions; a batch's `emotion` is an index into this tuple."""

Level = Literal[1, 2, 3]
"""MEAD's intensity levels (neutral has level 1 only)."""

LEVELS: tuple[int, ...] = get_args(Level)
"""MEAD intensity levels; a batch's `level` is `level - 1`."""

Split = Literal["train", "val", "test"]
"""A dataset split: held-out clips of training speakers are "val", held-out speakers "test"."""

Background = Literal["keep", "remove"]
"""Background handling: "remove" composites frames on white with their foreground masks."""

DatasetName = Literal["mead", "cremad", "synthetic", "videos"]
"""The datasets a cache can hold (CREMA-D is test-only, zero-shot; "videos": any talking-head
footage, `pmfs data preprocess videos`, without emotion labels)."""

UNLABELLED: tuple[str, int] = ("neutral", 1)
"""The (emotion, level) a clip without emotion labels loads as: the manifest keeps None (nothing
is invented there); batches need an index, and neutral level 1 is what `pmfs infer` uses when no
`--emotion` is given."""

MEAD_TEST_SPEAKERS: tuple[str, ...] = ("M003", "M030", "W024")
"""MEAD's held-out test speakers, never trained on."""


class Batch(TypedDict, total=False):
    """One batch of T-frame windows centred on a target frame.

    Keys (B = batch, T = window, K = references, H×W = image size; landmarks are (x, y) in
    [-1, 1], `grid_sample(align_corners=False)` convention):

    - `mel` (B, T, 80, 16) float32: mel window of each frame of the window.
    - `landmarks` (B, T, 68, 2) float32: ground-truth landmarks of the window's frames.
    - `target` (B, 3, H, W) float32 in [0, 1]: the centre frame.
    - `fg_mask` (B, 1, H, W) float32 in [0, 1]: foreground (person) mask of the centre frame.
    - `ref_frames` (B, K, 3, H, W) float32 in [0, 1]: reference frames.
    - `ref_landmarks` (B, K, 68, 2) float32: their landmarks.
    - `emotion`, `level` (B,) int64: indices into `EMOTIONS` and `LEVELS` (a clip without
      labels, e.g. of the videos layout, loads as neutral, level 1: `UNLABELLED`).
    - `speaker`, `clip` list[str]: identity of each sample.
    - `frame_index` (B,) int64: index of the centre frame in its clip.

    Landmark-only loaders omit `target`, `fg_mask` and `ref_frames`.
    """

    mel: torch.Tensor
    landmarks: torch.Tensor
    target: torch.Tensor
    fg_mask: torch.Tensor
    ref_frames: torch.Tensor
    ref_landmarks: torch.Tensor
    emotion: torch.Tensor
    level: torch.Tensor
    speaker: list[str]
    clip: list[str]
    frame_index: torch.Tensor
