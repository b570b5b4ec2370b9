"""Random-weight face-alignment checkpoints for tests (no download, nothing committed).

`write_random_weights(torch_home)` saves a randomly initialised 2D FAN and S3FD, built from
face-alignment's own model classes, as state dicts under the file names the library loads from
the torch hub cache: `<torch_home>/hub/checkpoints/2DFAN4-11f355bf06.pth.tar` and
`s3fd-619a316812.pth` (names read from the library's URL tables, so a renamed release fails
loudly here).

S3FD with random heads scores hundreds of candidate boxes per frame near 0.5 (about 0.8 s per
256² frame on a CPU core, all in NMS) and returns arbitrary tiny boxes. So its backbone stays
random but its six classification heads are set to constants: every level says "background"
except the stride-32 level (128-px priors), which says "face" everywhere, and the box
regressions are zero (boxes = the priors). Every frame then has a few 128-px boxes and the FAN
code path runs on every frame. Landmark accuracy is not claimed.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch

FACE_LEVEL = 3  # fc7: stride 32, priors of 128 px
_CONF_HEADS = (
    "conv3_3_norm_mbox_conf",
    "conv4_3_norm_mbox_conf",
    "conv5_3_norm_mbox_conf",
    "fc7_mbox_conf",
    "conv6_2_mbox_conf",
    "conv7_2_mbox_conf",
)


def _name(url: str) -> str:
    return os.path.basename(urlparse(url).path)


def _detector_state(seed: int) -> dict[str, torch.Tensor]:
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.manual_seed(seed)
    net = s3fd()
    with torch.no_grad():
        for level, head in enumerate(_CONF_HEADS):
            conv = getattr(net, head)
            conv.weight.zero_()
            face = 5.0 if level == FACE_LEVEL else -5.0
            conv.bias.fill_(-face)  # background logit(s)
            conv.bias[-1] = face  # the last channel is "face" (conv3_3 has 3 background maps)
        for head in _CONF_HEADS:
            loc = getattr(net, head.replace("_conf", "_loc"))
            loc.weight.zero_()
            loc.bias.zero_()
    return net.state_dict()


def write_random_weights(torch_home: Path, seed: int = 0) -> dict[str, Path]:
    """Save random FAN + S3FD checkpoints into `<torch_home>/hub/checkpoints/`.

    Returns:
        file name → path of each file written.
    """
    from face_alignment.api import models_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls
    from face_alignment.models import FAN

    folder = Path(torch_home) / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fan = FAN(4)
    paths = {
        _name(models_urls["2DFAN-4"]): fan.state_dict(),
        _name(sfd_urls["s3fd"]): _detector_state(seed),
    }
    written = {}
    for name, state in paths.items():
        torch.save(state, folder / name)
        written[name] = folder / name
    return written
