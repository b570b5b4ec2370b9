"""`pmfs bench memory`: peak memory of a real `pmfs infer` run against the audio's length.

For each `--seconds`, a speech file of that length — the `--audio` file repeated, or a synthetic
sequence of voiced syllables — drives `--face` in a fresh `python -m pmfs infer` process. Its
peak resident set size is the kernel's (`ru_maxrss` of that child alone, from `os.wait4`; Linux
reports kB), so it covers everything the run held: the model, the template, the clip, the
encoder. Target (issue 16): the longest run's peak within 20 % of the shortest's, i.e. memory
bounded in the audio's length (the frames a run holds are the template's, not the output's).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pmfs.commands.bench.harness import machine, machine_line
from pmfs.options import option

log = logging.getLogger(__name__)

RSS_RATIO_TARGET = 1.2
"""Issue 16: peak RSS of the longest run ÷ the shortest's."""
DEMO_CKPT = Path("runs/demo/checkpoints/last.ckpt")
"""Where `pmfs fit -c experiments/demo.yaml` (and `make demo`) leaves its checkpoint."""
SAMPLE_FACE = "VTV_M003Angry01005.mp4"
"""The default face: a 256² talking-face sample of ../shared/samples (or $PMFS_SAMPLES)."""


@dataclass(frozen=True)
class MemoryOptions:
    """Options of `pmfs bench memory`."""

    ckpt: Path = option(
        DEMO_CKPT, help="a `pmfs fit` checkpoint of PMFS (default: the demo's, `make demo`)"
    )
    face: Path | None = option(
        None, help=f"the target video or image (default: {SAMPLE_FACE} of the samples folder)"
    )
    landmarks: Path | None = option(None, help="a .npy of the face's landmarks (--landmarks)")
    audio: Path | None = option(
        None, help="speech repeated to each length (default: synthetic voiced syllables)"
    )
    seconds: tuple[float, ...] = option((10.0, 60.0), help="audio lengths to run", above=0)
    device: Literal["cpu", "cuda"] = option("cpu", help="where the model runs")
    infer_args: str = option(
        "", help='more `pmfs infer` flags, as one string (e.g. "--size 256 --detector dlib")'
    )
    json: str | None = option(None, help="write the results to this JSON file")


def syllables(seconds: float, seed: int = 0) -> np.ndarray:
    """(A,) float32 16 kHz speech-like audio: voiced syllables (a 100–220 Hz pitch with 12
    harmonics under a raised-cosine envelope, 0.12–0.3 s each) separated by short pauses."""
    rate = 16000
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * rate), np.float32)
    start = 0
    while start < len(out):
        length = int(rng.uniform(0.12, 0.3) * rate)
        t = np.arange(length) / rate
        pitch = rng.uniform(100, 220)
        tone = sum(np.sin(2 * np.pi * pitch * h * t) / h for h in range(1, 13))
        envelope = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
        piece = (0.3 * envelope * tone)[: len(out) - start]
        out[start : start + len(piece)] = piece
        start += length + int(rng.uniform(0.03, 0.15) * rate)
    return out


def speech_file(folder: Path, seconds: float, source: Path | None) -> Path:
    """A 16 kHz mono wav of `seconds`: `source` repeated, or `syllables`."""
    import soundfile as sf

    from pmfs.audio import SAMPLE_RATE, load_audio

    n = round(seconds * SAMPLE_RATE)
    audio = syllables(seconds) if source is None else np.resize(load_audio(source), n)
    path = folder / f"speech_{seconds:g}s.wav"
    sf.write(path, audio, SAMPLE_RATE)
    return path


def run_measured(argv: list[str], log_path: Path) -> tuple[int, float, float]:
    """Run a command; (exit code, its peak RSS in MB, wall seconds). Its output goes to
    `log_path`."""
    began = time.perf_counter()
    with log_path.open("w") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, time.perf_counter() - began


def default_face() -> Path | None:
    """The `SAMPLE_FACE` sample when it is on this machine, else None."""
    root = os.environ.get("PMFS_SAMPLES")
    folder = Path(root) if root else Path(__file__).resolve().parents[3].parent / "shared/samples"
    path = folder / SAMPLE_FACE
    return path if path.is_file() else None


def infer_argv(options: MemoryOptions, face: Path, audio: Path, out: Path) -> list[str]:
    """The `pmfs infer` command line of one run."""
    argv = [sys.executable, "-m", "pmfs", "infer", "--ckpt", str(options.ckpt)]
    argv += ["--audio", str(audio), "--face", str(face), "--out", str(out)]
    argv += ["--device", options.device, "--no-progress"]
    argv += ["--landmarks", str(options.landmarks)] if options.landmarks else []
    return argv + shlex.split(options.infer_args)


def memory_payload(options: MemoryOptions) -> dict[str, Any] | None:
    """Peak RSS of `pmfs infer` at each `--seconds`; None when a run fails (its output logged)
    or an input is missing."""
    face = options.face or default_face()
    if face is None or not options.ckpt.is_file():
        what = f"checkpoint {options.ckpt}" if face else f"sample {SAMPLE_FACE}"
        log.error("%s not found; give --ckpt and --face", what)
        return None
    runs = []
    with tempfile.TemporaryDirectory(prefix="pmfs-bench-memory-") as tmp:
        folder = Path(tmp)
        for seconds in options.seconds:
            audio = speech_file(folder, seconds, options.audio)
            out = folder / f"out_{seconds:g}s.mp4"
            argv = infer_argv(options, face, audio, out)
            code, peak, wall = run_measured(argv, folder / "log.txt")
            if code != 0:
                tail = (folder / "log.txt").read_text()[-2000:]
                log.error("pmfs infer exited with %d on %g s of audio:\n%s", code, seconds, tail)
                return None
            frames = round(seconds * 25)
            runs.append({"seconds": seconds, "frames": frames, "peak_rss_mb": peak, "wall_s": wall})
            log.info("%g s: peak RSS %.0f MB in %.1f s", seconds, peak, wall)
    peaks = [r["peak_rss_mb"] for r in runs]
    return {
        "benchmark": "memory",
        "machine": machine(),
        "settings": {
            "ckpt": str(options.ckpt),
            "face": str(face),
            "audio": str(options.audio) if options.audio else "synthetic syllables",
            "device": options.device,
            "infer_args": options.infer_args,
        },
        "target_rss_ratio": RSS_RATIO_TARGET,
        "rss_ratio": max(peaks) / min(peaks),
        "runs": runs,
    }


def memory_table(payload: dict[str, Any]) -> str:
    """A Markdown table of peak RSS per audio length, and the ratio to the target."""
    s = payload["settings"]
    lines = [
        f"`pmfs infer` peak RSS (kernel ru_maxrss of the process), {s['device']}, face "
        f"{Path(s['face']).name}, audio: {s['audio']}, flags: {s['infer_args'] or 'none'}; "
        f"{machine_line(payload['machine'])}",
        "",
        "| audio s | frames | peak RSS MB | wall s | frames/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(
            f"| {r['seconds']:g} | {r['frames']} | {r['peak_rss_mb']:,.0f} | {r['wall_s']:.1f} | "
            f"{r['frames'] / r['wall_s']:.1f} |"
        )
    lines.append(
        f"\nlargest ÷ smallest peak: {payload['rss_ratio']:.2f} "
        f"(target ≤ {payload['target_rss_ratio']})"
    )
    return "\n".join(lines)
