"""Notebook helpers for evals (notebooks/03-evals.ipynb): a results table that highlights
regressions, a score-any-video widget, the sync expert's distance at each A/V offset.

As in :mod:`avatar.widgets`, ipywidgets (the ``lab`` extra) is imported lazily and each widget is
a plain object holding its ipywidgets under ``.widget``, driven without a kernel in tests and
shown by ending a cell with it: ``ResultsTable(run_dir, baseline=baseline_dir)``,
``VideoScorer(suite_factory, ...)`` (``scorer.upload.value = (upload_item(path),)`` then
``scorer.button.click()`` does what picking a file and pressing Score do).
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evals.compare import compare, find_results, load_baseline
from evals.suite import Suite

__all__ = ["ResultsTable", "Row", "VideoScorer", "expert_distance_curve", "upload_item"]

REGRESSED_STYLE = "background:#f8d0d0"  # a regressed row
BETTER_STYLE = "color:#2a7a2a"  # a row that moved in the better direction (by any amount)
_NOT_METRICS = ("media", "face", "skipped")  # key prefixes of score_video's report, not metrics


def _ipywidgets() -> Any:
    import ipywidgets  # the lab extra: pip install -e '.[lab]'

    return ipywidgets


def _metric(key: str) -> str:
    """``group/metric`` of ``[<renderer>/]group/metric`` (how thresholds and directions key)."""
    return key.split("/", 1)[1] if key.count("/") >= 2 else key


def _number(value: Any, what: str) -> float | None:
    """``value`` as a float (None and NaN: None), or a ValueError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{what}: expected a number or None, got {value!r}")
    return float(value) if math.isfinite(value) else None


def _flat(metrics: Any, what: str) -> dict[str, float | None]:
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{what}: expected a mapping of metric values, got {type(metrics).__name__}"
        )
    return {str(k): _number(v, f"{what}[{k!r}]") for k, v in metrics.items()}


def _results(results: Any, what: str) -> dict[str, Any]:
    """A results mapping (``metrics``, optional ``directions`` and ``thresholds``) from a mapping,
    a ``results.json`` or a run directory holding one."""
    if isinstance(results, str | Path):
        path = find_results(results)  # BaselineNotFound (a FileNotFoundError) names the path
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{what}: {path} is not JSON ({exc})") from exc
    if not isinstance(results, Mapping):
        raise TypeError(
            f"{what}: expected a results mapping, a results.json or a run directory, "
            f"got {type(results).__name__}"
        )
    if not isinstance(results.get("metrics"), Mapping):
        raise ValueError(f"{what}: no 'metrics' mapping (keys: {sorted(results)})")
    return dict(results)


@dataclass(frozen=True)
class Row:
    """One metric of a :class:`ResultsTable`. ``status``: ``regressed`` (as
    :func:`evals.compare.compare` says), ``better``, ``worse`` (within tolerance or none),
    ``same``, ``changed`` (no better direction), ``undefined`` (NaN now), ``no baseline``,
    ``not in run`` (in the baseline only), or ``-`` (no baseline given)."""

    key: str
    value: float | None
    baseline: float | None
    change: float | None
    higher_is_better: bool | None
    threshold: float | str | None
    status: str


class ResultsTable:
    """Every metric of a run with its value, the baseline's, the change; regressions in red.

    Regressions are those :func:`evals.compare.compare` finds with the run's own thresholds and
    directions (in ``results.json``): what ``python -m evals.run baseline=...`` reports.

    Args:
        results: the run: a results mapping (``metrics``; ``directions``, ``thresholds``), its
            ``results.json`` or run directory.
        baseline: None, a flat ``{key: value}`` mapping, a results mapping, or a path as
            :func:`evals.compare.load_baseline` reads.
        thresholds: tolerance per ``group/metric`` (default: the results').
        directions: higher is better per ``group/metric`` (default: the results').

    Raises:
        TypeError, ValueError: not a mapping of numbers (the message names the argument, key).
        BaselineNotFound, BaselineFormatError: a path holds no results file of evals.run.
        ConfigValueError: a threshold names a metric with no direction.

    Example:
        >>> run = {"metrics": {"r/lipsync/x": 0.5}, "directions": {"lipsync/x": True}}
        >>> table = ResultsTable(run | {"thresholds": {"lipsync/x": 0.1}}, {"r/lipsync/x": 0.8})
        >>> table.regressions, table.rows[0].status, table.rows[0].change
        (['r/lipsync/x'], 'regressed', -0.30000000000000004)
    """

    def __init__(
        self,
        results: Mapping[str, Any] | str | Path,
        baseline: Mapping[str, Any] | str | Path | None = None,
        *,
        thresholds: Mapping[str, float | str] | None = None,
        directions: Mapping[str, bool | None] | None = None,
    ) -> None:
        data = _results(results, "results")
        self.metrics = _flat(data["metrics"], "results['metrics']")
        self.thresholds = dict(data.get("thresholds") or {} if thresholds is None else thresholds)
        self.directions = dict(data.get("directions") or {} if directions is None else directions)
        self.baseline = self._baseline(baseline)
        self.regressions: list[str] = []
        if self.baseline is not None:
            found = compare(self.metrics, self.baseline, self.thresholds, self.directions)
            self.regressions = [r.key for r in found]
        self.rows = self._rows()
        self.filter_name = "all"
        self._widget: Any = None

    @staticmethod
    def _baseline(baseline: Any) -> dict[str, float | None] | None:
        if baseline is None:
            return None
        if isinstance(baseline, str | Path):
            return load_baseline(baseline)
        if isinstance(baseline, Mapping) and isinstance(baseline.get("metrics"), Mapping):
            return _flat(baseline["metrics"], "baseline['metrics']")
        return _flat(baseline, "baseline")

    def _status(self, key: str, value: float | None, base: float | None) -> str:
        if self.baseline is None:
            return "-"
        if key in self.regressions:
            return "regressed"
        if key not in self.metrics:
            return "not in run"
        if base is None:
            return "no baseline"
        if value is None:
            return "undefined"
        if value == base:
            return "same"
        higher = self.directions.get(_metric(key))
        if higher is None:
            return "changed"
        return "better" if (value > base) == bool(higher) else "worse"

    def _rows(self) -> list[Row]:
        keys = sorted(set(self.metrics) | set(self.baseline or {}))
        out = []
        for key in keys:
            value = self.metrics.get(key)
            base = None if self.baseline is None else self.baseline.get(key)
            change = None if value is None or base is None else value - base
            metric, status = _metric(key), self._status(key, value, base)
            higher, threshold = self.directions.get(metric), self.thresholds.get(metric)
            out.append(Row(key, value, base, change, higher, threshold, status))
        return out

    FILTERS: dict[str, Callable[[Row], bool]] = {
        "all": lambda row: True,
        "regressed": lambda row: row.status == "regressed",
        "changed": lambda row: row.change not in (None, 0.0) or row.status == "regressed",
    }  # the widget's toggle

    def shown(self, name: str | None = None) -> list[Row]:
        """The rows the filter ``name`` keeps (default: the widget's current filter)."""
        name = name or self.filter_name
        if name not in self.FILTERS:
            raise ValueError(f"filter must be one of {sorted(self.FILTERS)}, got {name!r}")
        return [row for row in self.rows if self.FILTERS[name](row)]

    def html(self, name: str | None = None) -> str:
        """The table as HTML (regressed rows on :data:`REGRESSED_STYLE`)."""
        fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
        arrow = {True: "↑", False: "↓", None: ""}
        head = "<tr><th>metric</th><th>value</th><th>baseline</th><th>change</th>"
        head += "<th>better</th><th>threshold</th><th>status</th></tr>"
        body = []
        for row in self.shown(name):
            style = {"regressed": REGRESSED_STYLE, "better": BETTER_STYLE}.get(row.status, "")
            sign = "" if row.change is None or row.change < 0 else "+"
            cells = [html.escape(row.key), fmt(row.value), fmt(row.baseline)]
            threshold = "" if row.threshold is None else html.escape(str(row.threshold))
            cells += [f"{sign}{fmt(row.change)}", arrow.get(row.higher_is_better, "")]
            tds = "".join(f"<td>{c}</td>" for c in [*cells, threshold, html.escape(row.status)])
            body.append(f"<tr style='{style}' data-status='{html.escape(row.status)}'>{tds}</tr>")
        n = len(self.regressions)
        caption = "no baseline" if self.baseline is None else f"{n} regression{'s' * (n != 1)}"
        return (
            "<table style='font-family:monospace;border-collapse:collapse'>"
            f"<caption style='text-align:left'>{caption}</caption>{head}{''.join(body)}</table>"
        )

    @property
    def widget(self) -> Any:
        """A toggle (all / regressed / changed) over the HTML table (built on first use)."""
        if self._widget is None:
            w = _ipywidgets()
            self.toggle = w.ToggleButtons(options=list(self.FILTERS), value=self.filter_name)
            self.view = w.HTML(self.html())

            self.toggle.observe(lambda change: self._refilter(change["new"]), names="value")
            self._widget = w.VBox([self.toggle, self.view])
        return self._widget

    def _refilter(self, name: str) -> None:
        self.filter_name = name
        self.view.value = self.html()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def upload_item(path: str | Path) -> dict[str, Any]:
    """A file as one entry of ``FileUpload.value`` (what the browser sends when it is picked)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"upload_item: no file {path}")
    data = path.read_bytes()
    return {
        "name": path.name,
        "type": "video/mp4" if path.suffix.lower() == ".mp4" else "",
        "size": len(data),
        "content": memoryview(data),
        "last_modified": datetime.now(UTC),
    }


class VideoScorer:
    """Upload a video, press Score: every metric of the suite that applies, as a table
    (:func:`evals.score.score_video`, as ``python -m evals.score video=...`` scores).

    Args:
        suite_factory: makes a fresh :class:`~evals.suite.Suite` per video.
        feature_options: the eval config's ``features`` (floor_db, min_confidence, mask_margin).
        max_seconds: longest video scored, seconds (``score.max_seconds``).
        references: the companion's reference images, (H, W, 3) uint8 each (identity metrics).
        baseline: scores to compare with (a flat mapping, e.g. a clip row of a run's results).
        thresholds: tolerances per ``group/metric`` for the comparison.
        upload_dir: where uploaded videos are written (a temporary folder by default).
    """

    def __init__(
        self,
        suite_factory: Callable[[], Suite],
        *,
        feature_options: Mapping[str, Any],
        max_seconds: float,
        references: list[np.ndarray] | None = None,
        baseline: Mapping[str, Any] | None = None,
        thresholds: Mapping[str, float | str] | None = None,
        upload_dir: str | Path | None = None,
    ) -> None:
        if not callable(suite_factory):
            raise TypeError(f"suite_factory must make a Suite, got {type(suite_factory).__name__}")
        w = _ipywidgets()
        self.suite_factory = suite_factory
        self.feature_options = dict(feature_options)
        self.max_seconds = float(max_seconds)
        self.references = list(references or [])
        self.baseline = baseline
        self.thresholds = dict(thresholds or {})
        self.upload_dir = Path(upload_dir or Path(tempfile.gettempdir()) / "avatar-uploads")
        self.scores: dict[str, Any] | None = None  # the last video's report and table
        self.table: ResultsTable | None = None
        self.upload = w.FileUpload(accept="video/*", multiple=False, description="a video")
        self.button = w.Button(description="Score", button_style="primary", icon="check")
        self.status = w.HTML()
        self.output = w.Output()
        self.button.on_click(lambda _: self.score())
        self.widget = w.VBox([w.HBox([self.upload, self.button]), self.status, self.output])

    def _uploaded(self) -> Path:
        if not self.upload.value:
            raise ValueError("no video uploaded: pick one with the upload button first")
        item = self.upload.value[0]
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        path = self.upload_dir / Path(str(item.get("name") or "upload.mp4")).name
        path.write_bytes(bytes(item["content"]))
        return path

    def score(self) -> dict[str, Any] | None:
        """Scores the uploaded video; shows the table (or the error, one line) in the widget."""
        from IPython.display import HTML, display

        from avatar.errors import AvatarError
        from avatar.quiet import quiet_native_logs
        from evals.score import score_video

        self.button.disabled = True
        self.status.value = "scoring..."
        try:
            path = self._uploaded()
            suite = self.suite_factory()
            with quiet_native_logs():  # MediaPipe's INFO/WARNING lines
                scores = score_video(
                    path,
                    suite,
                    references=self.references,
                    feature_options=self.feature_options,
                    max_seconds=self.max_seconds,
                )
            metrics = {k: v for k, v in scores.items() if k.split("/")[0] not in _NOT_METRICS}
            run = {"metrics": metrics, "directions": suite.directions()}
            table = ResultsTable(run | {"thresholds": self.thresholds}, self.baseline)
        except (AvatarError, ValueError, OSError) as exc:  # shown; the notebook keeps running
            error = html.escape(f"{type(exc).__name__}: {exc}")
            self.status.value = f"<span style='color:#b00'>{error}</span>"
            return None
        finally:
            self.button.disabled = False
        self.scores, self.table = scores, table
        skipped = scores["skipped"]
        self.status.value = (
            f"<b>{html.escape(path.name)}</b>: {scores['media/n_video_frames']} frames at "
            f"{scores['media/fps']:g} fps, face in {scores['face/detection_rate']:.0%} of them; "
            f"{len(metrics)} values, {len(skipped)} metrics skipped"
        )
        self.output.clear_output()
        with self.output:
            display(HTML(table.html()))
            items = [f"<li>{html.escape(f'{k}: {v}')}</li>" for k, v in skipped.items()]
            display(HTML(f"<ul>{''.join(items)}</ul>"))
        return scores

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def expert_distance_curve(
    frames: np.ndarray,
    landmarks: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    *,
    model: Any = None,
    max_offset: int = 15,
) -> tuple[np.ndarray, np.ndarray]:
    """The sync expert's mean distance at each A/V offset of one clip: the curve whose minimum
    :class:`~evals.metrics.SyncExpertScore` reports as ``offset``, its value at 0 ``dist_at_0``.
    It holds the (N, N) window similarities: for clips of a few minutes at most.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames at 25 fps.
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        audio: (S,) mono in [-1, 1] from frame 0.
        sample_rate: Hz of ``audio``.
        model: the expert (None: :func:`evals.functional.sync_expert.load_sync_expert`).
        max_offset: K, frames searched each way (fewer when the clip is short).

    Returns:
        (offsets, distances): (2K + 1,) offsets in frames, ascending, > 0 where the video lags the
        audio (the metric's sign), and the mean cosine distance there, in [0, 2].

    Raises:
        ValueError: no frame has a face, the clip is under 7 frames, or lengths differ.
    """
    from avatar.modules.sync_expert import offset_distances
    from evals.functional.sync_expert import audio_embeddings, load_sync_expert, video_embeddings

    model = model if model is not None else load_sync_expert()
    if len(frames) != len(landmarks):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark rows")
    if len(landmarks) < model.window + 2:
        raise ValueError(f"clip too short for the sync expert: {len(landmarks)} frames (needs 7)")
    video = video_embeddings(frames, landmarks, model)
    if video is None:
        raise ValueError("no frame has a face: the sync expert needs the mouth")
    sound = audio_embeddings(audio, sample_rate, len(landmarks), model)
    k = min(max_offset, len(video) // 2)
    d = offset_distances(video, sound, k).numpy()  # index K + o: video i vs audio i + o
    # the metric's offset is -o (a video lagging by k frames has its minimum at o = -k)
    return np.arange(-k, k + 1), d[::-1].copy()
