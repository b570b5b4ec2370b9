"""Reference frames: which frames of which clip show the renderer the identity.

One implementation of each reference strategy (`ReferenceSource`), used by training
(`TalkingFaceDataset`), by whole-clip generation (media callbacks, `pmfs evaluate`, `pmfs infer`)
and by figures (`pmfs.data.clips.clip_inputs_as_trained`):

- "driven": K frames of the target's own clip at least `gap` frames from the target frame
  (`ReferencePicker`);
- "random": K frames of another clip of the same speaker: a random one in training and
  evaluation items (`ReferencePicker`), the speaker's next clip for whole clips
  (`next_other_clip`);
- "spread": K frames spread over the quantiles of mouth opening, outside the gap around the
  target (`ReferencePicker`); a whole clip has no target frame, so its references span every
  frame from the most closed to the widest mouth (`spread_reference_indices`).

Frame indices are pure functions of the inputs and the generator passed in, so a seeded loader
picks the same references on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from pmfs.data.cache import ClipReader, ClipRecord

log = logging.getLogger(__name__)

ReferenceSource = Literal["driven", "random", "spread"]


class OpenClips(Protocol):
    """Open cache clips by id (`TalkingFaceDataset`'s reader pool)."""

    def get(self, clip: str) -> ClipReader:
        """The open reader of `clip`."""
        ...

    def opening(self, clip: str) -> np.ndarray:
        """(N,) mouth opening of every frame of `clip` (pixels)."""
        ...


def pick_frames(
    candidates: np.ndarray, k: int, rng: np.random.Generator | None, jitter: bool = False
) -> np.ndarray:
    """K entries of `candidates`: random (distinct when possible) or evenly spaced.

    With `rng` None: the middles of K equal bins of `candidates` (deterministic). With `jitter`:
    one random entry of each of the K bins (used on candidates sorted by mouth opening, so the
    references span its quantiles). Otherwise: K random entries, without replacement when there
    are at least K.

    Args:
        candidates: (n,) frame indices, n ≥ 1.
        k: K.
        rng: the item's generator, or None for the deterministic choice.
        jitter: one random entry per bin instead of K random entries.

    Returns:
        (K,) int64 entries of `candidates`.
    """
    n = len(candidates)
    if rng is None or jitter:
        offset = 0.5 if rng is None else rng.random(k)
        positions = np.floor((np.arange(k) + offset) * n / k).astype(np.int64)
        return candidates[np.minimum(positions, n - 1)].astype(np.int64)
    return rng.choice(candidates, size=k, replace=n < k).astype(np.int64)


def frames_away_from(centre: int, num_frames: int, gap: int) -> tuple[np.ndarray, bool]:
    """Frames of a clip at least `gap` from `centre`, or its farthest ones if none are.

    Returns:
        (n,) int64 sorted frame indices, and whether the clip was long enough for `gap`.
    """
    frames = np.arange(num_frames)
    distance = np.abs(frames - centre)
    candidates = frames[distance >= gap]
    if len(candidates) > 0:
        return candidates, True
    return np.sort(frames[distance >= distance.max()]), False


def spread_reference_indices(openings: np.ndarray, count: int) -> np.ndarray:
    """`count` frames spread over the range of mouth opening (closed … widest), sorted.

    The "spread" choice of a whole clip (no target frame to stay away from).

    Args:
        openings: (N,) mouth opening of each frame.
        count: K.

    Returns:
        (K,) int64 frame indices (repeats only when the clip has fewer than K frames).
    """
    order = np.argsort(openings, kind="stable")
    picks = np.linspace(0, len(order) - 1, count).round().astype(np.int64)
    return np.sort(order[picks])


def other_clips_by_speaker(records: Sequence[ClipRecord]) -> dict[str, dict[str, list[str]]]:
    """speaker → clip → the speaker's other clips, in `records` order ("random" references)."""
    by_speaker: dict[str, list[str]] = {}
    for record in records:
        by_speaker.setdefault(record.speaker, []).append(record.clip)
    return {
        speaker: {clip: [c for c in clips if c != clip] for clip in clips}
        for speaker, clips in by_speaker.items()
    }


def next_other_clip(records: Sequence[ClipRecord], clip: str) -> str | None:
    """The clip after `clip` among its speaker's clips in `records` (cyclic), None when alone.

    The deterministic "random" choice of a whole clip.
    """
    speaker = next(r.speaker for r in records if r.clip == clip)
    ids = [r.clip for r in records if r.speaker == speaker]
    if len(ids) < 2:
        return None
    return ids[(ids.index(clip) + 1) % len(ids)]


@dataclass
class ReferencePicker:
    """The references of one training or evaluation item (a target frame of a clip).

    Attributes:
        source: the strategy (see the module docstring).
        count: K.
        gap: minimum |frame − target| of same-clip references.
        train: random choices (else deterministic, except "random" which draws with the item's
            seeded generator in evaluation too).
        others: speaker → clip → the clips "random" references may come from
            (`other_clips_by_speaker`).
    """

    source: ReferenceSource
    count: int
    gap: int
    train: bool
    others: dict[str, dict[str, list[str]]]
    _warned: set[str] = field(default_factory=set)

    def choose(
        self,
        record: ClipRecord,
        num_frames: int,
        centre: int,
        rng: np.random.Generator | None,
        clips: OpenClips,
    ) -> tuple[str, np.ndarray]:
        """The clip of the references and their (K,) int64 frame indices.

        Args:
            record: the item's clip.
            num_frames: its number of frames N.
            centre: the target frame.
            rng: the item's generator (always given for "random"; None: deterministic).
            clips: open readers of the clips (frame counts and mouth openings).
        """
        if self.count == 0:
            return record.clip, np.zeros(0, dtype=np.int64)
        if self.source == "random":
            others = self.others.get(record.speaker, {}).get(record.clip, [])
            if others:
                assert rng is not None  # "random" always has a generator
                other = others[int(rng.integers(len(others)))]
                frames = np.arange(clips.get(other).num_frames)
                return other, pick_frames(frames, self.count, rng if self.train else None)
            self._warn_once(
                record.speaker,
                f"speaker {record.speaker} has no other clip for random references; "
                f"using frames of the same clip (at least {self.gap} frames away)",
            )
        candidates, long_enough = frames_away_from(centre, num_frames, self.gap)
        if not long_enough:
            self._warn_once(
                record.clip,
                f"clip {record.clip} ({num_frames} frames) is too short for reference_gap="
                f"{self.gap}; using its frames farthest from the target",
            )
        if self.source == "spread":
            opening = clips.opening(record.clip)[candidates]
            candidates = candidates[np.argsort(opening, kind="stable")]
            return record.clip, pick_frames(candidates, self.count, rng, jitter=True)
        return record.clip, pick_frames(candidates, self.count, rng if self.train else None)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)
