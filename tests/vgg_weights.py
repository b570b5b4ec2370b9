"""A random-weight VGG19 checkpoint for tests (no download, nothing committed).

`write_random_vgg19(torch_home)` saves the `features.*` state dict of a randomly initialised
`VGG19Features` (all 16 convolutions, He init from `seed`) under torchvision's file name, at
`<torch_home>/hub/checkpoints/vgg19-dcbb9e9d.pth` — where `PerceptualLoss(weights="imagenet")`
looks when `TORCH_HOME` points at `torch_home`. Keys and shapes are those of torchvision's
ImageNet file without its `classifier.*` entries (400 MB that the loader ignores anyway). The
file is about 80 MB; write it once per test module (a module-scoped tmp dir).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pmfs.networks.vgg import VGG19_FILENAME, VGG19Features


def random_vgg19_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """`features.<i>.weight` / `.bias` of the full VGG19 (i = 0, 2, 5, …, 34), seeded."""
    with torch.device("meta"):  # skip the constructor's own random init (0.2 s)
        model = VGG19Features(("relu5_4",))
    model = model.to_empty(device="cpu")
    model.reset_parameters(torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-zero biases, so a loader that drops them is caught
        for name, tensor in model.state_dict().items():
            if name.endswith(".bias"):
                tensor.uniform_(-0.1, 0.1, generator=generator)
    return model.state_dict()


def write_random_vgg19(torch_home: Path, seed: int = 0) -> Path:
    """Save `random_vgg19_state(seed)` into `<torch_home>/hub/checkpoints/` and return the path."""
    folder = Path(torch_home) / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VGG19_FILENAME
    torch.save(random_vgg19_state(seed), path)
    return path
