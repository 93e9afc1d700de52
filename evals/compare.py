"""Comparison with a baseline run: which metrics regressed beyond their configured thresholds.

A baseline is a previous ``results.json`` written by :mod:`evals.run`, a directory holding one
(a Hydra run directory), or a W&B run directory (``wandb/offline-run-*`` or ``wandb/run-*``,
whose ``files/results.json`` the runner saves). Thresholds are tolerances per metric key
(without the renderer prefix): a number is an absolute tolerance in the metric's units, a string
``"N%"`` a relative one of the baseline value. The direction comes from the metric
(``higher_is_better`` / ``directions``): a regression is a move in the worse direction by more
than the tolerance, or a value that became undefined (NaN) where the baseline had one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avatar.errors import AvatarError, ConfigValueError

log = logging.getLogger(__name__)

__all__ = [
    "BaselineFormatError",
    "BaselineNotFound",
    "Regression",
    "RegressionError",
    "compare",
    "find_results",
    "load_baseline",
]


_MAX_RESULTS_BYTES = 256 << 20  # results files of many clips are a few MiB


class RegressionError(AvatarError):
    """At least one metric regressed past its threshold against the baseline."""


class BaselineNotFound(AvatarError, FileNotFoundError):
    """``baseline=`` names no results file, run directory holding one, or W&B run directory."""


class BaselineFormatError(AvatarError, ValueError):
    """``baseline=`` names a file that is not a ``results.json`` of :mod:`evals.run`."""


@dataclass
class Regression:
    """One metric that got worse than the baseline allows."""

    key: str
    baseline: float
    current: float | None
    tolerance: float
    higher_is_better: bool

    def __str__(self) -> str:
        arrow = "higher" if self.higher_is_better else "lower"
        return (
            f"{self.key}: {self.current} vs baseline {self.baseline} "
            f"(tolerance {self.tolerance:g}, {arrow} is better)"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_results(path: str | Path) -> Path:
    """The ``results.json`` of a baseline given as a file, a run directory or a W&B run dir.

    Raises:
        BaselineNotFound: none there (a ``FileNotFoundError``).
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p
    for candidate in (
        p / "results.json",
        p / "files" / "results.json",
        p / "wandb" / "latest-run" / "files" / "results.json",
    ):
        if candidate.is_file():
            return candidate
    raise BaselineNotFound(
        f"baseline={path}: no results.json at {p} (nor in its files/ or wandb/latest-run/); "
        "give a results.json of an earlier evals.run or its run directory"
    )


def load_baseline(path: str | Path) -> dict[str, float | None]:
    """Flat ``{key: value}`` metrics of a baseline (see the module docstring for ``path``).

    Raises:
        BaselineNotFound: no results file there (a ``FileNotFoundError``).
        BaselineFormatError: the file is not a results file of :mod:`evals.run` (a
            ``ValueError``).
    """
    found = find_results(path)
    hint = "not a results file of evals.run"
    if found.stat().st_size > _MAX_RESULTS_BYTES:
        raise BaselineFormatError(
            f"baseline={path}: {found} is {found.stat().st_size >> 20} MiB, more than any "
            f"results file: {hint}"
        )
    try:
        data = json.loads(found.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineFormatError(f"baseline={path}: {found} is not JSON ({exc}): {hint}") from exc
    except OSError as exc:
        raise BaselineNotFound(f"baseline={path}: cannot read {found} ({exc})") from exc
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise BaselineFormatError(f"baseline={path}: {found} has no 'metrics' mapping: {hint}")
    try:
        values = {str(k): (None if v is None else float(v)) for k, v in metrics.items()}
    except (TypeError, ValueError) as exc:
        raise BaselineFormatError(
            f"baseline={path}: {found} has a non-numeric metric ({exc}): {hint}"
        ) from exc
    log.info("baseline: %s (%d metrics)", found, len(values))
    return values


def _tolerance(spec: float | int | str, baseline: float, key: str) -> float:
    if isinstance(spec, str):
        text = spec.strip()
        if not text.endswith("%"):
            raise ConfigValueError(f"threshold {key}: {spec!r} is neither a number nor 'N%'")
        return abs(baseline) * float(text[:-1]) / 100.0
    if not spec >= 0:
        raise ConfigValueError(f"threshold {key} must be >= 0, got {spec}")
    return float(spec)


def compare(
    current: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    thresholds: Mapping[str, float | int | str],
    directions: Mapping[str, bool | None],
) -> list[Regression]:
    """Regressions of ``current`` against ``baseline``.

    Args:
        current: flat metrics of this run, keys ``[<renderer>/]<group>/<metric>``.
        baseline: flat metrics of the baseline, same keys.
        thresholds: tolerance per metric key without the renderer prefix (``group/metric``).
        directions: higher-is-better per ``group/metric`` (None: no direction).

    Returns:
        The regressions, in key order (metrics missing from the baseline are not compared).

    Raises:
        ConfigValueError: a threshold names a metric with no direction or no known key.

    Example:
        >>> compare({"r/lipsync/x": 0.5}, {"r/lipsync/x": 0.8}, {"lipsync/x": 0.1},
        ...         {"lipsync/x": True})[0].key
        'r/lipsync/x'
    """
    for key in thresholds:
        if key not in directions:
            known = sorted(directions)
            raise ConfigValueError(f"threshold for unknown metric {key!r}; known: {known}")
        if directions[key] is None:
            raise ConfigValueError(f"threshold for {key!r}, which has no better direction")
    out = []
    for key in sorted(current):
        metric = key.split("/", 1)[1] if key.count("/") >= 2 else key
        if metric not in thresholds or baseline.get(key) is None:
            continue
        base = float(baseline[key])  # type: ignore[arg-type]
        if not math.isfinite(base):
            continue
        higher = bool(directions[metric])
        tol = _tolerance(thresholds[metric], base, metric)
        value = current[key]
        worse = (
            value is None
            or not math.isfinite(value)
            or (value < base - tol if higher else value > base + tol)
        )
        if worse:
            out.append(Regression(key, base, value, tol, higher))
    return out
