"""Manual optimization, shared by `FaceRenderer` and the `PMFS` system (GAN training).

Both stages train several networks (a generator and its discriminator; or the three stages and the
discriminator) from one backward pass: each network's loss is built so that it reaches only that
network's parameters (the critic frozen inside the generator's terms, detached frames in the
critic's), then every optimizer steps on its own network's gradient. Manual optimization cannot
use the Trainer's `gradient_clip_val`, so the clipping is done here, per network.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["clip_gradients", "frozen", "manual_step"]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, `module`'s parameters build no graph (their flags are restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


def clip_gradients(network: nn.Module, max_norm: float) -> None:
    """Scale `network`'s gradient down to a norm of at most `max_norm`; an `nn.ModuleList` is
    several networks (the renderer's two critics), each clipped on its own, so one critic's large
    gradient does not shrink the other's step."""
    for part in network if isinstance(network, nn.ModuleList) else [network]:
        torch.nn.utils.clip_grad_norm_(part.parameters(), max_norm)


def manual_step(
    module: LightningModule,
    loss: Tensor,
    trained: Sequence[nn.Module],
    gradient_clip: float | None,
    schedulers: Sequence[LRScheduler] = (),
) -> None:
    """One update of every optimizer of `module` from one backward pass of `loss`.

    Zeroes every optimizer's gradients, calls `manual_backward(loss)`, then for each optimizer
    clips the gradient norm of the network it updates and steps it; then steps the schedulers.

    Args:
        module: the LightningModule (`automatic_optimization = False`).
        loss: the scalar sum of every trained network's loss.
        trained: the network each optimizer updates, in `configure_optimizers` order; an
            `nn.ModuleList` is several networks under one optimizer (the renderer's two critics),
            each clipped on its own.
        gradient_clip: the largest gradient norm of each network; None = no clipping.
        schedulers: learning-rate schedulers stepped after the optimizers (once per batch).
    """
    optimizers = module.optimizers()
    found = optimizers if isinstance(optimizers, list) else [optimizers]
    pairs = list(zip(found, trained, strict=True))
    for optimizer, _ in pairs:
        optimizer.zero_grad(set_to_none=True)
    module.manual_backward(loss)
    for optimizer, network in pairs:
        if gradient_clip is not None:
            clip_gradients(network, gradient_clip)
        optimizer.step()
    for scheduler in schedulers:
        scheduler.step()
