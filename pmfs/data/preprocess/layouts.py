"""Raw dataset layouts (DESIGN §3): find the clips of a MEAD or CREMA-D download.

MEAD::

    <root>/<speaker>/video/front/<emotion>/level_<n>/<clip>.mp4
    <root>/<speaker>/audio/<emotion>/level_<n>/<clip>.m4a          (optional; else the mp4's track)
    <root>/<speaker>/landmarks/front/<emotion>/level_<n>/<clip>.npy (for `--detector precomputed`)

CREMA-D::

    <root>/VideoFlash/<actor>_<sentence>_<EMO>_<LEVEL>.flv
    <root>/AudioWAV/<actor>_<sentence>_<EMO>_<LEVEL>.wav
    <root>/Landmarks/<actor>_<sentence>_<EMO>_<LEVEL>.npy           (for `--detector precomputed`)

CREMA-D labels are mapped onto MEAD's (`CREMAD_EMOTIONS`, `CREMAD_LEVELS`): ANG → angry,
DIS → disgusted, FEA → fear, HAP → happy, NEU → neutral, SAD → sad; LO/MD/HI → 1/2/3 and XX
("unspecified") → 1 for neutral (MEAD's only neutral level) and 2 (medium) otherwise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pmfs.batch import EMOTIONS

log = logging.getLogger(__name__)

Dataset = Literal["mead", "cremad"]

CREMAD_EMOTIONS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgusted",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMAD_LEVELS: dict[str, int] = {"LO": 1, "MD": 2, "HI": 3}
_CREMAD_NAME = re.compile(
    r"^(?P<actor>\d+)_(?P<sentence>[A-Z]+)_(?P<emo>[A-Z]{3})_(?P<lvl>[A-Z]{2})$"
)
_LEVEL_DIR = re.compile(r"^level_(?P<n>\d+)$")


@dataclass(frozen=True)
class ClipJob:
    """One raw clip to preprocess.

    Attributes:
        dataset: "mead" or "cremad".
        speaker: speaker id ("M003", "1001").
        emotion: one of `pmfs.batch.EMOTIONS`.
        level: intensity 1–3.
        clip: clip id, unique within the dataset (MEAD: "M003_angry_1_005", CREMA-D: the file stem).
        video: the video file.
        audio: a separate audio file, or None to use the video's audio track.
        landmarks: the precomputed (N, 68, 2) landmark file, or None where there is none.
    """

    dataset: str
    speaker: str
    emotion: str
    level: int
    clip: str
    video: Path
    audio: Path | None
    landmarks: Path | None


def discover(dataset: Dataset, root: Path) -> list[ClipJob]:
    """All clips of a raw download, sorted by clip id.

    Raises:
        FileNotFoundError: `root` does not exist or holds no clip of the layout.
        ValueError: unknown `dataset`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"raw dataset folder not found: {root}; pass --root RAW")
    if dataset == "mead":
        jobs = discover_mead(root)
        pattern = "<speaker>/video/front/<emotion>/level_<n>/<clip>.mp4"
    elif dataset == "cremad":
        jobs = discover_cremad(root)
        pattern = "VideoFlash/<actor>_<sentence>_<EMO>_<LEVEL>.flv"
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use 'mead' or 'cremad'")
    if not jobs:
        raise FileNotFoundError(
            f"no {dataset} clip found under {root} (expected {root}/{pattern}, DESIGN §3)"
        )
    return sorted(jobs, key=lambda j: j.clip)


def _first_existing(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def discover_mead(root: Path) -> list[ClipJob]:
    """MEAD clips under `root` (module docstring); unknown folders are logged and skipped."""
    jobs = []
    for video in sorted(root.glob("*/video/front/*/level_*/*.mp4")):
        level_dir, emotion_dir = video.parent, video.parent.parent
        speaker = emotion_dir.parent.parent.parent.name
        match = _LEVEL_DIR.match(level_dir.name)
        emotion = emotion_dir.name.lower()
        if match is None or emotion not in EMOTIONS or video.name.startswith("."):
            log.warning("%s: not in the MEAD layout (emotion %r), ignored", video, emotion)
            continue
        rel = Path(emotion_dir.name, level_dir.name, video.stem)
        base = root / speaker
        jobs.append(
            ClipJob(
                dataset="mead",
                speaker=speaker,
                emotion=emotion,
                level=int(match["n"]),
                clip=f"{speaker}_{emotion}_{int(match['n'])}_{video.stem}",
                video=video,
                audio=_first_existing(
                    base / "audio" / rel.with_suffix(".m4a"),
                    base / "audio" / "front" / rel.with_suffix(".m4a"),
                ),
                landmarks=_first_existing(
                    base / "landmarks" / "front" / rel.with_suffix(".npy"),
                    base / "landmarks" / rel.with_suffix(".npy"),
                ),
            )
        )
    return jobs


def cremad_labels(emo: str, level: str) -> tuple[str, int]:
    """MEAD (emotion, level) of a CREMA-D EMO/LEVEL pair (see the module docstring).

    Raises:
        ValueError: an EMO or LEVEL code that CREMA-D does not use.
    """
    if emo not in CREMAD_EMOTIONS:
        raise ValueError(f"unknown CREMA-D emotion {emo!r}; expected {list(CREMAD_EMOTIONS)}")
    emotion = CREMAD_EMOTIONS[emo]
    if level == "XX":
        return emotion, 1 if emotion == "neutral" else 2
    if level not in CREMAD_LEVELS:
        raise ValueError(f"unknown CREMA-D level {level!r}; expected LO, MD, HI or XX")
    return emotion, CREMAD_LEVELS[level]


def discover_cremad(root: Path) -> list[ClipJob]:
    """CREMA-D clips under `root` (see the module docstring); odd names are logged and skipped."""
    jobs = []
    for video in sorted((root / "VideoFlash").glob("*.flv")):
        match = _CREMAD_NAME.match(video.stem)
        try:
            if match is None:
                raise ValueError("name is not <actor>_<sentence>_<EMO>_<LEVEL>")
            emotion, level = cremad_labels(match["emo"], match["lvl"])
        except ValueError as exc:
            log.warning("%s: ignored (%s)", video, exc)
            continue
        jobs.append(
            ClipJob(
                dataset="cremad",
                speaker=match["actor"],
                emotion=emotion,
                level=level,
                clip=video.stem,
                video=video,
                audio=_first_existing(root / "AudioWAV" / f"{video.stem}.wav"),
                landmarks=_first_existing(root / "Landmarks" / f"{video.stem}.npy"),
            )
        )
    return jobs
