"""VGG19 feature extractor with torchvision's layer layout and state-dict keys.

The perceptual loss of stage 3 compares VGG19 activations (Simonyan & Zisserman, 2015; as in
pix2pixHD and first-order-model). torchvision is not a dependency, so the network is defined
here with exactly the indices of torchvision's `vgg19().features` (configuration "E"): the
standard ImageNet file `vgg19-dcbb9e9d.pth` loads into it key for key, from a local path or the
torch hub cache. Only the layers up to the deepest one asked for are built.

Layout of `features` (conv 3×3 padding 1, ReLU, 2×2 max-pool):

    block 1:  0 conv, 1 relu1_1,  2 conv,  3 relu1_2,                      4 pool
    block 2:  5 conv, 6 relu2_1,  7 conv,  8 relu2_2,                      9 pool
    block 3: 10 conv, 11 relu3_1, 12 conv, 13 relu3_2, ..., 16 conv, 17 relu3_4, 18 pool
    block 4: 19 conv, 20 relu4_1, ..., 25 conv, 26 relu4_4,                27 pool
    block 5: 28 conv, 29 relu5_1, ..., 34 conv, 35 relu5_4,                36 pool
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "DEFAULT_LAYERS",
    "LAYER_INDICES",
    "VGG19_FILENAME",
    "VGG19_URL",
    "VGG19Features",
    "load_vgg19",
    "vgg19_weights_path",
]

log = logging.getLogger(__name__)

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG19 weights file name (as in the torch hub cache)."""
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"

# torchvision `cfgs["E"]`: output channels of each conv, "M" a max-pool.
_CFG_E: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip


def _layer_indices() -> dict[str, int]:
    """`relu<block>_<conv>` → index in `features` of that ReLU, walking `_CFG_E`."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 1
    for item in _CFG_E:
        if item == "M":
            index, block, conv = index + 1, block + 1, 1
        else:
            names[f"relu{block}_{conv}"] = index + 1
            index, conv = index + 2, conv + 1
    return names


def _conv_indices() -> list[int]:
    """Indices of the convolutions in the full `features` (each one before its ReLU)."""
    return [index - 1 for index in _layer_indices().values()]


LAYER_INDICES: dict[str, int] = _layer_indices()
"""relu1_1 … relu5_4 → index of that ReLU in torchvision's `vgg19().features`."""
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _check_layers(layers: Sequence[str]) -> None:
    if isinstance(layers, str) or len(layers) == 0:
        raise ValueError(f"layers must be a non-empty sequence of names, got {layers!r}")
    unknown = [name for name in layers if name not in LAYER_INDICES]
    if unknown:
        raise ValueError(f"unknown VGG19 layers {unknown}; choose from {list(LAYER_INDICES)}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"VGG19 layers must be distinct, got {list(layers)}")


class VGG19Features(nn.Module):
    """torchvision's `vgg19().features`, cut after the deepest requested ReLU.

    Args:
        layers: names of the ReLU outputs to return, e.g. ("relu1_1", "relu3_1"); the network
            is built up to the deepest of them. Outputs come in this order.

    Attributes:
        features: `nn.Sequential` with torchvision's indices, so the state-dict keys are
            `features.<index>.weight` / `.bias` as in `vgg19-dcbb9e9d.pth`.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        _check_layers(layers)
        self.layers = tuple(layers)
        self._indices = [LAYER_INDICES[name] for name in self.layers]
        depth = max(self._indices) + 1
        modules: list[nn.Module] = []
        channels = 3
        for item in _CFG_E:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*modules[:depth])
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """torchvision's initialisation: He normal (fan out) weights, zero biases."""
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """ReLU outputs of the chosen layers.

        Args:
            x: (B, 3, H, W) ImageNet-normalized RGB (`(x - mean) / std`).

        Returns:
            one (B, C_l, H / 2^s, W / 2^s) tensor per name in `layers`, in that order.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19 input must be (B, 3, H, W), got {tuple(x.shape)}")
        found: dict[int, Tensor] = {}
        wanted = set(self._indices)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in self._indices]


def vgg19_weights_path(weights: str) -> Path:
    """Where the VGG19 weights file is: `"imagenet"` means the torch hub cache
    (`torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`, i.e. `$TORCH_HOME/hub/...`),
    anything else is a path to a file."""
    if weights == "imagenet":
        return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME
    return Path(weights).expanduser()


def load_vgg19(weights: str | None, layers: Sequence[str]) -> VGG19Features:
    """Build `VGG19Features` for `layers` and load its weights, frozen and in eval mode.

    Args:
        weights: "imagenet" (torch hub cache), a path to a torchvision-layout state dict
            (`features.*` keys are used, `classifier.*` ignored), or None for a random
            network (He init from a fixed seed, so every process builds the same one; meant
            for tests and smoke runs; says so in one log line).
        layers: ReLU names to return (see `LAYER_INDICES`).

    Returns:
        the network, `requires_grad` False on every parameter, in eval mode.

    Raises:
        FileNotFoundError: the weights file does not exist (the message says where to get it).
        ValueError: the file lacks keys the network needs, has keys that are not VGG19's, or
            shapes differ.
    """
    model = VGG19Features(layers)
    if weights is None:
        model.reset_parameters(torch.Generator().manual_seed(0))
        log.info("VGG19 weights: none given, perceptual-loss features are random (tests only)")
    else:
        path = vgg19_weights_path(weights)
        _load_features(model, _read_state(path), path)
    return model.requires_grad_(False).eval()


def _read_state(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG19 weights not found at {path}. Download torchvision's ImageNet VGG19, "
            f"{VGG19_FILENAME}, from {VGG19_URL} and place it in $TORCH_HOME/hub/checkpoints/ "
            f"(now {vgg19_weights_path('imagenet').parent}) for `weights: imagenet`, or pass its "
            "path as `weights`; `weights: null` gives a random network (tests only)."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors (torchvision's vgg19 layout)")
    return state


def _load_features(model: VGG19Features, state: Mapping[str, Tensor], path: Path) -> None:
    """Copy the `features.*` tensors the (possibly cut) model needs from `state`."""
    full = {f"features.{i}.{name}" for i in _conv_indices() for name in ("weight", "bias")}
    given = {key for key in state if key.startswith("features.")}
    own = model.state_dict()
    missing = sorted(set(own) - given)
    unexpected = sorted(given - full)
    mismatched = [
        f"{key}: file {tuple(state[key].shape)} vs VGG19 {tuple(own[key].shape)}"
        for key in sorted(set(own) & given)
        if state[key].shape != own[key].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{path} is not a torchvision VGG19 state dict: missing keys {missing}, "
            f"keys VGG19 does not have {unexpected}, mismatched shapes {mismatched}"
        )
    model.load_state_dict({key: state[key] for key in own})
