"""Base of the eval metrics: a torchmetrics ``Metric`` with float64 sum states and dict outputs.

Each metric's functional module (``evals/functional/<metric>.py``) provides ``_<metric>_update``
returning sufficient statistics (sums, counts) and ``_<metric>_compute`` turning them into
values; the class adds the statistics into states reduced with ``sum`` (``max`` where noted), so
one clip at a time, a batch, or several processes give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torchmetrics import Metric

from evals.errors import MetricNotApplicable

__all__ = ["EvalMetric", "MetricNotApplicable"]


class EvalMetric(Metric):
    """A metric whose states are float64 scalars named in ``_sum_states`` / ``_max_states``.

    Subclasses set ``directions`` (output key -> higher is better, or None for statistics with no
    better direction); ``higher_is_better`` is the direction of the first output.
    """

    is_differentiable: bool = False
    higher_is_better: bool | None = None
    full_state_update: bool = False
    directions: ClassVar[dict[str, bool | None]] = {}
    _sum_states: ClassVar[tuple[str, ...]] = ()
    _max_states: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in self._sum_states:
            self.add_state(
                name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
            )
        for name in self._max_states:
            self.add_state(
                name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="max"
            )

    def _add(self, values: Sequence[float]) -> None:
        """Adds one ``_update`` result to the sum states, in ``_sum_states`` order."""
        if len(values) != len(self._sum_states):
            raise RuntimeError(f"{type(self).__name__}: {len(values)} sums for {self._sum_states}")
        for name, value in zip(self._sum_states, values, strict=True):
            getattr(self, name).add_(float(value))

    def _raise_max(self, name: str, value: float) -> None:
        state = getattr(self, name)
        state.fill_(max(float(state), float(value)))

    def _sums(self) -> list[float]:
        return [float(getattr(self, name)) for name in self._sum_states]

    @staticmethod
    def _tensors(values: dict[str, float]) -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
