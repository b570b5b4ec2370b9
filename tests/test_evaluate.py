"""`pmfs evaluate` on a tiny PMFS checkpoint: the synthetic test split, optional metrics, CREMA-D.

The checkpoint is the session's `known_pmfs_checkpoint`: a real `pmfs fit` of demo.yaml on the
tiny 64² synthetic cache with weights set rather than trained (tests/known_weights.py), so that
what it generates is known on any CPU (a mouth that follows the audio, not the true one; a face
painted by random convolutions, never the true frame): the tests check what evaluation does with
a model, not the model's quality. The torch hub cache is pointed at an empty folder
(`TORCH_HOME`) so that the optional metrics are absent unless a test writes random-weight files
of the right structure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import wandb_reader
from lightning.pytorch import LightningModule
from lpips_weights import write_random_lpips_weights
from metric_weights import write_fid_weights, write_syncnet_weights

from pmfs.checkpoints import data_config, load_model
from pmfs.commands.evaluate import build_parser, main
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.evaluation.aggregation import GroupSums
from pmfs.evaluation.options import EvaluateOptions
from pmfs.evaluation.run import evaluate
from pmfs.evaluation.scores import METRICS, model_paths
from pmfs.inference.options import InferenceOptions, TemporalOptions
from pmfs.inference.temporal import generated_landmarks
from pmfs.metrics import image_psnr, mouth_lmd
from pmfs.metrics.jitter import mouth_jitter
from pmfs.options import options_from_args, parser_fields
from pmfs.stages import PMFS

MAX_FRAMES = 12  # mouth-opening sync needs 12
LANDMARK_METRICS = (
    *("m_lmd", "f_lmd", "v_lmd", "jitter", "gt_jitter"),
    *("sync_corr", "sync_offset", "sync_abs_offset"),
)
IMAGE_METRICS = ("psnr", "ssim", "mouth_psnr", "mouth_ssim")
OPTIONAL_METRICS = ("lpips", "fid", "lse_d", "lse_c")


def run_cli(args: list[str], torch_home: Path) -> str:
    """Run `pmfs evaluate` with the torch hub cache in `torch_home`; returns what it printed."""
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setenv("TORCH_HOME", str(torch_home))
        assert main(args) == 0
    return stdout.getvalue()


def test_clips(root: Path) -> list[Any]:
    """The synthetic cache's test-split clip records (its test speakers' clips)."""
    cache = Cache(root)
    held_out = set(cache.extra["test_speakers"])
    return [record for record in cache.clips() if record.speaker in held_out]


test_clips.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="module")
def synth_eval(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    """`pmfs evaluate --wandb` on the synthetic test split, no metric weights anywhere."""
    out = tmp_path_factory.mktemp("evaluate_synth")
    args = [
        *("--ckpt", str(known_pmfs_checkpoint), "--data", str(tiny_synth_root)),
        *("--out", str(out), "--max-frames", str(MAX_FRAMES), "--device", "cpu"),
        *("--wandb", "--wandb-project", "pmfs-tests", "--no-progress"),
    ]
    printed = run_cli(args, out / "torch_home")
    return out, json.loads((out / "metrics.json").read_text()), printed


def _numbers(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        return [x for value in tree.values() for x in _numbers(value)]
    return [float(tree)] if isinstance(tree, int | float) else []


def test_json_groupings_and_values_are_sane(
    synth_eval: tuple[Path, dict[str, Any], str], tiny_synth_root: Path
) -> None:
    _, results, _ = synth_eval
    clips = test_clips(tiny_synth_root)
    assert results["split"] == "test" and results["dataset"] == "synthetic"
    assert results["model"] == "PMFS"
    assert set(results) >= {"overall", "per_emotion", "per_level", "per_clip", "skipped", "counts"}
    assert results["counts"]["clips"] == len(clips) == len(results["per_clip"])
    assert set(results["per_clip"]) == {r.clip for r in clips}
    assert results["counts"]["frames"] == sum(min(r.frames, MAX_FRAMES) for r in clips)
    assert set(results["per_emotion"]) == {r.emotion for r in clips}
    assert set(results["per_level"]) == {f"{r.emotion}/{r.level}" for r in clips}
    for grouping in ("overall", "per_emotion", "per_level", "per_clip"):
        values = _numbers(results[grouping])
        assert values and all(math.isfinite(v) for v in values), grouping
    overall = results["overall"]
    assert set(overall["from_audio"]) == {*LANDMARK_METRICS, *IMAGE_METRICS}
    for path in ("from_audio", "from_landmarks"):
        assert 5.0 < overall[path]["psnr"] < 60.0 and 5.0 < overall[path]["mouth_psnr"] < 60.0
        assert -1.0 <= overall[path]["ssim"] <= 1.0
    for name in ("m_lmd", "f_lmd", "v_lmd", "sync_abs_offset"):
        assert overall["from_audio"][name] >= 0.0
    assert -1.0 <= overall["from_audio"]["sync_corr"] <= 1.0
    # group sizes add up, and the overall mean is the frame-weighted mean of the emotions'
    per_emotion = results["per_emotion"].values()
    assert sum(g["frames"] for g in per_emotion) == results["counts"]["frames"]
    weighted = sum(g["frames"] * g["from_audio"]["m_lmd"] for g in per_emotion)
    assert weighted / results["counts"]["frames"] == pytest.approx(overall["from_audio"]["m_lmd"])


def test_ground_truth_path_has_no_landmark_metrics_and_matches_a_direct_computation(
    synth_eval: tuple[Path, dict[str, Any], str],
    known_pmfs_checkpoint: Path,
    tiny_synth_root: Path,
) -> None:
    _, results, _ = synth_eval
    assert set(results["overall"]["from_landmarks"]) == set(IMAGE_METRICS)
    # recompute one clip independently: the model's own generation, the functional metrics
    record = test_clips(tiny_synth_root)[0]
    model = load_model(known_pmfs_checkpoint)
    assert isinstance(model, PMFS)
    config = data_config(known_pmfs_checkpoint)
    reader = Cache(tiny_synth_root).open(record.clip)
    clip = clip_inputs_from_cache(
        reader, config["image_size"], config["num_references"], MAX_FRAMES, config["background"]
    )
    reader.close()
    from_truth = model.generate_clip(clip, from_audio=False)
    # from audio: the landmarks `pmfs infer` draws (smoothed, closed in silence), one code path
    from_audio = generated_landmarks(model, clip, InferenceOptions())
    scores = results["per_clip"][record.clip]
    psnr = image_psnr(from_truth.frames, clip.frames).mean().item()
    assert scores["from_landmarks"]["psnr"] == pytest.approx(psnr, rel=1e-5)
    lmd = mouth_lmd(from_audio[None], clip.landmarks[None]).item()
    assert scores["from_audio"]["m_lmd"] == pytest.approx(lmd, rel=1e-5)
    jitter, truth_jitter = mouth_jitter(from_audio).item(), mouth_jitter(clip.landmarks).item()
    assert scores["from_audio"]["jitter"] == pytest.approx(jitter, rel=1e-5)
    assert scores["from_audio"]["gt_jitter"] == pytest.approx(truth_jitter, rel=1e-5)
    assert results["settings"]["temporal"] == dataclasses.asdict(TemporalOptions())
    # the audio's mouth is not the true one, and the renderer draws what it is given
    assert not torch.allclose(from_audio, clip.landmarks)
    assert scores["from_audio"]["psnr"] != scores["from_landmarks"]["psnr"]


def test_absent_weights_skip_each_optional_metric_with_one_line(
    synth_eval: tuple[Path, dict[str, Any], str],
) -> None:
    _, results, printed = synth_eval
    assert set(results["skipped"]) == {"LPIPS", "FID", "SyncNet"}
    for name in ("LPIPS", "FID", "SyncNet"):
        lines = [line for line in printed.splitlines() if line.startswith(f"{name} skipped: ")]
        assert len(lines) == 1, printed
        assert "not found; get it from" in lines[0]
    for path in ("from_audio", "from_landmarks"):
        assert not set(OPTIONAL_METRICS) & set(results["overall"][path])


def test_markdown_has_the_tables(synth_eval: tuple[Path, dict[str, Any], str]) -> None:
    out, results, printed = synth_eval
    text = (out / "metrics.md").read_text()
    assert "| metric | from_audio | from_landmarks |" in text
    psnr = results["overall"]["from_audio"]["psnr"]
    assert f"| psnr | {psnr:.3f} |" in text and f"| psnr | {psnr:.3f} |" in printed
    for emotion, group in results["per_emotion"].items():
        assert f"| {emotion} | {group['clips']} | {group['frames']} |" in text
    for key in results["per_level"]:
        assert f"| {key} |" in text
    for path in ("from_audio", "from_landmarks"):
        assert f"## Per emotion — `{path}`" in text
        assert f"## Per emotion and level — `{path}`" in text


def test_wandb_tables_are_read_back_from_the_offline_run(
    synth_eval: tuple[Path, dict[str, Any], str],
) -> None:
    out, results, _ = synth_eval
    (run_dir,) = wandb_reader.offline_runs(out)
    history = wandb_reader.history(run_dir)
    tables = {}
    for grouping in ("overall", "per_emotion", "per_level"):
        # the reader flattens the table's history entry into nested keys
        assert history[f"evaluate/{grouping}/_type"] == ["table-file"]
        (path,) = history[f"evaluate/{grouping}/path"]
        tables[grouping] = json.loads((run_dir / "files" / path).read_text())
    overall = tables["overall"]
    assert overall["columns"][:4] == ["group", "path", "clips", "frames"]
    rows = {row[1]: dict(zip(overall["columns"], row, strict=True)) for row in overall["data"]}
    assert set(rows) == {"from_audio", "from_landmarks"}
    for path, row in rows.items():
        for name, value in results["overall"][path].items():
            assert row[name] == pytest.approx(value), (path, name)
    emotions = {row[0] for row in tables["per_emotion"]["data"]}
    assert emotions == set(results["per_emotion"])
    assert {row[0] for row in tables["per_level"]["data"]} == set(results["per_level"])
    info = wandb_reader.run_info(run_dir)
    assert info.config["checkpoint"] == results["checkpoint"]


def test_optional_metrics_are_computed_from_weight_files(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path, tmp_path: Path
) -> None:
    torch_home = tmp_path / "torch_home"
    # LPIPS from the default place (the hub cache), FID and SyncNet from explicit paths
    write_random_lpips_weights(torch_home / "hub" / "checkpoints")
    options = EvaluateOptions(
        ckpt=known_pmfs_checkpoint,
        data=tiny_synth_root,
        out=tmp_path / "out",
        max_clips=1,
        max_frames=6,  # SyncNet's shortest clip: 6 frames
        device="cpu",
        fid_weights=write_fid_weights(tmp_path / "weights"),
        syncnet_weights=write_syncnet_weights(tmp_path / "weights"),
        progress=False,
    )
    said: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(torch_home))
        results = evaluate(options, say=said.append)
    assert results["skipped"] == {} and said == []
    for path in ("from_audio", "from_landmarks"):
        values = results["overall"][path]
        assert set(OPTIONAL_METRICS) <= set(values)
        assert all(math.isfinite(values[name]) for name in OPTIONAL_METRICS)
        assert values["lpips"] > 0.0 and values["fid"] >= 0.0 and values["lse_d"] > 0.0
        (group,) = results["per_emotion"].values()
        assert {"lpips", "lse_d", "lse_c"} <= set(group[path]) and "fid" not in group[path]
    assert (
        results["overall"]["from_audio"]["lpips"] != results["overall"]["from_landmarks"]["lpips"]
    )


def test_a_wrong_weights_file_is_an_error_not_a_skip(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path, tmp_path: Path
) -> None:
    syncnet = write_syncnet_weights(tmp_path)
    options = EvaluateOptions(
        ckpt=known_pmfs_checkpoint,
        data=tiny_synth_root,
        out=tmp_path / "out",
        fid_weights=syncnet,  # the wrong network's file
        device="cpu",
        progress=False,
    )
    with pytest.raises(ValueError, match=r"syncnet_v2\.model"):
        evaluate(options)


def test_a_landmark_stage_is_refused_with_the_command_to_use() -> None:
    with pytest.raises(ValueError, match=r"needs a PMFS or FaceRenderer checkpoint.*pmfs test"):
        model_paths(LightningModule(), Path("stage1.ckpt"))


def test_group_sums_weight_frames_and_clips() -> None:
    group = GroupSums()
    group.add(10, {"from_audio": {"psnr": (20.0, 10), "sync_corr": (0.5, 1)}})
    group.add(30, {"from_audio": {"psnr": (30.0, 30), "sync_corr": (0.1, 1)}})
    assert group.summary() == {
        "clips": 2,
        "frames": 40,
        "from_audio": {"sync_corr": pytest.approx(0.3), "psnr": pytest.approx(27.5)},
    }
    assert list(group.means()["from_audio"]) == [n for n in METRICS if n in ("psnr", "sync_corr")]


def test_parser_is_the_options_dataclass() -> None:
    parser = build_parser()
    flags = {f.name for f in dataclasses.fields(EvaluateOptions) if "help" in f.metadata}
    temporal = {f.name for f in dataclasses.fields(TemporalOptions)}
    assert parser_fields(parser) == flags | temporal  # `--smoothing`, `--no-vad`, ... as infer
    assert flags | {"temporal"} == {field.name for field in dataclasses.fields(EvaluateOptions)}
    defaults = options_from_args(
        EvaluateOptions, parser.parse_args(["--ckpt", "a.ckpt", "--data", "cache"])
    )
    assert defaults == EvaluateOptions(ckpt=Path("a.ckpt"), data=Path("cache"))
    assert defaults.temporal == TemporalOptions()  # `pmfs infer`'s post-processing
    assert (defaults.split, defaults.out, defaults.chunk) == ("test", Path("evaluation"), 16)
    args = parser.parse_args(["--ckpt", "a", "--data", "b", "--no-per-clip", "--no-progress"])
    assert not options_from_args(EvaluateOptions, args).per_clip
    args = parser.parse_args(["--ckpt", "a", "--data", "b", "--smoothing", "none", "--no-vad"])
    assert options_from_args(TemporalOptions, args) == TemporalOptions(smoothing="none", vad=False)
    with pytest.raises(ValueError, match="--max-frames must be ≥ 1"):
        EvaluateOptions(ckpt=Path("a"), data=Path("b"), max_frames=0)


def test_help_imports_no_torch() -> None:
    code = (
        "import sys; from pmfs.commands.evaluate import build_parser; "
        "build_parser().format_help(); "
        "assert not {'torch', 'numpy', 'lightning'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# CREMA-D zero-shot: a raw layout made from synthetic clips, run through the real preprocessor
# --------------------------------------------------------------------------------------------

CREMAD_STEMS = ("1001_DFA_ANG_HI", "1001_IEO_SAD_LO")


def write_flv(path: Path, frames: np.ndarray, fps: int = 25) -> None:
    """An H.264 flv without audio (CREMA-D keeps its audio in AudioWAV/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="flv") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def cremad_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64² CREMA-D cache of 2 clips built by `preprocess` from a raw CREMA-D layout."""
    from pmfs.audio import load_audio
    from pmfs.data.preprocess.pipeline import PreprocessSettings, preprocess
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset
    from pmfs.video import read_video

    base = tmp_path_factory.mktemp("cremad")
    synth = SynthConfig(
        out=base / "synth", speakers=1, clips=2, size=64, raw=True, min_seconds=1.0,
        max_seconds=1.2, workers=1, progress=False,
    )  # fmt: skip
    build_synthetic_dataset(synth)
    raw = base / "raw"
    videos = sorted((base / "synth" / "raw").rglob("*.mp4"))
    assert len(videos) == len(CREMAD_STEMS)
    for video, stem in zip(videos, CREMAD_STEMS, strict=True):
        write_flv(raw / "VideoFlash" / f"{stem}.flv", read_video(video, with_audio=False).frames)
        audio_file = Path(str(video).replace("/video/front/", "/audio/")).with_suffix(".m4a")
        (raw / "AudioWAV").mkdir(parents=True, exist_ok=True)
        sf.write(raw / "AudioWAV" / f"{stem}.wav", load_audio(audio_file), 16000)
        landmarks = Path(str(video).replace("/video/front/", "/landmarks/front/"))
        (raw / "Landmarks").mkdir(parents=True, exist_ok=True)
        np.save(raw / "Landmarks" / f"{stem}.npy", np.load(landmarks.with_suffix(".npy")))
    settings = PreprocessSettings(size=64, detector="precomputed")
    summary = preprocess("cremad", raw, base / "cache", settings, progress=False)
    assert summary.ok == len(CREMAD_STEMS), summary
    return base / "cache"


def test_cremad_zero_shot_on_a_preprocessed_cache(
    cremad_cache: Path, known_pmfs_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [
        *("--ckpt", str(known_pmfs_checkpoint), "--data", str(cremad_cache)),
        *("--dataset", "cremad", "--out", str(out), "--max-frames", "8", "--no-progress"),
    ]
    run_cli(args, tmp_path / "torch_home")
    results = json.loads((out / "metrics.json").read_text())
    assert results["dataset"] == "cremad" and results["counts"]["clips"] == len(CREMAD_STEMS)
    assert set(results["per_clip"]) == set(CREMAD_STEMS)
    assert set(results["per_emotion"]) == {"angry", "sad"}
    assert set(results["per_level"]) == {"angry/3", "sad/1"}
    assert all(c["speaker"] == "1001" for c in results["per_clip"].values())
    values = _numbers(results["overall"])
    assert all(math.isfinite(v) for v in values)
    assert 5.0 < results["overall"]["from_audio"]["psnr"] < 60.0
    assert results["overall"]["from_audio"]["m_lmd"] >= 0.0
    assert (out / "metrics.md").is_file()


def test_cremad_has_only_a_test_split(
    cremad_cache: Path, known_pmfs_checkpoint: Path, tmp_path: Path
) -> None:
    options = EvaluateOptions(
        ckpt=known_pmfs_checkpoint, data=cremad_cache, split="val", out=tmp_path, device="cpu"
    )
    with pytest.raises(ValueError, match="CREMA-D is test-only"):
        evaluate(options)
