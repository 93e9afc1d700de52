"""evals.notebook: the results table marks regressions as evals.compare does, the video scorer
scores an upload, and the sync expert's distance curve has the metric's sign and minimum."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avatar.errors import ConfigValueError
from evals.compare import BaselineNotFound, compare
from evals.notebook import REGRESSED_STYLE, ResultsTable, expert_distance_curve, upload_item

DIRECTIONS = {"lipsync/av_offset_abs": False, "lipsync/av_confidence": True, "speed/fps": True}
DIRECTIONS |= {"lipsync/av_offset": None}
THRESHOLDS = {"lipsync/av_offset_abs": 1.0, "lipsync/av_confidence": "10%"}


def _results(**metrics: float | None) -> dict:
    flat = {f"mw/{k.replace('__', '/')}": v for k, v in metrics.items()}
    return {"metrics": flat, "directions": DIRECTIONS, "thresholds": THRESHOLDS}


def _status(table: ResultsTable) -> dict[str, str]:
    return {row.key: row.status for row in table.rows}


def test_a_worse_metric_past_its_threshold_regresses_and_a_better_or_equal_one_does_not():
    base = _results(lipsync__av_offset_abs=0.0, lipsync__av_confidence=0.5, speed__fps=20.0)
    run = _results(lipsync__av_offset_abs=5.0, lipsync__av_confidence=0.5, speed__fps=30.0)
    table = ResultsTable(run, base)
    assert table.regressions == ["mw/lipsync/av_offset_abs"]
    assert _status(table) == {
        "mw/lipsync/av_offset_abs": "regressed",
        "mw/lipsync/av_confidence": "same",
        "mw/speed/fps": "better",
    }
    row = next(r for r in table.rows if r.key == "mw/lipsync/av_offset_abs")
    assert (row.value, row.baseline, row.change) == (5.0, 0.0, 5.0)
    assert row.higher_is_better is False and row.threshold == 1.0
    # the same regressions as the runner's comparison
    assert table.regressions == [
        r.key for r in compare(run["metrics"], base["metrics"], THRESHOLDS, DIRECTIONS)
    ]
    html = table.html()
    (red,) = [line for line in html.split("<tr")[1:] if REGRESSED_STYLE in line]
    assert "mw/lipsync/av_offset_abs" in red and "+5" in red
    assert "1 regression<" in html


def test_worse_within_the_tolerance_and_without_a_threshold_is_not_a_regression():
    base = _results(lipsync__av_offset_abs=1.0, lipsync__av_confidence=0.5, speed__fps=30.0)
    run = _results(lipsync__av_offset_abs=2.0, lipsync__av_confidence=0.46, speed__fps=10.0)
    table = ResultsTable(run, base)
    assert table.regressions == []
    assert set(_status(table).values()) == {"worse"}
    assert REGRESSED_STYLE not in table.html() and "0 regressions" in table.html()
    # a relative threshold: 10% of 0.5 is 0.05, so 0.44 is past it
    worse = ResultsTable(_results(lipsync__av_confidence=0.44), base)
    assert worse.regressions == ["mw/lipsync/av_confidence"]


def test_metrics_missing_from_the_baseline_or_the_run():
    base = {"mw/lipsync/av_confidence": 0.5, "mw/speed/fps": None, "mw/old/metric": 1.0}
    run = _results(lipsync__av_offset_abs=9.0, lipsync__av_confidence=0.6, speed__fps=30.0)
    table = ResultsTable(run, base)
    assert table.regressions == []  # nothing to regress from
    assert _status(table) == {
        "mw/lipsync/av_offset_abs": "no baseline",
        "mw/lipsync/av_confidence": "better",
        "mw/speed/fps": "no baseline",
        "mw/old/metric": "not in run",
    }
    old = next(r for r in table.rows if r.key == "mw/old/metric")
    assert old.value is None and old.change is None
    # a value that became undefined where the baseline had one regresses (compare's rule)
    gone = ResultsTable(_results(lipsync__av_offset_abs=None), _results(lipsync__av_offset_abs=0))
    assert gone.regressions == ["mw/lipsync/av_offset_abs"]


def test_no_baseline_lists_the_values_only():
    table = ResultsTable(_results(lipsync__av_offset=-2.0, speed__fps=float("nan")))
    assert table.regressions == [] and {r.status for r in table.rows} == {"-"}
    assert [r.value for r in table.rows] == [-2.0, None]  # NaN: undefined
    assert "no baseline" in table.html()


def test_reads_results_files_and_run_directories(tmp_path: Path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "results.json").write_text(json.dumps(_results(lipsync__av_offset_abs=0)))
    (tmp_path / "run.json").write_text(json.dumps(_results(lipsync__av_offset_abs=3)))
    table = ResultsTable(tmp_path / "run.json", baseline=tmp_path / "base")
    assert table.regressions == ["mw/lipsync/av_offset_abs"]
    assert table.thresholds == THRESHOLDS  # the run's own


@pytest.mark.parametrize(
    ("results", "baseline", "error", "message"),
    [
        ([1, 2], None, TypeError, "results: expected a results mapping"),
        ({"clips": []}, None, ValueError, "results: no 'metrics' mapping"),
        ({"metrics": {"a/b": "high"}}, None, ValueError, r"results\['metrics'\]\['a/b'\]"),
        (_results(speed__fps=1.0), {"mw/speed/fps": "fast"}, ValueError, r"baseline\['mw/speed"),
        (_results(speed__fps=1.0), {"metrics": {"x/y": [1]}}, ValueError, r"baseline\['metrics'\]"),
        (_results(speed__fps=1.0), 3.0, TypeError, "baseline: expected a mapping"),
        (_results(speed__fps=1.0), "/nonexistent/run", BaselineNotFound, "no results.json"),
        (
            {"metrics": {}, "thresholds": {"lipsync/av_offset": 1}, "directions": DIRECTIONS},
            {},
            ConfigValueError,
            "no better direction",
        ),
    ],
)
def test_bad_input_raises_naming_the_problem(results, baseline, error, message):
    with pytest.raises(error, match=message):
        ResultsTable(results, baseline)


def test_the_widget_filters_its_rows():
    pytest.importorskip("ipywidgets")
    base = _results(lipsync__av_offset_abs=0.0, lipsync__av_confidence=0.5, speed__fps=20.0)
    table = ResultsTable(_results(lipsync__av_offset_abs=4.0, lipsync__av_confidence=0.5), base)
    with pytest.raises(ValueError, match="filter must be one of"):
        table.shown("bad")
    assert "mw/speed/fps" in table.widget.children[1].value  # all rows first
    table.toggle.value = "regressed"
    view = table.view.value
    assert "mw/lipsync/av_offset_abs" in view and "av_confidence" not in view
    table.toggle.value = "changed"
    assert "av_confidence" not in table.view.value and "speed/fps" not in table.view.value
    assert "application/vnd.jupyter.widget-view+json" in table._repr_mimebundle_()


def test_video_scorer_scores_an_upload_and_reports_errors(tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    import evals.score
    from evals.metrics import MouthMotion
    from evals.notebook import VideoScorer
    from evals.suite import Suite

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    seen = []

    def fake_score_video(path, suite, **kwargs):
        seen.append((Path(path).read_bytes(), kwargs["max_seconds"]))
        media = {"media/n_video_frames": 50, "media/fps": 25.0, "face/detection_rate": 1.0}
        return media | {"lipsync/motion_contrast": 0.01, "skipped": {"speed/x": "skipped: why"}}

    monkeypatch.setattr(evals.score, "score_video", fake_score_video)
    motion = lambda: Suite({"lipsync": {"motion": MouthMotion(silence_db=-35, floor_db=-60)}})  # noqa: E731
    scorer = VideoScorer(
        motion,
        feature_options={},
        max_seconds=10,
        baseline={"lipsync/motion_contrast": 0.1},
        thresholds={"lipsync/motion_contrast": 0.03},
        upload_dir=tmp_path / "uploads",
    )
    assert scorer.upload.accept == "video/*"
    scorer.button.click()
    assert "no video uploaded" in scorer.status.value and scorer.scores is None
    scorer.upload.value = (upload_item(clip),)
    scorer.button.click()
    assert seen == [(b"not really a video", 10.0)]
    assert (tmp_path / "uploads" / "clip.mp4").is_file()
    assert scorer.table is not None
    assert scorer.table.regressions == ["lipsync/motion_contrast"]  # higher is better
    assert "50 frames" in scorer.status.value and "1 metrics skipped" in scorer.status.value
    with pytest.raises(TypeError, match="suite_factory"):
        VideoScorer(None, feature_options={}, max_seconds=1)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no file"):
        upload_item(tmp_path / "absent.mp4")


def test_distance_curve_has_the_metrics_sign(monkeypatch):
    """A video lagging its audio by 3 frames: the curve's minimum is at +3 (the metric's sign)."""
    import evals.functional.sync_expert as se

    emb = torch.nn.functional.normalize(
        torch.randn(60, 8, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    monkeypatch.setattr(se, "video_embeddings", lambda f, lm, m: emb[:-3])
    monkeypatch.setattr(se, "audio_embeddings", lambda a, r, n, m: emb[3:])
    model = SimpleNamespace(window=5)
    n = 57 + 4  # frames for 57 five-frame windows
    frames, landmarks = np.zeros((n, 4, 4, 3), np.uint8), np.zeros((n, 478, 3))
    offsets, dist = expert_distance_curve(frames, landmarks, np.zeros(100), 16000, model=model)
    assert offsets.tolist() == list(range(-15, 16)) and dist.shape == (31,)
    assert offsets[dist.argmin()] == 3
    with pytest.raises(ValueError, match="too short"):
        expert_distance_curve(frames[:6], landmarks[:6], np.zeros(1), 16000, model=model)
    with pytest.raises(ValueError, match="frames but"):
        expert_distance_curve(frames, landmarks[:-1], np.zeros(1), 16000, model=model)
    monkeypatch.setattr(se, "video_embeddings", lambda f, lm, m: None)
    with pytest.raises(ValueError, match="no frame has a face"):
        expert_distance_curve(frames, landmarks, np.zeros(1), 16000, model=model)


def test_distance_curve_agrees_with_the_metric_on_a_rendered_clip(speech_clip):
    from evals.functional.sync_expert import expert_scores, load_sync_expert
    from evals.landmarks import track_video

    model = load_sync_expert()
    landmarks = track_video(speech_clip.frames, speech_clip.fps).landmarks
    args = (speech_clip.frames, landmarks, speech_clip.audio, speech_clip.sample_rate)
    offsets, dist = expert_distance_curve(*args, model=model)
    scores = expert_scores(*args, model)
    assert scores is not None
    assert offsets[dist.argmin()] == scores["offset"]
    assert dist.min() == pytest.approx(scores["distance"], abs=1e-5)
    assert dist[offsets == 0][0] == pytest.approx(scores["dist_at_0"], abs=1e-5)
