"""Issue 5 item 5, "it learns": stages 1 and 2 trained briefly on the synthetic set.

On held-out speakers, stage 1's M-LMD must be ≤ 0.7 × the mean-mouth baseline's (the mean
canonical content of the speaker's references, which is also what an untrained network outputs)
and its mouth-opening correlation ≥ 0.6; stage 2, fed stage 1's predictions, must have a lower
F-LMD than the analytic baseline (the canonical content put through the inverse similarity of the
target's pose). Stage 2 is trained on the frozen stage 1's predictions (plus a little noise):
trained on noisy ground truth alone it does not beat the analytic baseline. Metrics are computed
here with plain torch/numpy: pixels of a 256 crop, lips are points 48–67, centre frame of each
window, every frame of every test clip; correlation per clip over its frames, then averaged.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from data_modules.talking_face import TalkingFaceDataModule
from pmfs.batch import Batch
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset
from pmfs.landmarks import CONTENT_INDICES, LIPS, POSE_INDICES, from_canonical, to_canonical
from pmfs.networks import AudioToMouthNet, MouthToFaceNet, analytic_face
from pmfs.stages import AudioToMouth, MouthToFace, canonical_content

log = logging.getLogger(__name__)

PIXELS = 128.0  # normalized units → pixels of a 256 crop (the [-1, 1] span is 256 px)
LIPS_IN_CONTENT = np.searchsorted(CONTENT_INDICES, LIPS)
UPPER_INNER_IN_CONTENT = np.searchsorted(CONTENT_INDICES, [61, 62, 63])
LOWER_INNER_IN_CONTENT = np.searchsorted(CONTENT_INDICES, [67, 66, 65])
STAGE1_STEPS, STAGE2_STEPS = 600, 600


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TalkingFaceDataModule:
    root = tmp_path_factory.mktemp("synth_learn")
    build_synthetic_dataset(SynthConfig(out=root, speakers=8, clips=4, size=64, progress=False))
    return TalkingFaceDataModule(
        str(root),
        window=5,
        num_references=4,
        reference_source="random",
        landmarks_only=True,
        batch_size=32,
        num_workers=0,
        samples_per_clip=32,
        test_samples_per_clip=None,
    )


def _fit(model: AudioToMouth | MouthToFace, data: TalkingFaceDataModule, steps: int) -> None:
    trainer = Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        gradient_clip_val=1.0,
    )
    trainer.fit(model, datamodule=data)


def _opening(content: torch.Tensor) -> torch.Tensor:
    """(..., 31, 2) content points → (...,) mouth opening (mean inner-lip pair distance)."""
    gap = content[..., UPPER_INNER_IN_CONTENT, :] - content[..., LOWER_INNER_IN_CONTENT, :]
    return torch.linalg.vector_norm(gap, dim=-1).mean(dim=-1)


def _mean_correlation(pred: dict[str, list[float]], true: dict[str, list[float]]) -> float:
    return float(np.mean([np.corrcoef(pred[clip], true[clip])[0, 1] for clip in true]))


@torch.no_grad()
def _evaluate(
    stage1: AudioToMouth, stage2: MouthToFace, data: TalkingFaceDataModule
) -> dict[str, float]:
    stage1.eval()
    stage2.eval()
    sums: dict[str, float] = defaultdict(float)
    frames = 0
    opening: dict[str, dict[str, list[float]]] = {
        "pred": defaultdict(list),
        "true": defaultdict(list),
    }
    batch: Batch
    for batch in data.test_dataloader():
        landmarks, centre = batch["landmarks"], batch["landmarks"].shape[1] // 2
        canonical, sim = to_canonical(landmarks)
        true_content = canonical[..., CONTENT_INDICES, :]
        pred = stage1(batch["mel"], batch["ref_landmarks"])  # (B, T, 31, 2) canonical
        mean_mouth = (
            canonical_content(batch["ref_landmarks"]).mean(dim=1, keepdim=True).expand_as(pred)
        )
        for name, content in (("stage1", pred), ("mean_mouth", mean_mouth)):
            error = from_canonical(content, sim) - from_canonical(true_content, sim)
            lips = error[:, centre, LIPS_IN_CONTENT]  # (B, 20, 2)
            sums[f"m_lmd/{name}"] += lips.norm(dim=-1).mean(dim=-1).sum().item() * PIXELS
        pose = landmarks[..., POSE_INDICES, :]
        for name, face in (
            ("stage2", stage2(pred, pose, batch["ref_landmarks"])),
            ("analytic", analytic_face(pred, pose)),
        ):
            error = (face - landmarks)[:, centre]  # (B, 68, 2)
            sums[f"f_lmd/{name}"] += error.norm(dim=-1).mean(dim=-1).sum().item() * PIXELS
        for i, clip in enumerate(batch["clip"]):
            opening["pred"][clip].append(_opening(pred[i, centre]).item())
            opening["true"][clip].append(_opening(true_content[i, centre]).item())
        frames += landmarks.shape[0]
    result = {name: total / frames for name, total in sums.items()}
    result["opening_corr"] = _mean_correlation(opening["pred"], opening["true"])
    return result


def test_stages_learn_on_synthetic_data(data: TalkingFaceDataModule) -> None:
    seed_everything(0)
    started = time.perf_counter()
    stage1 = AudioToMouth(
        AudioToMouthNet(dim=64, depth=2, heads=4, conv_channels=16, dropout=0.1),
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3),
    )
    _fit(stage1, data, STAGE1_STEPS)
    stage2 = MouthToFace(
        MouthToFaceNet(dim=64, depth=2, heads=4),
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3),
        content_noise=0.005,
        content_model=stage1,
    )
    _fit(stage2, data, STAGE2_STEPS)
    trained = time.perf_counter() - started
    data.setup("test")
    result = _evaluate(stage1, stage2, data)
    log.warning(
        "it learns: %s (train %.1f s, total %.1f s)", result, trained, time.perf_counter() - started
    )
    assert result["m_lmd/stage1"] <= 0.7 * result["m_lmd/mean_mouth"]
    assert result["opening_corr"] >= 0.6
    assert result["f_lmd/stage2"] < result["f_lmd/analytic"]
