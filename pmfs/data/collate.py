"""Collation of `TalkingFaceDataset` items into the batch contract (`pmfs.batch.Batch`).

Items carry their images as the uint8 channel-last arrays the decoder made; `Collate` stacks them
channel-first and converts them to float32 [0, 1] once per batch (or leaves them uint8 for
`images_to_float` on the device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from pmfs.batch import Background, Batch

Sample = dict[str, Any]
"""One dataset item: tensors, numpy scalars and strings keyed by the batch contract's names."""

IMAGE_KEYS: tuple[str, ...] = ("target", "fg_mask", "ref_frames", "ref_masks")
"""Item keys holding uint8 channel-last images (converted by `Collate`)."""


@dataclass(frozen=True)
class Collate:
    """Collate items of `TalkingFaceDataset` into a `pmfs.batch.Batch`.

    Images travel through the dataset as the uint8 arrays the decoder made; here they are stacked
    channel-first and converted to float32 [0, 1] in one pass per key (in a worker, straight into
    shared memory), and with `background="remove"` composited onto white:
    `image · mask + 1 · (1 − mask)`. Everything else goes through `default_collate`.

    With `float_images=False` the images stay uint8 (`target` (B, 3, H, W), `fg_mask`
    (B, 1, H, W), `ref_frames` (B, K, 3, H, W), plus `ref_masks` (B, K, 1, H, W) for background
    removal): 4× less memory to move between processes; `images_to_float` then makes the batch
    contract on the device (`TalkingFaceDataModule(images_on_device=True)` does it in
    `on_after_batch_transfer`).

    Args:
        background: "keep" or "remove" (the dataset's `SampleSpec.background`).
        float_images: convert here (the batch contract) or leave uint8 for the device.
    """

    background: Background = "keep"
    float_images: bool = True

    def __call__(self, items: Sequence[Sample]) -> Batch:
        rest = [{k: v for k, v in item.items() if k not in IMAGE_KEYS} for item in items]
        batch: dict[str, Any] = default_collate(rest)
        if "target" not in items[0]:  # landmark-only
            return cast(Batch, batch)
        keys: tuple[str, ...] = ("target", "fg_mask", "ref_frames")
        keys += ("ref_masks",) if self.background == "remove" else ()
        for key in keys:
            images = [  # masks get a channel axis: (..., H, W) → (..., H, W, 1)
                item[key] if key in ("target", "ref_frames") else item[key][..., None]
                for item in items
            ]
            batch[key] = _stack_channel_first(images, self.float_images)  # (B, [K,] C, H, W)
        if self.float_images and self.background == "remove":
            _fill_white(batch["target"], batch["fg_mask"])
            _fill_white(batch["ref_frames"], batch.pop("ref_masks"))
        return cast(Batch, batch)


def images_to_float(batch: Batch, background: Background) -> Batch:
    """Finish a `Collate(float_images=False)` batch on its device: uint8 → float32 [0, 1].

    A batch that is landmark-only or already float passes through unchanged.
    """
    target = batch.get("target")
    if target is None or target.dtype != torch.uint8:
        return batch
    for key in ("target", "fg_mask", "ref_frames"):
        batch[key] = batch[key].to(torch.float32).mul_(1.0 / 255.0)
    ref_masks = cast(dict[str, torch.Tensor], batch).pop("ref_masks", None)
    if background == "remove" and ref_masks is not None:
        _fill_white(batch["target"], batch["fg_mask"])
        _fill_white(batch["ref_frames"], ref_masks.to(torch.float32).mul_(1.0 / 255.0))
    return batch


def _stack_channel_first(images: Sequence[np.ndarray], to_float: bool) -> torch.Tensor:
    """Stack uint8 (..., H, W, C) arrays → (B, ..., C, H, W): float32 in [0, 1], or uint8.

    In a DataLoader worker the result is allocated in shared memory (as `default_collate` does),
    so sending it to the main process copies nothing.
    """
    stacked = torch.from_numpy(np.stack(images))  # (B, ..., H, W, C) uint8
    channel_first = stacked.movedim(-1, -3)  # (B, ..., C, H, W), a view
    out = _empty(tuple(channel_first.shape), torch.float32 if to_float else torch.uint8)
    out.copy_(channel_first)
    return out.mul_(1.0 / 255.0) if to_float else out


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor, in shared memory when inside a DataLoader worker."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(nbytes)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def _fill_white(images: torch.Tensor, masks: torch.Tensor) -> None:
    """In place: images · masks + (1 − masks) = 1 − masks · (1 − images) (masks broadcast on C)."""
    images.sub_(1.0).mul_(masks).add_(1.0)
