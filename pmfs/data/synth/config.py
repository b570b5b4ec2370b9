"""The options of `pmfs data synth` (`SynthConfig`), kept light: the command line reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmfs.options import option


@dataclass(frozen=True)
class SynthConfig:
    """Options of `pmfs data synth`, and its parser (each field is a flag, `pmfs.options`).

    Attributes:
        out: the cache folder.
        speakers: number of speakers (S01, S02, ...).
        clips: clips per speaker.
        size: crop side S in pixels.
        seed: master seed.
        raw: also write the raw MEAD layout.
        raw_dir: where the raw layout goes (default `<out>/raw`).
        workers: worker processes (0: one per available CPU).
        min_seconds: shortest clip.
        max_seconds: longest clip.
        test_speakers: speakers held out at the end of the list (default: a quarter, at least
            one when there are two or more speakers).
        overwrite: delete an existing cache (and raw folder) built with other settings.
        progress: show a progress bar.
    """

    out: Path = option(help="the cache folder to write")
    speakers: int = option(8, help="number of speakers (default %(default)s)")
    clips: int = option(12, help="clips per speaker (default %(default)s)")
    size: int = option(256, help="crop side in pixels (default %(default)s)")
    seed: int = option(0, help="master seed (default %(default)s)")
    raw: bool = option(False, help="also write the raw MEAD layout")
    raw_dir: Path | None = option(None, help="raw layout folder (<out>/raw)")
    workers: int = option(0, help="processes (default: all CPUs)")
    min_seconds: float = option(2.0, help="shortest clip (%(default)s)")
    max_seconds: float = option(4.0, help="longest clip (%(default)s)")
    test_speakers: int | None = option(
        None, help="speakers held out at the end (default: a quarter, at least 1)"
    )
    overwrite: bool = option(
        False, help="replace a cache at --out that was built with other settings"
    )
    progress: bool = option(True, help="hide the progress bar")

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.clips < 1:
            raise ValueError(
                f"need at least one speaker and one clip, got {self.speakers} × {self.clips}"
            )
        if self.size < 32 or self.size % 2:
            raise ValueError(
                f"size must be an even number ≥ 32 (H.264 needs even sizes), got {self.size}"
            )
        if not 0.5 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"clip length range [{self.min_seconds}, {self.max_seconds}] s is invalid; "
                "use 0.5 ≤ min_seconds ≤ max_seconds"
            )
        if not 0 <= self.num_test_speakers < self.speakers:
            raise ValueError(
                f"test_speakers={self.test_speakers} must be ≥ 0 and leave at least one "
                f"training speaker out of {self.speakers}"
            )

    @property
    def num_test_speakers(self) -> int:
        """Speakers held out for testing (the last ones)."""
        if self.test_speakers is not None:
            return self.test_speakers
        return max(1, self.speakers // 4) if self.speakers >= 2 else 0

    @property
    def raw_root(self) -> Path:
        """The raw layout's root."""
        return self.raw_dir if self.raw_dir is not None else self.out / "raw"

    def settings(self) -> dict[str, Any]:
        """Everything that changes the content of the cache (its settings hash)."""
        from pmfs.audio import SAMPLE_RATE, VIDEO_FPS
        from pmfs.data.synth.make import GENERATOR_VERSION

        return {
            "generator": "pmfs-synth",
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "size": self.size,
            "speakers": self.speakers,
            "clips": self.clips,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "fps": VIDEO_FPS,
            "sample_rate": SAMPLE_RATE,
        }
