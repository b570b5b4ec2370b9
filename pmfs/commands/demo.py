"""`pmfs demo`: the README's main job on the built-in synthetic data, start to finish on a CPU.

1. `data`: build the synthetic dataset (resumable: a rerun reuses finished clips) and its
   contact sheet;
2. `train`: `pmfs fit -c experiments/demo.yaml` on it, in a subprocess that runs in the output
   folder, so the W&B run (offline without credentials), the checkpoints and the validation
   media all land there; a rerun resumes an interrupted training from `last.ckpt` and does not
   retrain a finished one (same command);
3. `render`: `demo.mp4` through `pmfs infer`'s pipeline — the first clip of a held-out speaker
   as the face, driven by the synthesized speech of another of that speaker's clips, the
   generated lower face pasted back into the frames at the dataset's size (256²: the renderer's
   network works at 64² and applies its maps at the output size), the speech muxed in; and its
   sharpness: the lower face's Laplacian variance ÷ the face clip's own (1 = as sharp);
4. `figures`: the paper's figures of the trained model (`pmfs figure ablation`, `emotions`);
5. a summary: where everything is, and how to upload the W&B run (`wandb sync`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pmfs.options import add_options, option, options_from_args

if TYPE_CHECKING:
    from pmfs.data.cache import Cache

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "experiments" / "demo.yaml"
RUN_NAME = "demo"
"""The run name `pmfs fit -c experiments/demo.yaml` gives (its checkpoints: runs/demo/)."""


@dataclass(frozen=True)
class DemoClips:
    """The clips the demo video is made of.

    Attributes:
        speaker: a held-out (test) speaker.
        face: the clip whose frames are the face template.
        speech: another clip of the speaker, whose synthesized speech drives the face.
    """

    speaker: str
    face: str
    speech: str


def pick_demo_clips(cache: Cache) -> DemoClips:
    """The first held-out speaker with two clips: the first gives the face, the second the speech.

    Raises:
        ValueError: no speaker of the cache has two usable clips.
    """
    held_out = set(cache.extra.get("test_speakers", []))
    by_speaker: dict[str, list[str]] = {}
    for record in cache.clips():
        by_speaker.setdefault(record.speaker, []).append(record.clip)
    order = sorted(by_speaker, key=lambda speaker: (speaker not in held_out, speaker))
    for speaker in order:
        clips = by_speaker[speaker]
        if len(clips) >= 2:
            return DemoClips(speaker, clips[0], clips[1])
    raise ValueError(f"{cache.root}: no speaker has two usable clips; build more (--clips)")


def build_data(out: Path, seed: int, speakers: int | None, clips: int | None, size: int) -> Path:
    """Step 1: the synthetic cache in `out/data/synthetic` and `out/contact_sheet.png`."""
    from pmfs.commands.data import main as data_main  # the generator's own CLI, same defaults

    data = out / "data" / "synthetic"
    synth = ["synth", "--out", str(data), "--seed", str(seed), "--size", str(size)]
    if speakers is not None:
        synth += ["--speakers", str(speakers)]
    if clips is not None:
        synth += ["--clips", str(clips)]
    if data_main(synth) != 0:
        raise RuntimeError(f"building the synthetic dataset in {data} failed (see above)")
    sheet = out / "contact_sheet.png"
    if data_main(["sheet", "--cache", str(data), "--out", str(sheet)]) != 0:
        raise RuntimeError(f"drawing the contact sheet of {data} failed (see above)")
    return data


def size_args(config: Path, size: int) -> list[str]:
    """`--data.init_args.image_size=<size>` when the config trains on larger frames than the
    `size`² set the demo built (demo.yaml: 256²; `--size 128` makes a 128² set), else none."""
    import yaml

    if not config.is_file():  # `train` says so
        return []
    data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    wanted = (data.get("init_args") or {}).get("image_size")
    return [f"--data.init_args.image_size={size}"] if wanted is not None and wanted > size else []


def fit_command(config: Path, data: Path, extra: list[str]) -> list[str]:
    """The `pmfs fit` command of step 2 (run in the output folder)."""
    command = [sys.executable, "-m", "pmfs", "fit", "-c", str(config)]
    return [*command, f"--data.init_args.root={data.resolve()}", *extra]


@dataclass(frozen=True)
class Training:
    """A finished demo training: its checkpoint and the W&B run folder it logged to (if any)."""

    checkpoint: Path
    wandb_run: Path | None


def train(out: Path, config: Path, data: Path, extra: list[str]) -> Training:
    """Step 2: train the demo model, or reuse a finished training of the same command.

    A run that was interrupted (no record of it finishing) resumes from its `last.ckpt`.

    Raises:
        FileNotFoundError: the config does not exist (the demo runs from a repository checkout).
        RuntimeError: training failed, or wrote no checkpoint.
    """
    from pmfs.loggers import own_wandb_service  # lightning: not for `pmfs demo --help`

    if not config.is_file():
        raise FileNotFoundError(
            f"{config} not found: run `pmfs demo` from a checkout of the repository, or give "
            "--config experiments/demo.yaml"
        )
    folder = out / "runs" / RUN_NAME
    last, record = folder / "checkpoints" / "last.ckpt", folder / "demo_training.json"
    command = fit_command(config, data, extra)
    if last.is_file() and record.is_file():
        done = json.loads(record.read_text())
        if done.get("command") == command[2:]:
            print(f"training: done before with the same command ({last}); not retrained")
            run = done.get("wandb_run")
            return Training(last, None if run is None else out / run)
    resume = ["--ckpt_path=last"] if last.is_file() else []
    print(f"training: {' '.join([*command[2:], *resume])}  (in {out})", flush=True)
    before = set(wandb_runs(out))
    env = own_wandb_service(os.environ)  # the run's files go to `out`, whatever this process logs
    if subprocess.run([*command, *resume], cwd=out, env=env, check=False).returncode != 0:
        raise RuntimeError("`pmfs fit` failed (see above)")
    if not last.is_file():
        raise RuntimeError(f"training wrote no {last}")
    new = [run for run in wandb_runs(out) if run not in before]
    run = new[-1] if new else None
    relative = None if run is None else str(run.relative_to(out))
    record.write_text(json.dumps({"command": command[2:], "wandb_run": relative}, indent=1))
    return Training(last, run)


def wandb_runs(out: Path) -> list[Path]:
    """The W&B run folders the demo's logger wrote (`runs/wandb/{offline-,}run-*`), newest last."""
    return sorted((out / "runs" / "wandb").glob("*run-*"), key=lambda p: p.stat().st_mtime)


def write_template(cache: Cache, clip_id: str, folder: Path) -> tuple[Path, Path]:
    """The face clip as a video with its audio, and its landmarks (pixels) as a .npy."""
    import numpy as np

    from pmfs.video_writer import write_video

    reader = cache.open(clip_id)
    try:
        video, points = folder / f"face_{clip_id}.mp4", folder / f"face_{clip_id}.npy"
        frames = reader.frames(range(reader.num_frames))
        write_video(video, frames, fps=25, audio=reader.audio, sample_rate=16000)
        np.save(points, reader.landmarks)
    finally:
        reader.close()
    return video, points


def write_speech(cache: Cache, clip_id: str, path: Path) -> Path:
    """The synthesized speech of a clip as a 16 kHz wav."""
    import soundfile

    reader = cache.open(clip_id)
    try:
        soundfile.write(path, reader.audio, 16000)
    finally:
        reader.close()
    return path


def render(checkpoint: Path, data: Path, out: Path, size: int) -> tuple[Path, DemoClips, float]:
    """Step 3: `out/demo.mp4` at `size`², the held-out speaker's face driven by another clip's
    speech, and its sharpness ratio (`demo_sharpness`)."""
    from pmfs.data.cache import Cache
    from pmfs.inference.options import InferenceOptions
    from pmfs.inference.run import run_inference

    cache = Cache(data)
    clips = pick_demo_clips(cache)
    inputs = out / "demo_inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    face, landmarks = write_template(cache, clips.face, inputs)
    speech = write_speech(cache, clips.speech, inputs / f"speech_{clips.speech}.wav")
    video = out / "demo.mp4"
    options = InferenceOptions(device="cpu", size=size)
    result = run_inference(checkpoint, speech, face, video, options, landmarks=landmarks)
    print(f"rendered {video}: {result.frames} frames in {result.seconds:.1f} s", flush=True)
    return video, clips, demo_sharpness(video, face, landmarks)


def demo_sharpness(video: Path, face: Path, landmarks: Path) -> float:
    """Lower-face sharpness of the demo video against its face clip, both as written (H.264).

    The variance of the Laplacian inside each frame's lower face (`pmfs.masks.lower_face_mask`
    of the face clip's landmarks) of the demo's frames ÷ the same of the face clip's frames they
    were made from (`pmfs.metrics.sharpness`); frames in playback order.
    """
    import numpy as np
    import torch

    from pmfs.inference.template import playback_indices
    from pmfs.landmarks import pixels_to_normalized
    from pmfs.masks import lower_face_mask
    from pmfs.metrics.sharpness import laplacian_variance
    from pmfs.video import read_video

    made, source = read_video(video).frames, read_video(face).frames
    points = np.load(landmarks)
    order = playback_indices(len(source), len(made))
    size = made.shape[1]

    def as_tensor(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0

    region = lower_face_mask(torch.from_numpy(pixels_to_normalized(points[order], size)), size)
    generated = laplacian_variance(as_tensor(made), region).mean()
    original = laplacian_variance(as_tensor(source[order]), region).mean()
    return float(generated / original)


def draw_figures(checkpoint: Path, data: Path, clips: DemoClips, out: Path) -> list[Path]:
    """Step 4: the ablation-style figure of the demo clip and the emotions figure."""
    from pmfs.commands.figure import main as figure_main

    folder = out / "figures"
    figures = [folder / "ablation.png", folder / "emotions.png"]
    common = ["--data", str(data), "--device", "cpu", "--max-frames", "100"]
    runs = ["--runs", f"demo={checkpoint}", "--clip", clips.face, "--frames", "3"]
    if figure_main(["ablation", *runs, *common, "--out", str(figures[0])]) != 0:
        raise RuntimeError("drawing the ablation figure failed (see above)")
    emotions = ["--ckpt", str(checkpoint), "--speaker", clips.speaker, "--truth", "--frames", "3"]
    if figure_main(["emotions", *emotions, *common, "--out", str(figures[1])]) != 0:
        raise RuntimeError("drawing the emotions figure failed (see above)")
    return figures


@dataclass(frozen=True)
class DemoOptions:
    """Options of `pmfs demo`."""

    out: Path = option(Path("outputs"), help="output folder")
    seed: int = option(0, help="seed of the synthetic dataset")
    speakers: int | None = option(None, help="synthetic speakers")
    clips: int | None = option(None, help="clips per synthetic speaker")
    size: int = option(256, help="image size of the dataset")
    config: Path = option(DEMO_CONFIG, help="the `pmfs fit` config")
    fit_arg: tuple[str, ...] = option(
        (),
        help="an extra `pmfs fit` argument, e.g. --fit-arg=--trainer.max_epochs=4 (repeatable)",
        metavar="ARG",
        repeat=True,
    )


def build_parser() -> argparse.ArgumentParser:
    """Options of `pmfs demo`."""
    parser = argparse.ArgumentParser(prog="pmfs demo", description=__doc__.splitlines()[0])
    add_options(parser, DemoOptions)
    return parser


def main(argv: list[str]) -> int:
    """Run the demo; returns the exit code (1 when a step fails, with the reason)."""
    options = options_from_args(DemoOptions, build_parser().parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        data = build_data(out, options.seed, options.speakers, options.clips, options.size)
        config = options.config.resolve()
        extra = [*size_args(config, options.size), *options.fit_arg]
        training = train(out, config, data, extra)
        video, clips, sharpness = render(training.checkpoint, data, out, options.size)
        figures = draw_figures(training.checkpoint, data, clips, out)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"pmfs demo: {exc}", file=sys.stderr)
        return 1
    _print_summary(out, data, training, video, clips, figures)
    print(f"sharpness     {sharpness:.2f} (demo.mp4's lower face ÷ the face clip's)")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def _print_summary(
    out: Path, data: Path, training: Training, video: Path, clips: DemoClips, figures: list[Path]
) -> None:
    """Step 5: where everything is, and how to upload the W&B run."""
    from pmfs.data.cache import Cache

    print()
    print(f"dataset       {data}  ({len(Cache(data).clips())} clips)")
    print(f"contact sheet {out / 'contact_sheet.png'}")
    print(f"checkpoint    {training.checkpoint}")
    print(f"demo video    {video}  (speaker {clips.speaker}: the face of clip {clips.face}")
    print(f"              driven by the speech of clip {clips.speech})")
    print(f"figures       {', '.join(str(f) for f in figures)}")
    if training.wandb_run is not None:
        print(f"W&B run       {training.wandb_run}")
        if training.wandb_run.name.startswith("offline-"):
            print(f"              upload it with: wandb sync {training.wandb_run}")
