"""Exceptions of the eval package, below both :mod:`evals.functional` and :mod:`evals.metrics`.

Functional code raises them without importing the metric classes; :mod:`evals.metrics.base`
re-exports them for the metrics and suites.
"""

from __future__ import annotations

from avatar.errors import AvatarError

__all__ = ["MetricNotApplicable"]


class MetricNotApplicable(AvatarError, ValueError):
    """The inputs cannot define this metric (e.g. retention with a single reference image)."""
