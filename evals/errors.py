"""Exceptions of the eval package, below both :mod:`evals.functional` and :mod:`evals.metrics`,
(the CLIs print them with :mod:`avatar.entry_errors`).

Functional code raises them without importing the metric classes; :mod:`evals.metrics.base`
re-exports them for the metrics and suites.
"""

from __future__ import annotations

from avatar.errors import AvatarError

__all__ = ["MetricNotApplicable", "UnscorableClip"]


class MetricNotApplicable(AvatarError, ValueError):
    """The inputs cannot define this metric (e.g. retention with a single reference image)."""


class UnscorableClip(AvatarError, ValueError):
    """A clip cannot be scored at all: longer than the configured maximum, or no metric of the
    suite applies to it (the message names the limit's config key, or every metric's reason)."""
