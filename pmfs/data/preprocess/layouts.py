"""Raw dataset layouts (DESIGN §3): the clips of a MEAD or CREMA-D download, the videos of a folder.

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

Videos (any talking-head footage, no labels)::

    <root>/<speaker>/<video>.<mp4|m4v|mov|mkv|avi|webm|flv>    (any depth below <speaker>)
    <root>/<video>.<...>                                       (flat: speaker = the video's stem)
    <same folder>/<video stem>.<wav|flac|m4a|mp3>              (optional; else the video's track)
    <same folder>/<video stem>.npy                             (for `--detector precomputed`)

A video's id is its path below `<root>` without the suffix, folders joined by "_"
(`alice/talk1.mp4` → `alice_talk1`, flat `talk1.mp4` → `talk1`); its clips are cut by
`pmfs.data.preprocess.videos`. Emotion and level are None: the footage has no such labels.
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
"""The labelled layouts, whose files are clips (`discover`)."""

Layout = Literal["mead", "cremad", "videos"]
"""Every raw layout `pmfs data preprocess` reads ("videos": `discover_videos`)."""

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".flv")
"""Video files of the videos layout (any container PyAV reads with these names)."""
AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3")
"""A separate audio file beside a video, same stem, in this order of preference."""

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
        dataset: "mead", "cremad" or "videos".
        speaker: speaker id ("M003", "1001").
        emotion: one of `pmfs.batch.EMOTIONS`; None for the videos layout (no labels).
        level: intensity 1–3; None with `emotion`.
        clip: clip id, unique within the dataset (MEAD: "M003_angry_1_005", CREMA-D: the file
            stem, videos: "<video id>_<k:03d>").
        video: the video file.
        audio: a separate audio file, or None to use the video's audio track.
        landmarks: the precomputed (N, 68, 2) landmark file, or None where there is none; for a
            segment, the file covers the whole video.
        start: first frame of the clip in the video's 25 fps frames (a segment of a long video).
        stop: end (exclusive) of the clip in those frames; None: to the end of the video.
        video_id: the source video's id for a segment of the videos layout ("" otherwise).
        split: "train" or "test" when the split is fixed by the clip's place in its video
            (`--split-by time`), else None.
    """

    dataset: str
    speaker: str
    emotion: str | None
    level: int | None
    clip: str
    video: Path
    audio: Path | None
    landmarks: Path | None
    start: int = 0
    stop: int | None = None
    video_id: str = ""
    split: str | None = None

    @property
    def is_segment(self) -> bool:
        """True for a clip cut out of a longer video (the videos layout)."""
        return bool(self.video_id)

    @property
    def shard_key(self) -> str:
        """What a sharded run hashes: the video (all its clips go to one shard), else the clip."""
        return self.video_id or self.clip


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


# --------------------------------------------------------------------------------------------
# Videos: a folder of talking-head footage
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoSource:
    """One video of the videos layout (the module docstring), before it is cut into clips.

    Attributes:
        speaker: the first folder below the root, or the video's stem in a flat layout.
        video_id: its path below the root without the suffix, folders joined by "_".
        video: the video file.
        audio: the audio file beside it (same stem), or None to use the video's track.
        landmarks: the `.npy` beside it (same stem) for `--detector precomputed`, or None.
    """

    speaker: str
    video_id: str
    video: Path
    audio: Path | None
    landmarks: Path | None


def _visible_files(root: Path) -> list[Path]:
    """Every file below `root` whose path has no hidden part, sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(root).parts)
    )


def discover_videos(root: Path) -> list[VideoSource]:
    """The videos of a folder of footage, sorted by video id.

    Two videos with the same id (`a.mp4` and `a.mov` side by side) keep the first and log the
    other as ignored.

    Raises:
        FileNotFoundError: `root` does not exist or holds no video.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder of videos not found: {root}; pass --root DIR")
    found: dict[str, VideoSource] = {}
    for video in _visible_files(root):
        if video.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        parts = video.relative_to(root).with_suffix("").parts
        video_id = "_".join(parts)
        if video_id in found:
            kept = found[video_id].video
            log.warning("%s: ignored, %s has the same id %r", video, kept, video_id)
            continue
        beside = [video.with_suffix(suffix) for suffix in AUDIO_SUFFIXES]
        found[video_id] = VideoSource(
            speaker=parts[0],
            video_id=video_id,
            video=video,
            audio=_first_existing(*beside),
            landmarks=_first_existing(video.with_suffix(".npy")),
        )
    if not found:
        raise FileNotFoundError(
            f"no video ({', '.join(s[1:] for s in VIDEO_SUFFIXES)}) found under {root}; expected "
            f"{root}/<speaker>/<video> or {root}/<video>"
        )
    return [found[key] for key in sorted(found)]
