"""Frechet distance between the Gaussian fits of a reference and a test feature distribution."""

from __future__ import annotations

from typing import Any

import torch

from evals.functional._clips import as_numpy
from evals.functional.frechet import _frechet_compute, _frechet_update
from evals.metrics.base import EvalMetric

__all__ = ["FrechetDistance"]


class FrechetDistance(EvalMetric):
    """Squared Frechet distance between Gaussian fits of two feature sets (FID's formula).

    States are the sufficient statistics (sum, sum of outer products, count) of each set, so
    memory does not grow with the number of samples and batches merge exactly.

    Inputs to ``update``: ``features`` (N, D) finite float features and ``reference``: True for
    the reference distribution (e.g. real videos or a baseline run), False for the one tested.
    Output: d^2 >= 0 in squared feature units (lower is better; NaN with < 2 samples a side).

    Args:
        num_features: D, the feature size (>= 1).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = FrechetDistance(num_features=2)
        >>> m.update(torch.randn(4000, 2, generator=g), reference=True)
        >>> m.update(torch.randn(4000, 2, generator=g) + torch.tensor([3.0, 0.0]), reference=False)
        >>> round(m.compute().item())  # |mu_1 - mu_2|^2 = 9 for equal covariances
        9
    """

    higher_is_better = False

    def __init__(self, *, num_features: int, **kwargs: Any) -> None:
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        super().__init__(**kwargs)
        self.num_features = num_features
        d, f64 = num_features, torch.float64
        for side in ("ref", "test"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=f64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=f64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.tensor(0.0, dtype=f64), dist_reduce_fx="sum")

    def update(self, features: Any, reference: bool) -> None:
        """Adds (N, D) features to the reference (True) or tested (False) set."""
        x = as_numpy(features)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"features must be (N, {self.num_features}), got {x.shape}")
        s, o, n = _frechet_update(x)
        side = "ref" if reference else "test"
        getattr(self, f"{side}_sum").add_(torch.from_numpy(s))
        getattr(self, f"{side}_outer").add_(torch.from_numpy(o))
        getattr(self, f"{side}_n").add_(n)

    def compute(self) -> torch.Tensor:
        stats = [
            as_numpy(getattr(self, f"{side}_{k}"))
            for side in ("ref", "test")
            for k in ("sum", "outer", "n")
        ]
        return torch.tensor(
            _frechet_compute(*stats[:2], float(stats[2]), *stats[3:5], float(stats[5])),
            dtype=torch.float64,
        )
