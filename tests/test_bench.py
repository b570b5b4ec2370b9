"""`pmfs bench` runs at tiny sizes and reports positive numbers (nothing timed is asserted)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pmfs.commands import bench
from pmfs.commands.bench import SUBCOMMANDS, build_parser
from pmfs.commands.bench.loader import KINDS, LoaderOptions
from pmfs.commands.bench.train import STAGE_NAMES, TrainOptions
from pmfs.data.cache_writer import CacheWriter, ClipData
from pmfs.options import add_options, options_from_args, parser_fields

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "experiments" / "demo.yaml")
TINY = ["--config", DEMO, "--warmup", "0", "--repeats", "1", "--seed", "3", "--threads", "1"]


def _write_cache(root: Path, size: int = 32, frames: int = 24) -> Path:
    """Two speakers × two clips of random, structurally valid data."""
    rng = np.random.default_rng(0)
    with CacheWriter(root, "synthetic", {"size": size}, extra={"test_speakers": ["S02"]}) as w:
        for speaker in ("S01", "S02"):
            for j in range(2):
                data = ClipData(
                    frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
                    landmarks=rng.uniform(0, size - 1, (frames, 68, 2)).astype(np.float32),
                    fg_mask=rng.integers(0, 256, (frames, size, size), dtype=np.uint8),
                    audio=(rng.standard_normal(640 * frames) * 0.1).astype(np.float32),
                    mel=rng.uniform(-4, 4, (80, int(3.2 * frames) + 1)).astype(np.float32),
                    meta={"fps": 25, "size": size},
                )
                w.write_clip(w.record(speaker, "happy", 2, f"{speaker}_happy_{j}"), data)
    return root


def test_bench_loader_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = _write_cache(tmp_path / "cache")
    out = tmp_path / "bench" / "loader.json"
    argv = ["loader", "--cache", str(cache), "--json", str(out), "--workers", "0", "1"]
    argv += ["--landmark-samples", "64", "--image-samples", "16", "--batch-size", "4"]
    argv += ["--landmark-batch-size", "16", "--image-size", "32", "--profile-samples", "8"]
    argv += ["--background", "remove"]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "loader"
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    assert result["cache"]["clips"] == 4
    runs = {(r["kind"], r["workers"]): r for r in result["runs"]}
    kinds = ("landmarks", "stage3", "stage3_uint8")
    assert set(runs) == {(kind, workers) for kind in kinds for workers in (0, 1)}
    for run in runs.values():
        assert run["samples"] == (64 if run["kind"] == "landmarks" else 16)
        assert run["seconds"] > 0 and run["samples_per_s"] > 0 and run["per_worker"] > 0
    assert set(result["scaling_1_to_2_workers"]) == set(kinds)  # None: no 2-worker run
    profile = result["profile_stage3_ms_per_sample"]
    assert set(profile) >= {"jpeg_decode", "mask_decode", "item", "collate"}
    assert all(r["per_cpu_second"] > 0 and r["cpu_seconds"] > 0 for r in runs.values())
    assert all(v > 0 for v in profile.values())
    table = capsys.readouterr().out
    assert "| landmarks | 1 | 16 |" in table and "| stage3 | 0 | 4 |" in table


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_each_parser_is_its_options_dataclass(name: str) -> None:
    benchmark = SUBCOMMANDS[name]
    parser = argparse.ArgumentParser()
    add_options(parser, benchmark.options)
    assert parser_fields(parser) == {f.name for f in dataclasses.fields(benchmark.options)}
    assert options_from_args(benchmark.options, parser.parse_args([])) == benchmark.options()


def test_repeatable_and_negatable_flags_parse() -> None:
    parser = build_parser()
    loader = options_from_args(LoaderOptions, parser.parse_args(["loader", "--no-uint8"]))
    assert loader.uint8 is False and loader.workers == (0, 1, 2)
    loader = options_from_args(LoaderOptions, parser.parse_args(["loader", "--uint8"]))
    assert loader.uint8 is True
    argv = ["train", "--config", "a.yaml", "--config", "b.yaml", "--stages", "pmfs"]
    train = options_from_args(TrainOptions, parser.parse_args(argv))
    assert train.config == ("a.yaml", "b.yaml") and train.stages == ("pmfs",)


def test_bench_rejects_an_unknown_subcommand() -> None:
    with pytest.raises(SystemExit):
        bench.main(["nosuch"])


def test_bench_loader_missing_cache_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert bench.main(["loader", "--cache", str(tmp_path / "none")]) == 2
    assert "pmfs data synth" in caplog.text


def _positive(values: list[float]) -> bool:
    return len(values) > 0 and all(v > 0 for v in values)


def test_bench_train_times_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    out = tmp_path / "train.json"
    argv = ["train", *TINY, "--image-size", "16", "--batch-size", "2", "--json", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "train" and result["machine"]["torch"]
    settings = result["settings"]
    assert (settings["image_size"], settings["batch_size"], settings["window"]) == (16, 2, 5)
    assert settings["config"] == [DEMO] and settings["device"] == "cpu"
    stages = {r["stage"]: r for r in result["stages"]}
    assert list(stages) == list(STAGE_NAMES)
    for r in stages.values():
        assert len(r["step_s"]) == 1 and _positive(r["step_s"]) and _positive(r["step_cpu_s"])
        assert r["step_ms_median"] == pytest.approx(1e3 * r["step_s"][0])
        assert r["samples_per_s"] == pytest.approx(2 / r["step_s"][0])
        assert r["peak_rss_mb"] > 0 and r["rss_increase_mb"] >= 0 and r["peak_cuda_mb"] is None
    # the system holds the three stages (the renderer with its discriminator)
    parts = sum(stages[name]["parameters"] for name in STAGE_NAMES[:3])
    assert stages["pmfs"]["parameters"] == parts > 0
    table = capsys.readouterr().out
    assert "| renderer |" in table and "16², batch 2" in table
    assert torch.get_num_threads() == threads  # --threads 1 only inside the benchmark


def test_bench_infer_counts_flops_per_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "infer.json"
    argv = ["infer", *TINY, "--sizes", "32", "64", "128", "--frames", "3", "--json", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "infer" and result["targets"]["frames_per_s_256_cpu_2_cores"]
    runs = {r["image_size"]: r for r in result["runs"]}
    assert set(runs) == {32, 64, 128}
    ceiling = result["gemm_ceiling_gflops_per_s"]
    assert ceiling > 1
    for size, r in runs.items():
        assert r["frames"] == 3 and _positive(r["clip_s"]) and _positive(r["clip_cpu_s"])
        assert r["frames_per_s"] == pytest.approx(3 / r["clip_s"][0])
        assert r["peak_rss_mb"] > 0
        # the whole chain = landmark stages + the renderer on every frame + references once
        renderer = r["renderer_gflops_per_frame"] + r["renderer_encode_references_gflops"] / 3
        assert r["renderer_gflops_per_frame"] > 0
        assert r["chain_gflops_per_frame"] >= 0.999 * renderer, size
        achieved = r["chain_gflops_per_frame"] * 3 / r["clip_s"][0]
        assert r["achieved_gflops_per_s"] == pytest.approx(achieved)
        assert r["efficiency"] == pytest.approx(achieved / ceiling)
    # convolutions: FLOPs grow with the number of pixels up to demo.yaml's working size (64²),
    # then stay: the network runs at 64² for a 128² frame; only the mouth head's square around
    # the mouth grows with the output's pixels (under 1 % of the frame's FLOPs here)
    ratio = runs[64]["renderer_gflops_per_frame"] / runs[32]["renderer_gflops_per_frame"]
    assert 3.5 < ratio < 4.5
    network_64, network_128 = (runs[s]["renderer_gflops_per_frame"] for s in (64, 128))
    assert network_64 < network_128 < 1.01 * network_64
    table = capsys.readouterr().out
    assert "| 64² | 3 |" in table and "GEMM ceiling" in table


def test_bench_without_subcommand_runs_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _write_cache(tmp_path / "cache")
    out = tmp_path / "all.json"
    loader = f"--cache {cache} --workers 0 --landmark-samples 16 --image-samples 4 "
    loader += "--batch-size 2 --landmark-batch-size 8 --image-size 32 --profile-samples 2"
    argv = [*TINY, "--json", str(out), "--loader-args", loader, "--stages", "mouth_to_face"]
    argv += ["--image-size", "16", "--batch-size", "2", "--sizes", "16", "--frames", "2"]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "all" and result["machine"]["cores"] >= 1
    assert {r["kind"] for r in result["loader"]["runs"]} == set(KINDS)
    assert [r["stage"] for r in result["train"]["stages"]] == ["mouth_to_face"]
    assert [r["image_size"] for r in result["infer"]["runs"]] == [16]
    assert result["infer"]["runs"][0]["frames_per_s"] > 0
    table = capsys.readouterr().out
    assert "| stage3 | 0 | 2 |" in table and "| mouth_to_face |" in table and "| 16² |" in table


def test_bench_skips_parts(tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    argv = ["all", *TINY, "--skip", "loader", "train", "infer", "--json", str(out)]
    assert bench.main(argv) == 0
    assert set(json.loads(out.read_text())) == {"benchmark", "machine"}


def test_bench_needs_a_pmfs_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = str(tmp_path / "none.yaml")
    assert bench.main(["train", "--config", missing]) == 2
    assert "none.yaml does not exist" in caplog.text
    stage = str(REPO / "experiments" / "stages" / "audio_to_mouth.yaml")
    assert bench.main(["infer", "--config", stage, "--sizes", "32"]) == 2
    assert "'pmfs.stages.AudioToMouth'; `pmfs bench` times the whole chain" in caplog.text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_cuda_without_a_gpu_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    assert bench.main(["infer", *TINY, "--device", "cuda"]) == 2
    assert "no CUDA GPU" in caplog.text


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_bench_gpu_reports_gpu_memory(tmp_path: Path, precision: str) -> None:
    out = tmp_path / "gpu.json"
    argv = ["all", *TINY, "--device", "cuda", "--precision", precision, "--skip", "loader"]
    argv += ["--image-size", "64", "--batch-size", "2", "--sizes", "64", "--frames", "4"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["machine"]["gpu"]
    assert all(r["peak_cuda_mb"] > 0 for r in result["train"]["stages"])
    assert result["infer"]["runs"][0]["peak_cuda_mb"] > 0
    assert result["infer"]["settings"]["precision"] == precision
