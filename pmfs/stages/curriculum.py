"""The progressive-training schedule of `PMFS` (DESIGN §1): scheduled-sampling ramps per stage
and the start of joint fine-tuning, counted in training batches."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Curriculum", "Ramp"]


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
class Curriculum:
    """The progressive-training schedule (data in the YAML, logged as `train/schedule/…`).

    Attributes:
        mouth_to_face: how stage 2 moves from true content to stage 1's predictions.
        renderer: how stage 3 moves from true landmarks to stage 2's predictions.
        joint_start: training batch from which the image loss reaches stage 2 through the
            sketches; None: never (stage boundaries always detached).
        joint_weight: scale of that gradient in stage 2.
    """

    mouth_to_face: Ramp = field(default_factory=lambda: Ramp(500, 2000, 0.5))
    renderer: Ramp = field(default_factory=lambda: Ramp(1000, 4000, 0.5))
    joint_start: int | None = None
    joint_weight: float = 0.1
