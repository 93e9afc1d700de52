"""The runner end to end on a one-clip benchmark: outputs, W&B offline run, and failing on a
regression against a baseline results file."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from avatar.config import compose
from evals.compare import compare

SMALL = [
    "~benchmark.companions.photo",
    "~benchmark.utterances.question",
    "~benchmark.utterances.pause",
    "benchmark.utterances.greeting='Hello there. ... Nice to meet you.'",
    "~benchmark.renderers.meshwarp256",
    "+benchmark.renderers.meshwarp128=['renderer=meshwarp','renderer.size=128']",
    "suite.identity.metrics.dlib.sample_every=20",
    "suite.identity.metrics.retention.sample_every=20",
    "suite.identity.metrics.drift.sample_every=20",
]


def _overrides(tmp_path: Path, identity_cache: Path) -> list[str]:
    return [*SMALL, f"benchmark.render_overrides=['identity.cache_dir={identity_cache}']"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline whose sync confidence no render reaches, and an identity everyone beats."""
    path = tmp_path_factory.mktemp("baseline") / "results.json"
    metrics = {"meshwarp128/lipsync/av_confidence": 5.0, "meshwarp128/identity/dlib_distance": 5.0}
    path.write_text(json.dumps({"metrics": metrics}))
    return path


def test_run_writes_results_logs_offline_and_fails_on_a_regression(
    tmp_path: Path, identity_cache: Path, baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.run import run

    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_DATA_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_ARTIFACT_DIR",
    ):
        monkeypatch.setenv(var, str(tmp_path))  # the logger sets them; restored after the test
    cfg = compose("eval", [*_overrides(tmp_path, identity_cache), f"baseline={baseline}"])
    code = run(cfg, tmp_path)
    assert code == 1, "the sync confidence regressed past its threshold"
    results = json.loads((tmp_path / "results.json").read_text())
    regs = results["baseline"]["regressions"]
    assert [r["key"] for r in regs] == ["meshwarp128/lipsync/av_confidence"]
    metrics = results["metrics"]
    for key in (
        "lipsync/av_offset_abs",
        "lipsync/closure_closed_fraction",
        "lipsync/visemes_speech",
        "lipsync/expert_offset_abs",
        "lipsync/expert_confidence",
        "lipsync/expert_dist_at_0",
        "identity/dlib_distance",
        "stability/jitter",
        "stability/flicker_static",
        "stability/blink_rate_per_min",
        "speed/realtime_rtf",
        "speed/latency_mean",
    ):
        assert f"meshwarp128/{key}" in metrics, key
    skipped = results["skipped"]
    assert skipped["lipsync/lse"].startswith("skipped: weights syncnet_v2")
    assert skipped["meshwarp128/identity/arcface"].startswith("skipped: weights arcface")
    assert metrics["meshwarp128/lipsync/visemes_agreement"] > 0.8  # the motion's own timings
    assert "2 reference images" in skipped["meshwarp128/identity/retention"]
    assert compare(metrics, metrics, results["thresholds"], results["directions"]) == []
    with (tmp_path / "clips.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["companion"] == "default"
    assert float(rows[0]["lipsync/av_offset_abs"]) <= 2
    assert float(rows[0]["lipsync/expert_offset_abs"]) <= 2
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    files = {p.relative_to(run_dir / "files").as_posix() for p in (run_dir / "files").rglob("*")}
    assert "results.json" in files
    # the one clip's table, video and plot; W&B names media files <key>_<step>_<hash>.<ext>
    logged = [f for f in files if f.startswith("media/") and (run_dir / "files" / f).is_file()]
    media = sorted(re.sub(r"_\d+_[0-9a-f]+(?=\.)", "", f) for f in logged)
    assert media == [
        "media/images/plots/meshwarp128-default-greeting.png",
        "media/table/clips.table.json",
        "media/videos/videos/meshwarp128-default-greeting.mp4",
    ]
    assert len(list(run_dir.glob("run-*.wandb"))) == 1, "the offline run's records"
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["meshwarp128-default-greeting.png"]
    assert [p.name for p in (tmp_path / "clips").iterdir()] == ["meshwarp128-default-greeting.mp4"]


def test_strict_run_fails_on_absent_weights(tmp_path: Path, identity_cache: Path) -> None:
    from evals.run import run

    cfg = compose(
        "eval",
        [
            *_overrides(tmp_path, identity_cache),
            "weights.strict=true",
            f"weights.dir={tmp_path}",
            "results_logger.mode=disabled",
        ],
    )
    assert run(cfg, tmp_path) == 2
    assert not (tmp_path / "results.json").exists(), "fails before rendering anything"


@pytest.mark.slow
def test_cli_exits_non_zero_on_a_regression(
    tmp_path: Path, identity_cache: Path, baseline: Path
) -> None:
    args = [
        *_overrides(tmp_path, identity_cache),
        f"baseline={baseline}",
        f"hydra.run.dir={tmp_path}",
        "results_logger.mode=disabled",
    ]
    env = {"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "evals.run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "regression: meshwarp128/lipsync/av_confidence" in proc.stderr + proc.stdout
