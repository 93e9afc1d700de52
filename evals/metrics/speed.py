"""Speed metrics from the pipeline's own timings: real-time factor, fps, first-frame latency."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from evals.functional.speed import (
    _first_frame_latency_compute,
    _first_frame_latency_update,
    _real_time_factor_compute,
    _real_time_factor_update,
)
from evals.metrics.base import EvalMetric

__all__ = ["FirstFrameLatency", "RealTimeFactor"]


class RealTimeFactor(EvalMetric):
    """Wall seconds per second of speech (``rtf``, lower is better) and frames per wall second.

    Inputs to ``update``: ``total_s`` (B,) end-to-end wall seconds (``RenderResult.timings
    ["total"]``), ``audio_s`` (B,) seconds of speech, ``n_frames`` (B,) frames.

    Example:
        >>> m = RealTimeFactor()
        >>> m.update(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([50]))
        >>> m.update(torch.tensor([3.0]), torch.tensor([6.0]), torch.tensor([150]))
        >>> {k: v.item() for k, v in m.compute().items()}
        {'rtf': 0.5, 'fps': 50.0}
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {"rtf": False, "fps": True}
    _sum_states = ("wall", "audio", "frames")

    def update(self, total_s: Any, audio_s: Any, n_frames: Any) -> None:
        """Adds clips: (B,) wall seconds, audio seconds and frame counts."""
        self._add(_real_time_factor_update(total_s, audio_s, n_frames))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_real_time_factor_compute(*self._sums()))


class FirstFrameLatency(EvalMetric):
    """Seconds from request to first frame: ``mean`` and ``max`` over clips (lower is better).

    Inputs to ``update``: ``first_frame_s`` (B,) (``RenderResult.timings["first_frame"]``).

    Example:
        >>> {k: v.item() for k, v in FirstFrameLatency()(torch.tensor([0.25, 0.75])).items()}
        {'mean': 0.5, 'max': 0.75}
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {"mean": False, "max": False}
    _sum_states = ("total", "n")
    _max_states = ("worst",)

    def update(self, first_frame_s: Any) -> None:
        """Adds clips: (B,) first-frame latencies in seconds."""
        total, n, worst = _first_frame_latency_update(first_frame_s)
        self._add([total, n])
        self._raise_max("worst", worst)

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_first_frame_latency_compute(*self._sums(), float(self.worst)))
