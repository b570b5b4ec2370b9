"""The progressive-training schedule of `PMFS` (DESIGN §1): scheduled-sampling ramps per stage,
the start of joint fine-tuning and the renderer's coarse-to-fine image size, counted in training
batches."""

from __future__ import annotations

from dataclasses import dataclass, field

from pmfs.batch import Batch
from pmfs.networks.renderer_blocks import resize

__all__ = ["CoarseToFine", "Curriculum", "Ramp"]


@dataclass(frozen=True)
class Ramp:
    """Share of samples fed the previous stage's prediction, as a function of training batches.

    0 before batch `start`, rising linearly to `final` at batch `end`, then `final`.
    """

    start: int = 0
    end: int = 0
    final: float = 0.5

    def __post_init__(self) -> None:
        if not (0 <= self.start <= self.end and 0.0 <= self.final <= 1.0):
            raise ValueError(
                f"a ramp needs 0 <= start <= end and final in [0, 1], got start={self.start}, "
                f"end={self.end}, final={self.final}"
            )

    def at(self, step: int) -> float:
        """The probability at training batch `step`."""
        if step < self.start:
            return 0.0
        if step >= self.end:
            return self.final
        return self.final * (step - self.start) / (self.end - self.start)


@dataclass(frozen=True)
class CoarseToFine:
    """The renderer trains on smaller frames first: before training batch `until` the batch's
    images are resized to `size`² (antialiased), from then on at the data's own size.

    A renderer with a working size runs its network at that size whatever the frames' size, so
    only its output-size parts (reference warps, `MouthDetail`) see the larger frames: the
    early, cheap batches teach the network, the late ones what only the output size shows (the
    synthetic truth's one-pixel edges at 256² are not in its 128² frames: docs/results.md).
    """

    size: int = 128
    until: int = 0

    def __post_init__(self) -> None:
        if self.size < 8 or self.until < 0:
            raise ValueError(f"need size >= 8 and until >= 0, got {self.size}, {self.until}")

    def frames(self, batch: Batch, step: int) -> Batch:
        """The batch at training batch `step`: its `target` (B, 3, H, W), `fg_mask` (B, 1, H, W)
        and `ref_frames` (B, K, 3, H, W) at `size`² before `until`, else unchanged. Landmarks
        are normalized, so they hold at any size."""
        if step >= self.until or batch["target"].shape[-1] <= self.size:
            return batch
        k = batch["ref_frames"].shape[1]
        refs = resize(batch["ref_frames"].flatten(0, 1), self.size).unflatten(0, (-1, k))
        small = {
            "target": resize(batch["target"], self.size),
            "fg_mask": resize(batch["fg_mask"], self.size),
            "ref_frames": refs,
        }
        return Batch(**(dict(batch) | small))  # type: ignore[typeddict-item]


@dataclass(frozen=True)
class Curriculum:
    """The progressive-training schedule (data in the YAML, logged as `train/schedule/…`).

    Attributes:
        mouth_to_face: how stage 2 moves from true content to stage 1's predictions.
        renderer: how stage 3 moves from true landmarks to stage 2's predictions.
        joint_start: training batch from which the image loss reaches stage 2 through the
            sketches; None: never (stage boundaries always detached).
        joint_weight: scale of that gradient in stage 2.
        renderer_size: the renderer's coarse-to-fine image size; None: the data's size always.
    """

    mouth_to_face: Ramp = field(default_factory=lambda: Ramp(500, 2000, 0.5))
    renderer: Ramp = field(default_factory=lambda: Ramp(1000, 4000, 0.5))
    joint_start: int | None = None
    joint_weight: float = 0.1
    renderer_size: CoarseToFine | None = None

    def frames(self, batch: Batch, step: int) -> Batch:
        """The training batch's images at the size `renderer_size` gives for batch `step`."""
        return batch if self.renderer_size is None else self.renderer_size.frames(batch, step)
