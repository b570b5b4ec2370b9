"""Draw `docs/images/architecture.png`: PMFS's data flow, its three stages and the curriculum.

    python scripts/draw_architecture.py [--out docs/images/architecture.png]

Drawn with the primitives of `scripts/diagram.py` (Pillow and its bundled font; nothing random),
so two runs with the same Pillow write the same pixels. The canvas size is fixed (`SIZE`).
`tests/test_docs.py` redraws it and compares with the committed PNG. The curriculum plot
(`scripts/curriculum_plot.py`) reads its ramps from `experiments/full.yaml`; redraw after
changing them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from curriculum_plot import draw_ramps, read_curriculum
from diagram import (
    BATCH,
    BATCH_EDGE,
    CURR,
    CURR2,
    DATA_EDGE,
    GREY,
    NOTE,
    PART,
    STAGE,
    STAGE_EDGE,
    Box,
    Canvas,
)

log = logging.getLogger(__name__)

SIZE = (1800, 1370)  # (width, height) in pixels
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "images" / "architecture.png"


def draw_data(c: Canvas) -> Box:
    """Row 1: raw datasets -> preprocess -> cache <- synth; cache -> DataModule -> batch."""
    c.text((30, 22), "Data: raw datasets -> cache -> DataModule -> batch", size=24, color=DATA_EDGE)
    mead, crema = Box(30, 70, 270, 100), Box(30, 190, 270, 100)
    c.box(
        mead,
        "MEAD (raw, train)",
        ["<spk>/video/front/<emo>/", "  level_<n>/<clip>.mp4", "25 fps, audio m4a or in mp4"],
    )
    c.box(
        crema,
        "CREMA-D (raw, test)",
        ["VideoFlash/*.flv (30 fps)", "AudioWAV/*.wav", "labels mapped onto MEAD's"],
    )
    prep = Box(345, 70, 330, 220)
    c.box(
        prep,
        "pmfs data preprocess",
        [
            "video -> 25 fps, audio -> 16 kHz mono",
            "68 landmarks per frame (FAN)",
            "gap fill + Savitzky-Golay smoothing",
            "one stable square crop -> 256 x 256",
            "foreground mask, 80-band log-mel",
            "atomic, resumable, every skipped",
            "  clip in the manifest with a reason",
        ],
    )
    synth = Box(345, 305, 330, 80)
    c.box(
        synth,
        "pmfs data synth (built-in)",
        [
            "synthetic MEAD-like speakers:",
        ],
        fill=NOTE,
        edge=GREY,
    )
    c.text((357, 355), "exact landmarks and masks", size=16)
    cache = Box(720, 70, 300, 220)
    c.box(
        cache,
        "Cache (one per dataset)",
        [
            "manifest.csv: one row per clip",
            "  (speaker, emotion, level, status)",
            "per clip: frames (random access),",
            "  landmarks (px, float32), mel,",
            "  foreground mask, meta.json",
            "docs/cache_format.md",
        ],
    )
    module = Box(1065, 70, 330, 220)
    c.box(
        module,
        "TalkingFaceDataModule",
        [
            "splits: MEAD test M003 M030 W024,",
            "  val = held-out clips; CREMA-D",
            "  test-only (zero-shot)",
            "windows of T = 5 frames",
            "K refs: driven | random | spread",
            "background: keep | remove",
        ],
    )
    batch = Box(1440, 70, 330, 290)
    c.box(
        batch,
        "Batch (pmfs/batch.py)",
        [
            "mel            (B, T, 80, 16)",
            "landmarks      (B, T, 68, 2)  [-1, 1]",
            "target         (B, 3, H, W)   [0, 1]",
            "fg_mask        (B, 1, H, W)",
            "ref_frames     (B, K, 3, H, W)",
            "ref_landmarks  (B, K, 68, 2)",
            "emotion, level (B,)",
            "speaker, clip, frame_index",
        ],
        fill=BATCH,
        edge=BATCH_EDGE,
    )
    c.arrow(
        [mead.right, (322, mead.right[1]), (322, prep.left[1] - 20), (prep.x, prep.left[1] - 20)]
    )
    c.arrow(
        [crema.right, (322, crema.right[1]), (322, prep.left[1] + 20), (prep.x, prep.left[1] + 20)]
    )
    c.arrow([prep.right, cache.left])
    c.arrow(
        [
            synth.right,
            (697, synth.right[1]),
            (697, cache.y + cache.h - 30),
            (cache.x, cache.y + cache.h - 30),
        ]
    )
    c.arrow([cache.right, module.left])
    c.arrow([module.right, (batch.x, module.right[1])])
    return batch


def draw_bus(c: Canvas, batch: Box, drops: Sequence[tuple[float, float, str]]) -> None:
    """The batch feeding each stage: a bus under the data row, one labelled drop per stage."""
    y = 405
    x_end = batch.bottom[0]
    c.draw.line([(x_end, batch.y + batch.h), (x_end, y)], fill=BATCH_EDGE, width=4)
    c.draw.line([(min(x for x, _, _ in drops), y), (x_end, y)], fill=BATCH_EDGE, width=4)
    for x, y_end, label in drops:
        c.arrow([(x, y), (x, y_end)], color=BATCH_EDGE, width=4)
        c.text((x + 8, y + 6), label, size=15, color=BATCH_EDGE)


def stage(c: Canvas, box: Box, title: str, lines: Sequence[str]) -> None:
    """The box of a landmark stage."""
    c.box(box, title, lines, fill=STAGE, edge=STAGE_EDGE, title_size=22, size=17)


def draw_stages(c: Canvas) -> tuple[Box, Box, Box]:
    """Row 2: AudioToMouth -> MouthToFace -> FaceRenderer with the scheduled-sampling switches."""
    s1 = Box(30, 480, 420, 300)
    stage(
        c,
        s1,
        "1  AudioToMouth",
        [
            "in:  mel windows (B, T, 80, 16)",
            "     reference landmarks (B, K, 68, 2)",
            "     emotion, level (optional token)",
            "net: conv encoder per mel window +",
            "     transformer over frame and",
            "     reference tokens",
            "out: canonical content (B, T, 31, 2)",
            "     lips 48-67 + lower jaw 3-13",
            "loss: L1 + velocity",
        ],
    )
    s2 = Box(545, 480, 420, 300)
    stage(
        c,
        s2,
        "2  MouthToFace",
        [
            "in:  canonical content (B, T, 31, 2)",
            "     pose landmarks of the targets",
            "     (the other 37 points)",
            "     reference landmarks",
            "net: Umeyama placement on the pose",
            "     + learned canonical correction",
            "out: 68 landmarks (B, T, 68, 2)",
            "     in target-image coordinates",
            "loss: L1 + velocity",
        ],
    )
    s3 = Box(1060, 440, 710, 480)
    c.box(s3, "3  FaceRenderer", [], fill=STAGE, edge=STAGE_EDGE, title_size=22)
    draw_renderer(c, s3)
    return s1, s2, s3


def part(c: Canvas, box: Box, title: str, lines: Sequence[str]) -> None:
    """A part inside stage 3's box."""
    c.box(box, title, lines, fill=PART, edge=STAGE_EDGE, title_size=17, size=15)


def draw_renderer(c: Canvas, s3: Box) -> None:
    """Stage 3's inside: sketches, masked target, references, warping, decoder, compositing."""
    x0, y0 = s3.x + 15, s3.y + 48
    sketch = Box(x0, y0, 215, 82)
    part(c, sketch, "sketches (T frames)", ["soft lines, drawn on the", "device: differentiable"])
    target = Box(x0 + 232, y0, 215, 82)
    part(c, target, "masked target", ["lower face hidden:", "lower_half | content_hull"])
    refs = Box(x0 + 464, y0, 215, 82)
    part(c, refs, "K references", ["images + their sketches,", "encoded once per clip"])
    enc_t = Box(x0, y0 + 112, 447, 50)
    c.box(enc_t, "target encoder (feature pyramid)", [], fill=PART, edge=STAGE_EDGE, title_size=17)
    enc_r = Box(x0 + 464, y0 + 112, 215, 50)
    c.box(enc_r, "reference encoder", [], fill=PART, edge=STAGE_EDGE, title_size=17)
    for top in (sketch, target):
        c.arrow([top.bottom, (top.bottom[0], enc_t.y)], color=STAGE_EDGE, width=2, head=9)
    c.arrow([refs.bottom, enc_r.top], color=STAGE_EDGE, width=2, head=9)
    warp = Box(x0 + 464, y0 + 180, 215, 122)
    c.box(
        warp,
        "warping",
        ["dense flow F_k +", "confidence per ref,", "grid_sample, merge", "(softmax over K)"],
        fill=PART,
        edge=CURR2,
        title_size=17,
        size=15,
        dashed=True,
    )
    c.arrow([enc_r.bottom, warp.top], color=STAGE_EDGE, width=2, head=9)
    dec = Box(x0, y0 + 190, 447, 105)
    part(
        c,
        dec,
        "decoder",
        [
            "fuses target and merged reference features",
            "at every level (skips, residual blocks);",
            "out: a * warped refs + (1 - a) * decoded RGB",
        ],
    )
    c.arrow([enc_t.bottom, (enc_t.bottom[0], dec.y)], color=STAGE_EDGE, width=2, head=9)
    c.arrow([warp.left, dec.right], color=STAGE_EDGE, width=2, head=9)
    comp = Box(x0, y0 + 320, 447, 82)
    part(
        c,
        comp,
        "compositing (background: keep)",
        ["feathered face-hull mask pastes the face", "into the real frame -> RGB (B, 3, H, W)"],
    )
    c.arrow([dec.bottom, comp.top], color=STAGE_EDGE, width=2, head=9)
    ablations = [
        "ablations: the dashed part off",
        "(warping: false); background:",
        "remove (white, no compositing)",
    ]
    c.lines((x0 + 464, y0 + 308), ablations, step=19, size=15, color=CURR2)
    losses = [
        "loss: L1 + mouth L1 + VGG19",
        "+ hinge GAN (multi-scale patch D)",
        "+ feature matching + warp",
    ]
    c.lines((x0 + 464, y0 + 372), losses, step=19, size=15)


def draw_curriculum_links(c: Canvas, s1: Box, s2: Box, s3: Box) -> None:
    """The scheduled-sampling switches between stages and the optional joint gradient."""
    y = s1.right[1]
    ss1 = (s1.x + s1.w + 47, y)
    c.arrow([s1.right, (ss1[0] - 22, y)], color=CURR, width=3)
    c.circle(ss1, 22, "p2", CURR)
    c.arrow([(ss1[0] + 22, y), s2.left], color=CURR, width=3)
    ss2 = (s2.x + s2.w + 47, y)
    c.arrow([s2.right, (ss2[0] - 22, y)], color=CURR, width=3)
    c.circle(ss2, 22, "p3", CURR)
    c.arrow([(ss2[0] + 22, y), (s3.x, y)], color=CURR, width=3)
    switches = [
        "p2, p3: per sample, the previous stage's prediction (with",
        "probability p, rising with training batches) or the ground truth",
        "(scheduled sampling; detached at every stage boundary)",
    ]
    c.lines((s1.x, s1.y + s1.h + 12), switches, step=20, size=16, color=CURR)
    back_y = s3.y + s3.h + 28
    c.arrow(
        [(s3.x + 120, s3.y + s3.h), (s3.x + 120, back_y), (s2.bottom[0], back_y), s2.bottom],
        color=CURR2,
        width=3,
        dashed=True,
    )
    joint = [
        "curriculum.joint_start: the image loss reaches stage 2",
        "through the sketches (x joint_weight)",
    ]
    c.lines((s2.x + 20, back_y + 8), joint, step=20, size=16, color=CURR2)


def draw_notes(c: Canvas, area: Box) -> None:
    """Training, evaluation and inference in one box each."""
    notes = [
        (
            "Training: pmfs fit -c experiments/full.yaml",
            [
                "one optimizer per stage + the discriminator (manual optimization),",
                "one backward pass per batch; stages also train alone",
                "(experiments/stages/*.yaml); ablations stack (experiments/ablations/)",
            ],
        ),
        (
            "Ablations and sweeps: pmfs sweep experiments/sweeps/ablations.yaml",
            [
                "one run per overlay of experiments/ablations/ on full.yaml (also a",
                "standard W&B sweep file: wandb sweep / wandb agent)",
            ],
        ),
        (
            "Evaluation: pmfs evaluate (a checkpoint on a cache's test split)",
            [
                "M-LMD, F-LMD, velocity LMD, mouth-opening sync, PSNR / SSIM",
                "(+ mouth box), LPIPS, FID, LSE-C/D; per emotion and level",
            ],
        ),
        (
            "Inference: pmfs infer (checkpoint + audio + face video or image)",
            [
                "face video/image -> landmarks + crop; audio -> mel; stage 1 -> 2 (pose",
                "from the video) -> 3; face pasted back into the frames, audio muxed",
            ],
        ),
    ]
    y = area.y
    for title, lines in notes:
        h = 28 + 21 * len(lines)
        c.box(Box(area.x, y, area.w, h), title, lines, fill=NOTE, edge=GREY, title_size=17, size=15)
        y += h + 8


def draw(out: Path) -> Path:
    """Draw the diagram into `out` (PNG, `SIZE` pixels) and return the path."""
    c = Canvas(SIZE)
    batch = draw_data(c)
    s1, s2, s3 = draw_stages(c)
    draw_bus(
        c,
        batch,
        [
            (s1.x + 40, s1.y, "mel, ref_landmarks, emotion, level"),
            (s2.x + 40, s2.y, "pose, ref_landmarks, true content"),
            (s3.x + 40, s3.y, "target, fg_mask, ref_frames, ref_landmarks, true landmarks"),
        ],
    )
    draw_curriculum_links(c, s1, s2, s3)
    draw_ramps(c, Box(30, 1020, 800, 330), read_curriculum())
    draw_notes(c, Box(1000, 1020, 770, 330))
    out.parent.mkdir(parents=True, exist_ok=True)
    c.image.save(out, format="PNG", optimize=True)
    log.info("wrote %s (%d×%d)", out, *SIZE)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: draw the diagram to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PNG to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    draw(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
