"""The SyncNet v2 network of Chung & Zisserman (2016) and its `syncnet_v2` weights.

`SyncNetV2` is syncnet_python's `S` model: an audio tower over (13, 20) MFCC windows and a lip
tower over 5-frame stacks of 224² BGR face crops, into a shared 1024-d space. `syncnet.py` turns
its embeddings into LSE-D / LSE-C.

Weights: `syncnet_v2.model` from the syncnet_python download script. Despite its name it holds a
state dict of the `S` model (`netcnnaud.*`, `netfcaud.*`, `netcnnlip.*`, `netfclip.*`), which
syncnet_python loads with `torch.load(weights_only=True)`; so does `load_syncnet`, which also
accepts the same keys prefixed by `__S__.` or `module.` (a `SyncNetInstance` or DataParallel
state dict). A fully pickled module is refused (unpickling runs arbitrary code); save its
`state_dict()` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from pmfs.metrics.weights import MetricWeightsError, cached_weights, check_weights

__all__ = ["SYNCNET_WEIGHTS_FILE", "SYNCNET_WEIGHTS_URL", "SyncNetV2", "load_syncnet"]

logger = logging.getLogger(__name__)

SYNCNET_WEIGHTS_FILE = "syncnet_v2.model"
SYNCNET_WEIGHTS_URL = "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model"
SYNCNET_EMBEDDING = 1024


def _conv_bn(
    conv: Callable[..., nn.Module],
    norm: Callable[[int], nn.Module],
    channels: tuple[int, int],
    kernel: tuple[int, ...],
    stride: tuple[int, ...] | int = 1,
    padding: tuple[int, ...] | int = 0,
) -> list[nn.Module]:
    """Convolution, batch norm, ReLU: three consecutive indices of syncnet_python's Sequential."""
    return [conv(*channels, kernel, stride, padding), norm(channels[1]), nn.ReLU()]


def _audio_cnn() -> nn.Sequential:
    """`netcnnaud`: (N, 1, 13, 20) MFCC window → (N, 512, 1, 1); syncnet_python's indices."""
    c2, b2 = nn.Conv2d, nn.BatchNorm2d
    return nn.Sequential(
        *_conv_bn(c2, b2, (1, 64), (3, 3), 1, 1),
        nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
        *_conv_bn(c2, b2, (64, 192), (3, 3), 1, 1),
        nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
        *_conv_bn(c2, b2, (192, 384), (3, 3), 1, 1),
        *_conv_bn(c2, b2, (384, 256), (3, 3), 1, 1),
        *_conv_bn(c2, b2, (256, 256), (3, 3), 1, 1),
        nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
        *_conv_bn(c2, b2, (256, 512), (5, 4), 1, 0),
    )


def _lip_cnn() -> nn.Sequential:
    """`netcnnlip`: (N, 3, 5, 224, 224) BGR 0–255 → (N, 512, 1, 1, 1); syncnet_python's indices."""
    c3, b3 = nn.Conv3d, nn.BatchNorm3d
    return nn.Sequential(
        *_conv_bn(c3, b3, (3, 96), (5, 7, 7), (1, 2, 2), 0),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
        *_conv_bn(c3, b3, (96, 256), (1, 5, 5), (1, 2, 2), (0, 1, 1)),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        *_conv_bn(c3, b3, (256, 256), (1, 3, 3), 1, (0, 1, 1)),
        *_conv_bn(c3, b3, (256, 256), (1, 3, 3), 1, (0, 1, 1)),
        *_conv_bn(c3, b3, (256, 256), (1, 3, 3), 1, (0, 1, 1)),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
        *_conv_bn(c3, b3, (256, 512), (1, 6, 6), 1, 0),
    )


def _head() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, SYNCNET_EMBEDDING)
    )


class SyncNetV2(nn.Module):
    """SyncNet v2 (`S` of syncnet_python): audio and lip towers into a shared 1024-d space.

    Same modules, indices and state-dict keys as syncnet_python (`netcnnaud`, `netfcaud`,
    `netcnnlip`, `netfclip`). Always in eval mode, parameters frozen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.netcnnaud = _audio_cnn()
        self.netfcaud = _head()
        self.netfclip = _head()
        self.netcnnlip = _lip_cnn()
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> SyncNetV2:
        """Stay in eval mode whatever `mode` is: the network is a fixed scorer."""
        return super().train(False)

    def forward_aud(self, mfcc: Tensor) -> Tensor:
        """(N, 1, 13, 20) MFCC windows → (N, 1024) audio embeddings."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: Tensor) -> Tensor:
        """(N, 3, 5, 224, 224) BGR 0–255 frame stacks → (N, 1024) lip embeddings."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def _strip_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in ("__S__.", "module."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def load_syncnet(weights: str | Path | None = None) -> SyncNetV2:
    """Build `SyncNetV2` and load `syncnet_v2.model` into it (strict).

    Args:
        weights: the state-dict file; None looks for `syncnet_v2.model` in the torch hub cache
            (`<torch.hub.get_dir()>/checkpoints/`).

    Raises:
        MetricWeightsError: the file does not exist (the message says where to download it).
        ValueError: the file is not a state dict of SyncNet v2 (e.g. a pickled module).
    """
    path = cached_weights(SYNCNET_WEIGHTS_FILE) if weights is None else Path(weights)
    reason = check_weights(path, f"SyncNet ({SYNCNET_WEIGHTS_FILE})", SYNCNET_WEIGHTS_URL)
    if reason is not None:
        raise MetricWeightsError(reason)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickled module or a corrupt file; which one does not matter
        raise ValueError(
            f"cannot read {path} as a state dict ({type(error).__name__}); if it is a pickled "
            "SyncNet module, save its state_dict() with torch.save and pass that file"
        ) from error
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a SyncNet v2 state dict")
    net = SyncNetV2()
    try:
        net.load_state_dict(_strip_prefix(state), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"{path} is not a SyncNet v2 state dict: {first}") from error
    logger.info("loaded SyncNet v2 weights from %s", path)
    return net
