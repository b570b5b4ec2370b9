"""Learning-rate decay over the end of training (pix2pix's linear decay to zero, Isola et al. 2017).

Why: with a constant Adam learning rate the weights at the last batch are one sample of a noisy
walk, and held-out mouth PSNR moved by 1.5–3 dB with any perturbation of that walk — another seed,
another thread count, another CPU instruction set (docs/results.md, "Why a CPU changed the
result"). Decaying the rate to (near) zero over the last part of training lets every run settle,
so the score reflects the method and the budget, not where the walk happened to stop.

The horizon is the number of training *batches* the Trainer will run: with manual optimization
Lightning counts one `global_step` per optimizer step, so `max_steps` is divided by the number of
optimizers stepped per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning.pytorch import Trainer
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class LRDecay:
    """Constant learning rate, then a linear decay (per training batch) over the end of training.

    Attributes:
        start: share of the training horizon after which the decay begins (0.5: the second half,
            as pix2pix); 1.0 switches the decay off.
        final: the learning-rate factor reached at the last batch (0.0: decay to zero).
    """

    start: float = 0.5
    final: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.start <= 1.0 and 0.0 <= self.final <= 1.0):
            raise ValueError(
                f"lr_decay needs start and final in [0, 1], got start={self.start}, "
                f"final={self.final}"
            )

    def factor(self, batch: int, horizon: int) -> float:
        """The learning-rate factor at training batch `batch` of `horizon` batches."""
        begin = self.start * horizon
        if batch < begin or horizon <= begin:
            return 1.0
        progress = min((batch - begin) / (horizon - begin), 1.0)
        return 1.0 - (1.0 - self.final) * progress


def training_horizon(trainer: Trainer, optimizers_per_batch: int) -> int:
    """Training batches `trainer.fit` will run: the smaller of `max_steps` (counted in optimizer
    steps, `optimizers_per_batch` per batch) and `max_epochs` × batches per epoch.

    Raises:
        ValueError: when neither bounds training (a decay needs an end).
    """
    horizon = math.inf
    if trainer.max_steps is not None and trainer.max_steps > 0:
        horizon = trainer.max_steps / optimizers_per_batch
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        _ = trainer.estimated_stepping_batches  # sets up the train dataloader and its length
        per_epoch = trainer.num_training_batches
        if math.isfinite(per_epoch):
            horizon = min(horizon, trainer.max_epochs * per_epoch)
    if not math.isfinite(horizon):
        raise ValueError(
            "lr_decay needs a bounded training (trainer.max_steps or trainer.max_epochs); "
            "set one, or set lr_decay to null"
        )
    return max(int(horizon), 1)


def decay_schedulers(optimizers: list[Optimizer], decay: LRDecay, horizon: int) -> list[LambdaLR]:
    """One `LambdaLR` per optimizer following `decay` over `horizon` batches (step once a batch)."""
    return [LambdaLR(opt, lambda batch: decay.factor(batch, horizon)) for opt in optimizers]
