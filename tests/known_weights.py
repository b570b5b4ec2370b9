"""A `PMFS` checkpoint whose weights are set, not trained: what inference does with it is known.

A model trained for a few batches may or may not move the mouth, and whether it does changes
with the CPU's vector unit (AVX-512, AVX2, none: different float rounding, a different model
after 40 steps). Tests of what is done with a model (animation, paste-back, evaluation, figures)
use this one instead, derived from a real `pmfs fit` checkpoint (its config, its data config)
with the three networks built afresh from a fixed seed and some of their weights set:

* stage 1 (`AudioToMouthNet`): its transformer passes each frame's token through unchanged
  (attention and feed-forward outputs zeroed, no time embedding), so the feature f the head
  reads depends on that frame's mel window only. Its head, which starts at zero (the speaker's
  mean reference mouth whatever the audio), drops the chin and the lower lip by
  `mouth · (f − f₀)·d / |d|²`, d = f₁ − f₀, f₀ and f₁ the features of a silent window (every
  mel value at −4) and of a loud one (+4): not at all in silence, by `mouth` (normalized units)
  for the loud window, in between, frame by frame, for speech.
* stage 2 (`MouthToFaceNet`) is left at its initialisation, the analytic placement of stage 1's
  points on the target's pose.
* the renderer (`FaceRendererNet`): its blend logit is set to −`BLEND_LOGIT`, so the frame is
  the decoded RGB (α ≈ 0, not a copy of the references); random convolutions of the sketches
  and the masked target make a different face wherever a sketch differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pmfs.audio import MAX_ABS_VALUE
from pmfs.checkpoints import load_model
from pmfs.landmarks import CONTENT_INDICES
from pmfs.networks.audio_to_mouth import (
    MEL_BANDS,
    MEL_STEPS,
    NUM_CONTENT,
    AudioToMouthNet,
)
from pmfs.stages import PMFS

LOWER_FACE = np.array([6, 7, 8, 9, 10, 55, 56, 57, 58, 59, 65, 66, 67])
"""Points that `mouth` moves down: chin, lower outer and lower inner lip."""
BLEND_LOGIT = 30.0
"""|blend logit|: sigmoid(−30) ≈ 1e-13, the references' share of the frame."""


def _network_args(hparams: dict[str, Any], stage: str) -> dict[str, Any]:
    """The init arguments of a stage's network in a `pmfs fit` checkpoint's hyper-parameters."""
    return dict(hparams[stage]["init_args"]["network"]["init_args"])


def _rebuild(network: nn.Module, args: dict[str, Any]) -> None:
    """Replace a network's weights with those of a new instance built from `args`."""
    network.load_state_dict(type(network)(**args).state_dict())


def _pass_through(network: AudioToMouthNet) -> None:
    """Each token leaves the transformer as it came in: attention and feed-forward add zero."""
    network.time.zero_()
    for layer in network.encoder.layers:
        for linear in (layer.self_attn.out_proj, layer.linear2):
            linear.weight.zero_()
            linear.bias.zero_()


def _feature(network: AudioToMouthNet, level: float) -> Tensor:
    """(D,) what the head reads for a mel window with every value at `level`."""
    seen: list[Tensor] = []
    hook = network.norm.register_forward_hook(lambda _module, _args, out: seen.append(out))
    labels = torch.zeros(1, dtype=torch.int64) if network.emotion is not None else None
    network(
        torch.full((1, 1, MEL_BANDS, MEL_STEPS), level),
        torch.zeros(1, 1, NUM_CONTENT, 2),
        labels,
        labels,
    )
    hook.remove()
    return seen[0][0, 0]


def _open_with_the_audio(network: AudioToMouthNet, mouth: float) -> None:
    """Set the head as the module docstring says (after `_pass_through`)."""
    _pass_through(network)
    silent, loud = _feature(network, -MAX_ABS_VALUE), _feature(network, MAX_ABS_VALUE)
    d = loud - silent
    rows = 2 * np.searchsorted(CONTENT_INDICES, LOWER_FACE) + 1  # their y offsets
    network.head.weight.zero_()
    network.head.bias.zero_()
    network.head.weight[rows] = mouth * d / d.dot(d)
    network.head.bias[rows] = -mouth * silent.dot(d) / d.dot(d)


@torch.no_grad()
def set_known_weights(
    model: PMFS, hparams: dict[str, Any], seed: int = 0, mouth: float = 0.2
) -> PMFS:
    """Give a `PMFS` the weights described in the module docstring, in place.

    Args:
        model: a `PMFS`.
        hparams: the `hyper_parameters` of the `pmfs fit` checkpoint it was loaded from (they
            hold the networks' init arguments).
        seed: seed of the fresh networks.
        mouth: how far a loud window drops the chin and the lower lip (normalized units).

    Returns:
        `model`, in eval mode.
    """
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
        torch.manual_seed(seed)
        for stage in ("audio_to_mouth", "mouth_to_face", "renderer"):
            network = getattr(model, stage).network
            _rebuild(network, _network_args(hparams, stage))
    _open_with_the_audio(model.audio_to_mouth.network, mouth)
    # Conv2d(C, 4 or 5): RGB logits, the blend logit (and, with a working size, the detail
    # gain, left at its zero initialisation: plain bilinear upsampling)
    out = model.renderer.network.to_rgb[-1]
    if not (isinstance(out, nn.Conv2d) and out.out_channels in (4, 5) and out.bias is not None):
        raise TypeError(f"expected the renderer's last layer to be Conv2d(C, 4 or 5), got {out}")
    out.weight[3].zero_()
    out.bias[3] = -BLEND_LOGIT
    return model.eval()


def write_known_checkpoint(source: Path, out: Path, seed: int = 0, mouth: float = 0.2) -> Path:
    """A copy of the `pmfs fit` checkpoint `source` with `set_known_weights` applied.

    Returns:
        `out`, loadable by `pmfs.checkpoints.load_model` (and so by `pmfs infer`, ...).
    """
    model = load_model(source)
    if not isinstance(model, PMFS):
        raise TypeError(f"{source} holds a {type(model).__name__}, not a PMFS")
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    set_known_weights(model, checkpoint["hyper_parameters"], seed, mouth)
    checkpoint["state_dict"] = model.state_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    return out
