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
    assert code == 3, "the sync confidence regressed past its threshold (exit 3: a regression)"
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
    with (tmp_path / "renderers.csv").open() as fh:  # one column per renderer
        compared = list(csv.DictReader(fh))
    assert compared and set(compared[0]) == {"metric", "meshwarp128"}
    by_metric = {row["metric"]: row["meshwarp128"] for row in compared}
    assert float(by_metric["lipsync/av_confidence"]) == pytest.approx(
        results["metrics"]["meshwarp128/lipsync/av_confidence"]
    )
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
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "regression: meshwarp128/lipsync/av_confidence" in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, "BaselineNotFound", "no results.json at"),
        ("not json", "BaselineFormatError", "is not JSON"),
        ('{"clips": []}', "BaselineFormatError", "has no 'metrics' mapping"),
        ('{"metrics": {"a/b/c": "high"}}', "BaselineFormatError", "non-numeric metric"),
    ],
)
def test_bad_baseline_fails_before_anything_is_rendered(
    tmp_path: Path,
    identity_cache: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    error: str,
    message: str,
) -> None:
    from evals.compare import BaselineFormatError, BaselineNotFound
    from evals.run import cli, run

    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    args = [*_overrides(tmp_path, identity_cache), f"baseline={path}"]
    out_dir = tmp_path / "run"
    with pytest.raises((BaselineNotFound, BaselineFormatError), match=message):
        run(compose("eval", args), out_dir)
    assert not out_dir.exists(), "nothing rendered or written"
    hydra_dir = tmp_path / "hydra"
    assert cli([*args, f"hydra.run.dir={hydra_dir}", "results_logger.mode=disabled"]) == 2
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.startswith("error: ")]
    assert f"{error}: baseline={path}" in line and message in line
    assert "Traceback" not in err and not out
    assert not hydra_dir.exists(), "refused before Hydra makes its run directory"


def test_cli_process_refuses_bad_arguments_with_exit_2(tmp_path: Path) -> None:
    for args, expected in (
        ([f"baseline={tmp_path / 'absent'}"], "BaselineNotFound"),
        (["not_a_key=1"], "not_a_key"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "evals.run", *args, f"hydra.run.dir={tmp_path / 'run'}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and not proc.stdout
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        assert expected in line
    assert not (tmp_path / "run").exists()


def test_two_renderers_side_by_side_without_a_logger(tmp_path: Path, identity_cache: Path) -> None:
    """Mesh-warp and the neural renderer (an untrained network: it renders the plain warp, no
    painted lips) in one run, compared column by column; results_logger=null writes files only."""
    from avatar.checkpoint import save_network
    from avatar.modules.refine_unet import WarpRefineNet
    from avatar.motion.track import CHANNELS
    from evals.run import run

    net = WarpRefineNet(motion_dim=len(CHANNELS), base_channels=4, depth=2)
    ckpt = save_network(tmp_path / "neural.ckpt", net)
    neural = f"['renderer=neural','renderer.size=128','renderer.ckpt_path={ckpt}']"
    small = [o for o in _overrides(tmp_path, identity_cache) if not o.startswith("suite.")]
    overrides = [*small, f"+benchmark.renderers.neural128={neural}"]
    cfg = compose("eval", [*overrides, "suite=lipsync", "results_logger=null"])
    assert run(cfg, tmp_path / "run") == 0
    with (tmp_path / "run" / "renderers.csv").open() as fh:
        rows = {row["metric"]: row for row in csv.DictReader(fh)}
    assert set(rows["lipsync/av_offset_abs"]) == {"metric", "meshwarp128", "neural128"}
    assert all(row["meshwarp128"] != "" and row["neural128"] != "" for row in rows.values())
    assert not (tmp_path / "run" / "wandb").exists()
