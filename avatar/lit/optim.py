"""The optimizer and LR-scheduler set-up every LitModule here shares (Hydra partials)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["optimizers"]


def optimizers(
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable[..., Any] | None,
    interval: str,
) -> dict[str, Any]:
    """``configure_optimizers``'s return value.

    Args:
        params: the parameters to optimise.
        optimizer: partial optimizer, called with ``params``.
        scheduler: partial LR scheduler called with ``optimizer``, or None.
        interval: ``"step"`` or ``"epoch"``: when the scheduler steps.
    """
    opt = optimizer(params=params)
    if scheduler is None:
        return {"optimizer": opt}
    schedule = {"scheduler": scheduler(optimizer=opt), "interval": interval}
    return {"optimizer": opt, "lr_scheduler": schedule}
