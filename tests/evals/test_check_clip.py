"""check_clip end to end on a short clip rendered by the pipeline, and its command line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatar.companion import EMBEDDED_ASTRONAUT
from avatar.errors import WeightsMissingError
from avatar.media import read_mp4
from evals import check_clip as cc
from evals.functional.lipsync import frame_level_db, pause_closure

KEYS = {
    "media/video_codec",
    "media/audio_codec",
    "media/width",
    "media/height",
    "media/fps",
    "media/n_frames",
    "media/video_duration",
    "media/audio_duration",
    "media/duration_diff_frames",
    "face/detection_rate",
    "lipsync/av_offset_frames",
    "lipsync/av_confidence",
    "lipsync/n_pauses",
    "lipsync/pause_max_aperture",
    "lipsync/pauses_all_closed",
    "lipsync/pause_closed_fraction",
    "lipsync/aperture_speech",
    "lipsync/aperture_silence",
    "blink/count",
    "blink/rate_per_min",
    "blink/required",
    "blink/ok",
    "identity/mean",
    "identity/max",
}


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory, render_config_overrides: list[str]) -> Path:
    from avatar.config import compose, pipeline_from_config

    out = tmp_path_factory.mktemp("check-clip") / "c.mp4"
    pipeline = pipeline_from_config(compose("render", render_config_overrides))
    pipeline.render_text("default", "Hello there. ... Nice to meet you.", out)
    return out


@pytest.fixture(scope="module")
def report(clip_path: Path) -> dict[str, Any]:
    return cc.check_clip(clip_path, references=[EMBEDDED_ASTRONAUT], sample_every=10)


def test_report_keys_and_values(report: dict[str, Any], clip_path: Path) -> None:
    assert KEYS <= set(report)
    assert report["media/video_codec"] == "h264" and report["media/audio_codec"] == "aac"
    assert report["media/width"] == report["media/height"] == 256
    assert report["face/detection_rate"] == 1.0
    assert report["media/duration_diff_frames"] <= 1.0
    # pauses are runs of silent frames of >= 0.3 s: counted from the clip's audio alone
    audio = read_mp4(clip_path, with_frames=False)
    level = frame_level_db(audio.audio, audio.sample_rate, audio.fps, audio.n_frames)
    silences = pause_closure(np.zeros(audio.n_frames), level, audio.fps).pauses
    assert report["lipsync/n_pauses"] == len(silences) and report["media/n_frames"] == len(level)
    assert report["lipsync/pauses_all_closed"] is True
    assert report["identity/frames_sampled"] == math.ceil(report["media/n_frames"] / 10)
    assert report["blink/required"] == int(report["media/n_frames"] / report["media/fps"] // 6)
    assert report["identity/metric"] == "ID-dlib"
    assert 0.0 <= report["identity/mean"] <= report["identity/max"] < 0.6
    json.dumps(report, allow_nan=False)  # strict JSON: NaN became null


def test_report_speech_moves_the_mouth(report: dict[str, Any]) -> None:
    assert report["lipsync/aperture_speech"] > 2 * report["lipsync/aperture_silence"]
    assert abs(report["lipsync/av_offset_frames"]) <= 2


def test_rendered_clip_meets_the_foundation_criteria(report: dict[str, Any]) -> None:
    """The acceptance criteria of the foundation issue, on a small render."""
    assert report["lipsync/n_pauses"] >= 1, "the sentence break is a pause of 0.3 s or more"
    assert report["lipsync/pauses_all_closed"] and report["lipsync/pause_max_aperture"] < 0.06
    assert report["blink/ok"]


def test_cli_prints_json(clip_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cc.main([f"video={clip_path}", "sample_every=40"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert KEYS <= set(printed)
    assert printed["identity/frames_sampled"] == math.ceil(printed["media/n_frames"] / 40)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown argument"):
        cc.main(["clip=x.mp4"])
    with pytest.raises(SystemExit, match="missing video"):
        cc.main(["sample_every=3"])
    with pytest.raises(SystemExit, match="integer"):
        cc.main(["video=x.mp4", "sample_every=often"])
    assert cc.main([f"video={tmp_path / 'absent.mp4'}"]) == 2
    assert cc._parse(["video=a.mp4", "reference=x.png,y.png", "reference=z.png"])["references"] == [
        "x.png",
        "y.png",
        "z.png",
    ]


def test_identity_skipped_without_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent() -> None:
        raise WeightsMissingError("dlib model file x.dat is missing")

    monkeypatch.setattr(cc, "DlibFaceEmbedder", absent)
    out = cc._identity(np.zeros((2, 64, 64, 3), np.uint8), [EMBEDDED_ASTRONAUT], 1, None)
    assert "x.dat" in out["identity/skipped"]
