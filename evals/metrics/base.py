"""Base of the eval metrics: a torchmetrics ``Metric`` with float64 sum states and dict outputs.

Each metric's functional module (``evals/functional/<metric>.py``) provides ``_<metric>_update``
returning sufficient statistics (sums, counts) and ``_<metric>_compute`` turning them into
values; the class adds the statistics into states reduced with ``sum`` (``max`` where noted), so
one clip at a time, a batch, or several processes give the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torchmetrics import Metric

from evals.errors import MetricNotApplicable
from evals.functional._clips import per_clip_scalars

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

    @staticmethod
    def _require_frames(clips: Sequence[Any], need: int, what: str) -> None:
        """Raises :class:`MetricNotApplicable` when every clip has fewer than ``need`` frames.

        Args:
            clips: per-clip arrays (or streamed clips) with frames along their first axis.
            need: fewest frames the metric can measure.
            what: what needs them, for the message (e.g. ``"landmark jitter"``).
        """
        longest = max((len(c) for c in clips), default=0)
        if longest < need:
            raise MetricNotApplicable(
                f"clip too short: {what} needs at least {need} frames, got {longest}"
            )

    @staticmethod
    def _require_seconds(clips: Sequence[Any], fps: Any, seconds: float, what: str) -> None:
        """Raises :class:`MetricNotApplicable` when every clip is shorter than ``seconds``.

        Args:
            clips: per-clip arrays with frames along their first axis.
            fps: frames per second, a scalar or one per clip.
            seconds: shortest clip the metric can measure.
            what: what needs it, for the message (e.g. ``"a blink rate"``).
        """
        rates = per_clip_scalars(fps, len(clips), "fps")
        if not any(len(c) >= math.ceil(seconds * r) for c, r in zip(clips, rates, strict=True)):
            longest = max((len(c) / r for c, r in zip(clips, rates, strict=True)), default=0.0)
            raise MetricNotApplicable(
                f"clip too short: {what} needs at least {seconds:g} s, got {longest:.2f} s"
            )

    def _raise_max(self, name: str, value: float) -> None:
        state = getattr(self, name)
        state.fill_(max(float(state), float(value)))

    def _sums(self) -> list[float]:
        return [float(getattr(self, name)) for name in self._sum_states]

    @staticmethod
    def _tensors(values: dict[str, float]) -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
