"""A suite: metric groups fed by name from each clip's features, per-clip and aggregate values.

Why not ``torchmetrics.MetricCollection``: several metrics return dicts, which a collection
flattens without the metric's name, and a metric may not apply to a clip (no reference image,
no timings, weights absent); the suite records why instead of failing. Keys are flat:
``<group>/<name>`` for a scalar metric, ``<group>/<name>_<output>`` for each output of a dict
metric (e.g. ``lipsync/av_offset_abs``).
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from avatar.errors import WeightsMissingError
from evals.metrics.base import EvalMetric, MetricNotApplicable

log = logging.getLogger(__name__)

__all__ = ["Suite"]


class Suite:
    """Metric groups scored one clip at a time.

    Args:
        groups: ``{group: {name: metric}}``, e.g. ``{"lipsync": {"av": LipSyncOffset(...)}}``.

    Example:
        >>> from evals.metrics import MouthMotion
        >>> suite = Suite({"lipsync": {"motion": MouthMotion(silence_db=-35.0, floor_db=-60.0)}})
        >>> values, skipped = suite.score_clip(
        ...     {"aperture": torch.tensor([[0.25, 0.0]]), "envelope": torch.tensor([[1.0, 0.0]])})
        >>> values["lipsync/motion_contrast"], skipped
        (0.25, {})
    """

    def __init__(self, groups: Mapping[str, Mapping[str, EvalMetric]]) -> None:
        self.groups = {g: dict(ms) for g, ms in groups.items()}
        for key, metric in self._items():
            if not isinstance(metric, EvalMetric):
                raise TypeError(f"{key}: expected an EvalMetric, got {type(metric).__name__}")
        self._workers = {key: metric.clone() for key, metric in self._items()}
        self._merged: Counter[str] = Counter()
        self._reasons: dict[str, str] = {}

    def _items(self) -> Iterator[tuple[str, EvalMetric]]:
        for group, metrics in self.groups.items():
            for name, metric in metrics.items():
                yield f"{group}/{name}", metric

    def keys(self) -> list[str]:
        """``<group>/<name>`` of every metric."""
        return [key for key, _ in self._items()]

    def directions(self) -> dict[str, bool | None]:
        """Output key -> higher is better (None: no direction), for every key the suite makes."""
        out: dict[str, bool | None] = {}
        for key, metric in self._items():
            if metric.directions:
                out.update({f"{key}_{k}": d for k, d in metric.directions.items()})
            else:
                out[key] = metric.higher_is_better
        return out

    @staticmethod
    def _flatten(key: str, value: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[str, float]:
        if isinstance(value, Mapping):
            return {f"{key}_{k}": float(v) for k, v in value.items()}
        return {key: float(value)}

    @staticmethod
    def _select(metric: EvalMetric, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The metric's ``update`` arguments found in ``inputs`` and the required ones missing."""
        kwargs, missing = {}, []
        for name, param in inspect.signature(metric.update).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if inputs.get(name) is not None:
                kwargs[name] = inputs[name]
            elif param.default is inspect.Parameter.empty:
                missing.append(name)
        return kwargs, missing

    def score_clip(
        self, inputs: Mapping[str, Any], reasons: Mapping[str, str] | None = None
    ) -> tuple[dict[str, float], dict[str, str]]:
        """Scores one clip (or batch) and adds it to the aggregates.

        Args:
            inputs: metric inputs by ``update`` argument name (:meth:`ClipFeatures.inputs`).
            reasons: why some inputs are absent (:meth:`ClipFeatures.missing`, e.g. ``audio``:
                "no audio track in clip.mp4"); a metric needing one is skipped with that reason.

        Returns:
            (values of this clip by key, ``{metric key: "skipped: reason"}`` for metrics that do
            not apply to it).
        """
        values: dict[str, float] = {}
        skipped: dict[str, str] = {}
        reasons = reasons or {}
        for key, metric in self._items():
            kwargs, missing = self._select(metric, inputs)
            if missing:
                known = [reasons[name] for name in missing if name in reasons]
                skipped[key] = f"skipped: {known[0] if known else 'needs ' + ', '.join(missing)}"
                continue
            worker = self._workers[key]
            worker.reset()
            try:
                worker.update(**kwargs)
            except (MetricNotApplicable, WeightsMissingError) as exc:
                skipped[key] = f"skipped: {exc}"
                continue
            values.update(self._flatten(key, worker.compute()))
            metric.merge_state(worker)
            self._merged[key] += 1
        for key, reason in skipped.items():
            self._reasons[key] = reason
            log.debug("%s %s", key, reason)
        return values, skipped

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """(aggregate values by key over every clip scored, skip reasons of unscored metrics)."""
        values: dict[str, float] = {}
        skipped: dict[str, str] = {}
        for key, metric in self._items():
            if not self._merged[key]:
                skipped[key] = self._reasons.get(key, "skipped: no clip scored")
                continue
            with warnings.catch_warnings():  # merged states count no update() calls
                warnings.filterwarnings("ignore", message=".*was called before the ``update``")
                values.update(self._flatten(key, metric.compute()))
        return values, skipped

    def reset(self) -> None:
        """Forgets every clip."""
        for _, metric in self._items():
            metric.reset()
        self._merged.clear()
        self._reasons.clear()
