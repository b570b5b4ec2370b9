"""Whole cache clips as model inputs (`pmfs.clip.ClipInputs`), for media, evaluation and figures.

`clip_inputs_from_cache` reads one clip at a model's image size with references spread over its
mouth openings; `clip_inputs_as_trained` prepares it as a checkpoint's data module did (image
size, references, background, reference source). The reference choice is
`pmfs.data.references`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from pmfs.audio import mel_windows
from pmfs.batch import EMOTIONS, LEVELS, UNLABELLED
from pmfs.clip import ClipInputs
from pmfs.data.references import next_other_clip, spread_reference_indices
from pmfs.landmarks import mouth_opening, pixels_to_normalized

if TYPE_CHECKING:
    from pmfs.data.cache import Cache, ClipReader

log = logging.getLogger(__name__)


def clip_inputs_from_cache(
    reader: ClipReader,
    size: int,
    num_references: int = 3,
    max_frames: int | None = None,
    background: str = "keep",
) -> ClipInputs:
    """The `ClipInputs` of one cache clip, references spread over its mouth openings.

    Args:
        reader: an open cache clip (`Cache.open`).
        size: image size of the model (≤ the cache's crop size).
        num_references: K.
        max_frames: keep the first frames only (None: all).
        background: "remove" multiplies every frame by its mask and fills with white, as the
            loaders do for models trained that way.

    Returns:
        The clip's inputs (CPU tensors) with its labels and audio.
    """
    n = reader.num_frames if max_frames is None else min(max_frames, reader.num_frames)
    ref_frames, ref_landmarks = spread_references(reader, size, num_references, background)
    record = reader.meta.get("record", {})
    emotion, level = _labels(record)
    return ClipInputs(
        mel=torch.from_numpy(mel_windows(reader.mel)[:n]).float(),
        frames=_frames(reader, range(n), size, background),
        landmarks=torch.from_numpy(pixels_to_normalized(reader.landmarks[:n], reader.size)).float(),
        ref_frames=ref_frames,
        ref_landmarks=ref_landmarks,
        emotion=emotion,
        level=level,
        audio=reader.audio[: n * 640],
    )


def _labels(record: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """A clip's (emotion, level) indices: its MEAD labels, neutral level 1 for a clip without
    labels (`pmfs.batch.UNLABELLED`, as the loaders map it), None for labels outside MEAD's."""
    emotion, level = record.get("emotion"), record.get("level")
    if emotion is None and level is None:
        emotion, level = UNLABELLED
    if emotion not in EMOTIONS or level not in LEVELS:
        return None, None
    return EMOTIONS.index(emotion), LEVELS.index(level)


def spread_references(
    reader: ClipReader, size: int, count: int, background: str = "keep"
) -> tuple[Tensor, Tensor]:
    """K frames of a whole cache clip spread over its mouth openings (`spread_reference_indices`).

    Returns:
        (K, 3, size, size) float32 [0, 1] frames (white outside the mask with
        `background="remove"`) and their (K, 68, 2) normalized landmarks.
    """
    refs = spread_reference_indices(mouth_opening(reader.landmarks), count)
    landmarks = pixels_to_normalized(reader.landmarks[refs], reader.size)
    return _frames(reader, refs.tolist(), size, background), torch.from_numpy(landmarks).float()


def clip_inputs_as_trained(
    cache: Cache, clip: str, data_config: Mapping[str, Any], max_frames: int | None = None
) -> ClipInputs:
    """A cache clip prepared as a checkpoint's data module prepares it.

    Args:
        cache: the opened cache.
        clip: id of the clip.
        data_config: the data module's init arguments (`pmfs.checkpoints.data_config`):
            `image_size` (absent: the cache's crop size), `num_references` (3),
            `background` ("keep") and `reference_source` ("random": the references come from
            the speaker's next other clip, `next_other_clip`; otherwise from the clip itself).
        max_frames: keep the first frames only (None: all).
    """
    count = int(data_config.get("num_references", 3))
    background = str(data_config.get("background", "keep"))
    size = data_config.get("image_size")
    reader = cache.open(clip)
    try:
        side = reader.size if size is None else int(size)
        inputs = clip_inputs_from_cache(reader, side, count, max_frames, background)
    finally:
        reader.close()
    if data_config.get("reference_source") != "random":
        return inputs
    other = next_other_clip(cache.clips(), clip)
    if other is None:
        log.warning("%s: no other clip of its speaker; references from the clip itself", clip)
        return inputs
    reader = cache.open(other)
    try:
        ref_frames, ref_landmarks = spread_references(reader, inputs.size, count, background)
    finally:
        reader.close()
    return replace(inputs, ref_frames=ref_frames, ref_landmarks=ref_landmarks)


def _frames(reader: ClipReader, indices: range | list[int], size: int, background: str) -> Tensor:
    """(n, 3, size, size) float32 [0, 1] frames, white outside the mask when asked."""
    images = torch.from_numpy(np.stack([reader.frame(i, size) for i in indices]))
    frames = images.permute(0, 3, 1, 2).float() / 255.0
    if background == "remove":
        masks = torch.from_numpy(np.stack([reader.mask(i, size) for i in indices])).float()
        masks = masks.reshape(len(masks), 1, size, size) / 255.0
        frames = 1.0 - masks * (1.0 - frames)
    return frames
