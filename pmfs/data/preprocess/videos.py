"""The videos layout: each video cut into clips (its *plan*), and the split of a videos cache.

`plan_video` probes a video, reads its audio once (16 kHz mono, sample 0 at the first frame),
checks it (audio present, readable, not silent, as long as the video within
`--max-av-mismatch`) and cuts it at the pauses of its speech (`pmfs.data.preprocess.segment`,
`VideoSettings`). A video that fails a check is one skipped manifest row whose clip id is the
video id; a part too short to give a clip is one skipped row `too_short`; every other piece is a
`ClipJob` `<video id>_<k:03d>` preprocessed like a MEAD clip.

Plans are saved in the cache as `videos/<video id>.json` (atomically): a rerun, the split and the
merge of a sharded run read them instead of decoding the audio again. A plan is redone when the
cache settings or the video's or audio's size or modification time change.

The split (`split_extra`) is written into cache.json's `extra`: `split_by: time` lists the
`test_clips` (the pieces of the last `test_fraction` of every video), `split_by: speaker` the
`test_speakers` (a `test_fraction` of the speakers, ordered by a hash of their names, so that
the choice does not depend on the order of the files). `pmfs.data.splits` reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, SilentAudioError, check_not_silent
from pmfs.data.preprocess.layouts import ClipJob, VideoSource
from pmfs.data.preprocess.reading import ClipSkipError, iter_frame_range, probe, source_audio
from pmfs.data.preprocess.segment import Piece, plan_pieces
from pmfs.data.preprocess.settings import PreprocessSettings, VideoSettings
from pmfs.video import VideoError, resample_indices

log = logging.getLogger(__name__)

DATASET = "videos"
PLANS_DIR = "videos"
"""The cache's folder of plans, one `<video id>.json` per video."""


@dataclass
class VideoPlan:
    """How one video is cut (saved as `videos/<video id>.json`).

    Attributes:
        video_id: the video's id (`VideoSource.video_id`).
        speaker: its speaker.
        settings_hash: the cache settings the plan was made with.
        source: the files it was made from: video and audio → [path, size, mtime_ns] (or None).
        frames: the video's frames at 25 fps (from its header).
        skip: why the whole video is unusable ("code: detail"), or "".
        pieces: its clips in order (`segment.Piece`), clip k named `<video id>_<k:03d>`.
    """

    video_id: str
    speaker: str
    settings_hash: str
    source: dict[str, list[Any] | None]
    frames: int = 0
    skip: str = ""
    pieces: list[Piece] = field(default_factory=list)

    def clip_id(self, k: int) -> str:
        """The clip id of piece k."""
        return f"{self.video_id}_{k:03d}"

    def to_json(self) -> str:
        """The plan file's text (stable: sorted keys)."""
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> VideoPlan:
        """A plan read back from `to_json`'s text."""
        data = json.loads(text)
        data["pieces"] = [Piece(**piece) for piece in data["pieces"]]
        return cls(**data)


def source_signature(source: VideoSource) -> dict[str, list[Any] | None]:
    """The files a plan depends on, as [path, size, mtime_ns] (None: no such file)."""

    def one(path: Path | None) -> list[Any] | None:
        if path is None or not path.is_file():
            return None
        stat = path.stat()
        return [str(path), stat.st_size, stat.st_mtime_ns]

    return {"video": one(source.video), "audio": one(source.audio)}


def plan_path(out: Path, video_id: str) -> Path:
    """Where a video's plan is saved in the cache."""
    return Path(out) / PLANS_DIR / f"{video_id}.json"


def load_plan(out: Path, source: VideoSource, settings_hash: str) -> VideoPlan | None:
    """The saved plan of `source` if it was made with these settings from these files."""
    path = plan_path(out, source.video_id)
    try:
        plan = VideoPlan.from_json(path.read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None
    current = plan.settings_hash == settings_hash and plan.source == source_signature(source)
    return plan if current else None


def save_plan(out: Path, plan: VideoPlan) -> None:
    """Write a plan atomically (safe from worker processes and concurrent shards)."""
    path = plan_path(out, plan.video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.write_text(plan.to_json())
    os.replace(tmp, path)


def plan_video(
    source: VideoSource,
    settings: PreprocessSettings,
    videos: VideoSettings,
    settings_hash: str,
) -> VideoPlan:
    """Probe, read and check a video and cut it into pieces (the module docstring).

    Never raises for a bad video: the plan's `skip` says what is wrong with it ("error: …"
    with the traceback logged for anything unexpected).
    """
    plan = VideoPlan(source.video_id, source.speaker, settings_hash, source_signature(source))
    try:
        info = probe(source.video)
        plan.frames = len(resample_indices(info.num_frames, info.fps))
        _check_decodes_to_the_end(source.video, plan.frames)
        audio = source_audio(source.video, source.audio, info)
        _check_durations(plan.frames, len(audio), settings.max_av_mismatch, source)
        check_not_silent(audio, source.audio or source.video)
    except SilentAudioError as exc:
        plan.skip = f"silent_audio: {exc}"
        return plan
    except ClipSkipError as exc:
        plan.skip = str(exc)
        return plan
    except Exception as exc:  # one odd video must not stop a dataset run
        log.exception("%s: unexpected error", source.video)
        plan.skip = f"error: {type(exc).__name__}: {exc}"
        return plan
    min_len = max(1, round(videos.min_clip * VIDEO_FPS))
    plan.pieces = plan_pieces(
        audio,
        plan.frames,
        min_len=min_len,
        max_len=max(2 * min_len, round(videos.max_clip * VIDEO_FPS)),
        min_pause=max(1, round(videos.min_pause * VIDEO_FPS)),
        test_fraction=videos.test_fraction if videos.split_by == "time" else None,
    )
    return plan


def _check_decodes_to_the_end(video: Path, frames: int) -> None:
    """A truncated file's header still lists all its frames: decode one near the end (after a
    seek), allowing the shortfall `pmfs.video` allows (2 frames or 1 %)."""
    last = max(0, frames - 3 - frames // 100)
    try:
        found = next(iter_frame_range(video, VIDEO_FPS, last, last + 1), None) is not None
    except (VideoError, FileNotFoundError) as exc:
        raise ClipSkipError(f"unreadable_video: {exc}") from exc
    if not found:
        raise ClipSkipError(
            f"unreadable_video: {video} lists {frames} frames (at 25 fps) but frame {last} does "
            "not decode: the file is truncated or corrupt; re-download or re-export it"
        )


def _check_durations(frames: int, samples: int, tolerance: float, source: VideoSource) -> None:
    video_s, audio_s = frames / VIDEO_FPS, samples / SAMPLE_RATE
    if abs(video_s - audio_s) > tolerance:
        raise ClipSkipError(
            f"av_mismatch: {source.video} has {video_s:.2f} s of video but {audio_s:.2f} s of "
            f"audio (tolerance {tolerance} s, --max-av-mismatch)"
        )


def plan_jobs(plan: VideoPlan, source: VideoSource) -> tuple[list[ClipJob], dict[str, str]]:
    """The clip jobs of a plan, and the skipped rows it makes (clip id → reason).

    The last piece of a video runs to the end of the file (`stop=None`): the header's frame
    count, from which the plan was made, can be one off the frames that decode.
    """
    if plan.skip:
        return [], {plan.video_id: plan.skip}
    jobs, skipped = [], {}
    for k, piece in enumerate(plan.pieces):
        clip = plan.clip_id(k)
        if piece.too_short:
            seconds = (piece.stop - piece.start) / VIDEO_FPS
            part = f"its {piece.split} part" if piece.split else "it"
            skipped[clip] = (
                f"too_short: {source.video} frames {piece.start}-{piece.stop}: {part} lasts "
                f"{seconds:.2f} s, under --min-clip"
            )
            continue
        last = piece.stop >= plan.frames
        jobs.append(
            ClipJob(
                dataset=DATASET,
                speaker=source.speaker,
                emotion=None,
                level=None,
                clip=clip,
                video=source.video,
                audio=source.audio,
                landmarks=source.landmarks,
                start=piece.start,
                stop=None if last else piece.stop,
                video_id=source.video_id,
                split=piece.split,
            )
        )
    return jobs, skipped


# --------------------------------------------------------------------------------------------
# The split
# --------------------------------------------------------------------------------------------


def saved_plans(out: Path, settings_hash: str) -> list[VideoPlan]:
    """Every plan saved in the cache with these settings, sorted by video id."""
    plans = []
    for path in sorted((Path(out) / PLANS_DIR).glob("*.json")):
        try:
            plan = VideoPlan.from_json(path.read_text())
        except (OSError, ValueError, TypeError, KeyError):
            log.warning("%s: not a readable plan, ignored", path)
            continue
        if plan.settings_hash == settings_hash:
            plans.append(plan)
    return sorted(plans, key=lambda p: p.video_id)


def _name_order(speaker: str) -> str:
    return hashlib.sha1(speaker.encode()).hexdigest()


def split_extra(plans: list[VideoPlan], videos: VideoSettings) -> dict[str, Any]:
    """The split written into cache.json's `extra` (the module docstring).

    Args:
        plans: the plans of every video of the dataset (`saved_plans`).
        videos: the split settings.

    Returns:
        {"split_by": "time", "test_clips": [...]} or {"split_by": "speaker",
        "test_speakers": [...]}, plus "test_fraction".
    """
    extra: dict[str, Any] = {"split_by": videos.split_by, "test_fraction": videos.test_fraction}
    if videos.split_by == "time":
        extra["test_clips"] = sorted(
            plan.clip_id(k)
            for plan in plans
            for k, piece in enumerate(plan.pieces)
            if piece.split == "test" and not piece.too_short
        )
        return extra
    speakers = sorted({p.speaker for p in plans if any(not q.too_short for q in p.pieces)})
    count = round(videos.test_fraction * len(speakers))
    if videos.test_fraction > 0 and len(speakers) >= 2:
        count = min(max(count, 1), len(speakers) - 1)
    if len(speakers) == 1 and videos.test_fraction > 0:
        log.warning(
            "one speaker (%s): --split-by speaker holds nobody out; use --split-by time to test "
            "on the last part of each video",
            speakers[0],
        )
    extra["test_speakers"] = sorted(sorted(speakers, key=_name_order)[:count])
    return extra
