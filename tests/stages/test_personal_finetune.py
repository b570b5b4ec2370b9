"""Issue 14 item 4: fine-tuning on one person's real footage beats copying the best reference on
the held-out end of the video (`personal_benchmark.py`: preprocessing with dlib, `pmfs fit -c
demo.yaml -c personal.yaml` at 128² from scratch, scores on the last 20 %); and item 5 with that
model: driven by another voice through `pmfs infer`, no visible seam and the upper face in place.

Slow: about 10 minutes of training on 2 CPU cores (the issue's budget is 15). The numbers of
three seeds are in docs/results.md ("Fine-tuning on one person").
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from personal_benchmark import VIDEO, run

log = logging.getLogger(__name__)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not VIDEO.is_file(), reason=f"the talking-man sample is absent ({VIDEO})")
def test_personal_finetune_beats_copying_the_best_reference(tmp_path: Path) -> None:
    result = run(tmp_path, seed=0, strip=tmp_path / "strip.png")
    log.info("personal fine-tune: %s", result)
    scores = {k: v for k, v in result.items() if isinstance(v, float)}
    assert scores["windows"] >= 50, "the held-out 20 % of the video should give ~100 windows"
    assert scores["renderer_psnr"] > scores["copy_best_reference_psnr"], result
    assert scores["renderer_ssim"] > scores["copy_best_reference_ssim"], result
    assert (tmp_path / "strip.png").stat().st_size > 0
    # item 5: the fine-tuned model driven by another voice through `pmfs infer`
    assert scores["seam_ratio"] <= 1.2, "the paste seam shows"
    assert scores["outside_shift"] <= 2.0, "the pasted face moved the eyes, brows or nose"
