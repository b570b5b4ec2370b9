"""Write a synthetic clip in MEAD's raw layout, for running the preprocessor end to end.

Layout (DESIGN §3), with MEAD's file naming (the clip's 3-digit index, so that the
preprocessor's clip id `{speaker}_{emotion}_{level}_{stem}` equals the synthetic cache's)::

    <raw>/<speaker>/video/front/<emotion>/level_<n>/<index>.mp4      H.264 + AAC, 25 fps
    <raw>/<speaker>/audio/<emotion>/level_<n>/<index>.m4a            AAC, 16 kHz mono
    <raw>/<speaker>/landmarks/front/<emotion>/level_<n>/<index>.npy  (N, 68, 2) float32 pixels

Raw frames are wider and taller than the crop: the crop is the sub-square recorded in the cached
clip's meta as `crop_box` = [x0, y0, width, height] (raw pixels, 1:1 scale), so cached landmarks
= raw landmarks − (x0, y0). Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from pmfs.audio import SAMPLE_RATE
from pmfs.video_writer import write_video


@dataclass(frozen=True)
class RawPaths:
    """The three files of one raw clip."""

    video: Path
    audio: Path
    landmarks: Path

    def exist(self) -> bool:
        """True when all three files are there."""
        return self.video.is_file() and self.audio.is_file() and self.landmarks.is_file()


def raw_paths(root: Path, speaker: str, emotion: str, level: int, index: int) -> RawPaths:
    """Where a clip goes in the raw MEAD layout under `root`."""
    rel = Path(emotion, f"level_{level}", f"{index:03d}")
    base = Path(root) / speaker
    return RawPaths(
        video=base / "video" / "front" / rel.with_suffix(".mp4"),
        audio=base / "audio" / rel.with_suffix(".m4a"),
        landmarks=base / "landmarks" / "front" / rel.with_suffix(".npy"),
    )


def write_m4a(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as AAC in an .m4a (MP4) container, atomically.

    Args:
        path: output file (.m4a); parent folders are created.
        audio: (A,) float waveform, full scale 1.0.
        sample_rate: its rate in Hz.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    samples = np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)[None, :]
    try:
        with av.open(str(tmp), "w", format="ipod") as container:
            stream = container.add_stream("aac", rate=sample_rate, layout="mono")
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = 0
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def write_raw_clip(
    paths: RawPaths, frames: np.ndarray, audio: np.ndarray, landmarks: np.ndarray
) -> None:
    """Write one clip's raw video (with its audio), audio file and landmark file.

    Args:
        paths: from `raw_paths`.
        frames: (N, H, W, 3) uint8 raw frames.
        audio: (A,) float32 mono 16 kHz speech.
        landmarks: (N, 68, 2) float32 `(x, y)` pixels of the raw frames.
    """
    write_video(paths.video, frames, fps=25, audio=audio, sample_rate=SAMPLE_RATE)
    write_m4a(paths.audio, audio)
    _save_npy(paths.landmarks, np.ascontiguousarray(landmarks, dtype=np.float32))
