"""The curriculum of `experiments/full.yaml` as a plot: the share of predicted inputs per batch.

The ramps are read from the YAML (`read_curriculum`), so the diagram of
`scripts/draw_architecture.py` shows what `pmfs fit -c experiments/full.yaml` trains with.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from diagram import CURR, CURR2, INK, Box, Canvas, Point

FULL_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "full.yaml"

Ramps = dict[str, tuple[int, int, float]]
"""Label → (start batch, end batch, final share) of each scheduled-sampling ramp."""


# the plot's label of each ramp of the config's `curriculum`
RAMP_LABELS = {
    "mouth_to_face": "stage 2 input: stage-1 content",
    "renderer": "stage 3 input: stage-2 landmarks",
}


def read_curriculum(config: Path = FULL_CONFIG) -> Ramps:
    """The ramps of a `pmfs fit` config's `model.init_args.curriculum`, labelled for the plot."""
    curriculum = yaml.safe_load(config.read_text())["model"]["init_args"]["curriculum"]
    return {
        label: (curriculum[key]["start"], curriculum[key]["end"], curriculum[key]["final"])
        for key, label in RAMP_LABELS.items()
    }


def draw_ramps(c: Canvas, area: Box, ramps: Ramps) -> None:
    """The ramps (`read_curriculum`) as a plot in `area`: share of predicted inputs per batch."""
    c.text(
        (area.x, area.y),
        "Curriculum of experiments/full.yaml (data in the YAML, logged as train/schedule/...)",
        size=18,
        color=CURR,
    )
    px, py, pw, ph = area.x + 60, area.y + 40, area.w - 90, area.h - 90
    # the axes: an eighth past the last ramp's end (in 5k batches), a little above the top share
    x_max = math.ceil(max(end for _, end, _ in ramps.values()) * 1.125 / 5000) * 5000
    y_max = max(0.6, max(final for _, _, final in ramps.values()) + 0.1)
    c.draw.line([(px, py), (px, py + ph), (px + pw, py + ph)], fill=INK, width=2)

    def to_px(batch: float, share: float) -> Point:
        return (px + pw * batch / x_max, py + ph * (1 - share / y_max))

    for share in (0.25 * i for i in range(int(y_max / 0.25) + 1)):
        _, yy = to_px(0, share)
        c.draw.line([(px - 5, yy), (px, yy)], fill=INK, width=2)
        c.text((px - 10, yy), f"{share:g}", size=14, anchor="rm")
    for batch in range(0, x_max + 1, 10000):
        xx, _ = to_px(batch, 0)
        c.draw.line([(xx, py + ph), (xx, py + ph + 5)], fill=INK, width=2)
        c.text((xx, py + ph + 8), f"{batch // 1000}k", size=14, anchor="ma")
    c.text((px + pw / 2, py + ph + 28), "training batches", size=15, anchor="ma")
    c.text((area.x, py - 4), "p", size=15)
    for (label, (start, end, final)), color in zip(ramps.items(), (CURR, CURR2), strict=True):
        points = [to_px(0, 0), to_px(start, 0), to_px(end, final), to_px(x_max, final)]
        c.draw.line(points, fill=color, width=4, joint="curve")
        lx, ly = to_px(end, final)
        c.text((lx + 10, ly - (26 if color == CURR else -8)), label, size=15, color=color)
