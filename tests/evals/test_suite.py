"""Suites: metrics fed by input name, skip reasons, aggregates unaffected by skipped clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatar.config import compose
from avatar.errors import WeightsMissingError
from evals.features import extract_features
from evals.metrics import IdentityDistance, IdentityRetention, LipSyncOffset, RealTimeFactor
from evals.suite import Suite


def test_skips_are_recorded_and_aggregates_cover_scored_clips(fake_embedder) -> None:
    suite = Suite(
        {
            "identity": {
                "dlib": IdentityDistance(embedder=fake_embedder, sample_every=1, threshold=0.6),
                "retention": IdentityRetention(embedder=fake_embedder, sample_every=1),
            },
            "speed": {"realtime": RealTimeFactor()},
        }
    )
    refs = [np.full((4, 4, 3), 100, np.uint8)]
    video = torch.full((1, 2, 3, 4, 4), 100 / 255)
    values, skipped = suite.score_clip({"video": video, "references": refs})
    assert values == {
        "identity/dlib_distance": pytest.approx(0.0, abs=1e-6),
        "identity/dlib_max": pytest.approx(0.0, abs=1e-6),
        "identity/dlib_same_person": 1.0,
        "identity/dlib_no_face": 0.0,
    }
    assert skipped["identity/retention"].startswith("skipped: identity retention needs >= 2")
    assert skipped["speed/realtime"] == "skipped: needs total_s, audio_s, n_frames"
    refs2 = [*refs, np.full((4, 4, 3), 200, np.uint8)]
    values2, skipped2 = suite.score_clip({"video": video * 2, "references": refs2})
    assert "identity/retention_ratio" in values2 and "identity/retention" not in skipped2
    total, never = suite.compute()
    assert total["identity/retention_ratio"] == pytest.approx(values2["identity/retention_ratio"])
    assert total["identity/dlib_distance"] == pytest.approx(
        (values["identity/dlib_distance"] + values2["identity/dlib_distance"]) / 2
    )
    assert set(never) == {"speed/realtime"}
    assert suite.directions()["identity/dlib_distance"] is False
    assert suite.directions()["speed/realtime_fps"] is True


def test_absent_weights_skip_a_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.metrics import identity

    def absent() -> None:
        raise WeightsMissingError("dlib model file x.dat is missing")

    monkeypatch.setattr(identity, "default_embedder", absent)
    suite = Suite({"identity": {"dlib": IdentityDistance(sample_every=10, threshold=0.6)}})
    _, skipped = suite.score_clip(
        {"video": torch.rand(1, 2, 3, 4, 4), "references": [np.zeros((4, 4, 3), np.uint8)]}
    )
    assert skipped == {"identity/dlib": "skipped: dlib model file x.dat is missing"}
    assert suite.compute() == ({}, {"identity/dlib": "skipped: dlib model file x.dat is missing"})


def test_suite_refuses_other_metrics() -> None:
    from torchmetrics import MeanMetric

    with pytest.raises(TypeError, match="EvalMetric"):
        Suite({"g": {"m": MeanMetric()}})  # type: ignore[dict-item]


def test_features_feed_every_metric_by_name(speech_clip) -> None:
    feats = extract_features(
        speech_clip.frames,
        speech_clip.fps,
        speech_clip.audio,
        speech_clip.sample_rate,
        timings={"total_s": 1.0, "audio_s": 4.0, "n_frames": 100.0},
        **compose("eval").features,
    )
    inputs = feats.inputs()
    assert inputs["video"].shape == (1, len(speech_clip.frames), 3, 128, 128)
    assert inputs["video"].data_ptr() == torch.from_numpy(feats.frames).data_ptr(), "no copy"
    assert inputs["references"] is None and inputs["first_frame_s"] is None
    mask = feats.static_mask
    assert mask[0].all() and not mask[64, 64], "top row is background, the centre is the face"
    assert np.isfinite(feats.track.pose).all()
    values, skipped = Suite(
        {"l": {"av": LipSyncOffset(max_offset=8, min_pairs=10)}, "s": {"rt": RealTimeFactor()}}
    ).score_clip(inputs)
    assert values["s/rt_rtf"] == 0.25 and not skipped
    assert abs(values["l/av_offset"]) <= 1
