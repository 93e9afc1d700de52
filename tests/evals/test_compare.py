"""Baseline comparison: direction, absolute and relative tolerances, NaN, baseline locations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avatar.errors import ConfigValueError
from evals.compare import compare, load_baseline

DIRS = {
    "lipsync/av_confidence": True,
    "lipsync/av_offset_abs": False,
    "speed/rtf": False,
    "stability/blink_rate": None,
}


def test_regressions_follow_the_metric_direction() -> None:
    base = {"r/lipsync/av_confidence": 0.5, "r/lipsync/av_offset_abs": 0.5, "r/speed/rtf": 0.2}
    th = {"lipsync/av_confidence": 0.1, "lipsync/av_offset_abs": 1.0, "speed/rtf": "50%"}
    assert compare(base, base, th, DIRS) == []
    better = {"r/lipsync/av_confidence": 0.9, "r/lipsync/av_offset_abs": 0.0, "r/speed/rtf": 0.1}
    assert compare(better, base, th, DIRS) == []
    within = {"r/lipsync/av_confidence": 0.41, "r/lipsync/av_offset_abs": 1.4, "r/speed/rtf": 0.29}
    assert compare(within, base, th, DIRS) == []
    worse = {"r/lipsync/av_confidence": 0.3, "r/lipsync/av_offset_abs": 2.0, "r/speed/rtf": 0.31}
    regs = compare(worse, base, th, DIRS)
    assert [r.key for r in regs] == [
        "r/lipsync/av_confidence",
        "r/lipsync/av_offset_abs",
        "r/speed/rtf",
    ]
    assert regs[2].tolerance == pytest.approx(0.1) and "lower is better" in str(regs[2])


def test_undefined_values_regress_and_new_metrics_are_not_compared() -> None:
    th = {"lipsync/av_confidence": 0.1}
    assert (
        compare(
            {"r/lipsync/av_confidence": float("nan")}, {"r/lipsync/av_confidence": 0.5}, th, DIRS
        )[0].current
        != 0.5
    )
    assert compare({"r/lipsync/av_confidence": 0.1}, {}, th, DIRS) == []
    assert (
        compare({"r/lipsync/av_confidence": 0.1}, {"r/lipsync/av_confidence": None}, th, DIRS) == []
    )


def test_bad_thresholds_fail() -> None:
    with pytest.raises(ConfigValueError, match="unknown metric"):
        compare({}, {}, {"lipsync/nope": 1.0}, DIRS)
    with pytest.raises(ConfigValueError, match="no better direction"):
        compare({}, {}, {"stability/blink_rate": 1.0}, DIRS)
    with pytest.raises(ConfigValueError, match="N%"):
        compare({"r/speed/rtf": 1.0}, {"r/speed/rtf": 0.5}, {"speed/rtf": "fast"}, DIRS)


def test_baseline_locations(tmp_path: Path) -> None:
    data = {"metrics": {"r/speed/rtf": 0.2, "r/lipsync/av_confidence": None}}
    run = tmp_path / "run"
    wandb_files = run / "wandb" / "latest-run" / "files"
    wandb_files.mkdir(parents=True)
    (wandb_files / "results.json").write_text(json.dumps(data))
    expected = {"r/speed/rtf": 0.2, "r/lipsync/av_confidence": None}
    assert load_baseline(run) == expected  # a Hydra run dir with its W&B run
    assert load_baseline(run / "wandb" / "latest-run") == expected  # the W&B run dir
    (run / "results.json").write_text(json.dumps(data))
    assert load_baseline(run / "results.json") == expected
    with pytest.raises(FileNotFoundError):
        load_baseline(tmp_path / "absent")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="metrics"):
        load_baseline(tmp_path / "x.json")
