"""Blink rate: blinks detected from eye openness per minute of video."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from evals.functional._clips import as_clips
from evals.functional.blink_rate import _blink_rate_compute, _blink_rate_update
from evals.metrics.base import EvalMetric

__all__ = ["BlinkRate"]


class BlinkRate(EvalMetric):
    """Blinks per minute, pooled over clips (total blinks / total minutes).

    Inputs to ``update``: ``eye_openness`` (B, T, 2) lid opening over eye width per frame and eye
    (NaN where no face) and ``fps`` (scalar or (B,)). Outputs: ``rate_per_min`` (relaxed
    conversation: about 10-20; no better direction) and ``count`` mean blinks per clip.

    Args:
        ratio: a closed frame is below this fraction of the clip's median openness, in (0, 1).
        noise_k: and this many robust standard deviations below the median (> 0).
        max_duration_s: longest closure counted as a blink, seconds (> 0).

    Example:
        >>> x = torch.full((2, 750, 2), 0.3); x[:, 100:103] = 0.05; x[1, 500:503] = 0.05
        >>> BlinkRate(ratio=0.6, noise_k=4.0, max_duration_s=1.0)(x, 25.0)["rate_per_min"].item()
        3.0
    """

    higher_is_better = None
    directions: ClassVar[dict[str, bool | None]] = {"rate_per_min": None, "count": None}
    _sum_states = ("blinks", "seconds", "n_clips")

    def __init__(
        self,
        *,
        ratio: float,
        noise_k: float,
        max_duration_s: float,
        **kwargs: Any,
    ) -> None:
        if not 0 < ratio < 1 or not noise_k > 0 or not max_duration_s > 0:
            raise ValueError(
                f"need 0 < ratio < 1, noise_k > 0, max_duration_s > 0; got {ratio}, {noise_k}, "
                f"{max_duration_s}"
            )
        super().__init__(**kwargs)
        self.kw = dict(ratio=ratio, noise_k=noise_k, max_duration_s=max_duration_s)

    def update(self, eye_openness: Any, fps: Any) -> None:
        """Adds clips: (B, T, 2) eye openness and their fps (not applicable to clips shorter
        than ``max_duration_s``, the longest blink)."""
        clips = as_clips(eye_openness, 2, "eye_openness", dtype=None)
        longest = float(self.kw["max_duration_s"])
        self._require_seconds(clips, fps, longest, "a blink rate")
        self._add(_blink_rate_update(eye_openness, fps, **self.kw))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_blink_rate_compute(*self._sums()))
