"""The committed sync expert as a metric, validated on a clip it never saw (the held-out face):
shifting the audio by k frames (k in -8..8) moves its offset by k (+-1), shuffled audio drops
its confidence, and the suite and evals.score report it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.errors import WeightsMissingError
from evals.functional.sync_expert import DEFAULT_CKPT, expert_scores, load_sync_expert
from evals.metrics import SyncExpertScore
from evals.perturb import shuffle_blocks
from evals.suite import Suite


@pytest.fixture(scope="module")
def expert():
    return load_sync_expert()


@pytest.fixture(scope="module")
def landmarks(speech_clip) -> np.ndarray:
    from evals.landmarks import track_video

    return track_video(speech_clip.frames, speech_clip.fps).landmarks


def _scores(clip, landmarks, audio, expert) -> dict[str, float]:
    out = expert_scores(clip.frames, landmarks, audio, clip.sample_rate, expert)
    assert set(out) == {"offset", "distance", "confidence", "dist_at_0", "max_offset"}
    # the default search, 15 frames each way, capped at half the T - 4 five-frame windows
    assert out["max_offset"] == min(15, (len(clip.frames) - 4) // 2)
    return out


def test_committed_checkpoint_loads_from_its_own_config() -> None:
    assert DEFAULT_CKPT.is_file() and DEFAULT_CKPT.with_suffix(".yaml").is_file()
    assert DEFAULT_CKPT.stat().st_size < 10e6
    net = load_sync_expert()
    assert not net.training and net.window == 5


def test_shifting_the_audio_by_k_moves_the_offset_by_k(
    speech_clip, landmarks, expert, shift
) -> None:
    base = _scores(speech_clip, landmarks, speech_clip.audio, expert)
    assert abs(base["offset"]) <= 1, base
    for k in range(-8, 9):
        moved = shift(speech_clip.audio, speech_clip.sample_rate, speech_clip.fps, k)
        out = _scores(speech_clip, landmarks, moved, expert)
        # audio delayed by k frames: the video leads by k more, the offset (> 0: lags) falls by k
        assert abs(out["offset"] - (base["offset"] - k)) <= 1, (k, base, out)
        if abs(k) >= 3:
            assert out["dist_at_0"] > base["dist_at_0"], (k, base, out)


def test_shuffled_audio_drops_the_confidence(speech_clip, landmarks, expert) -> None:
    base = _scores(speech_clip, landmarks, speech_clip.audio, expert)
    rng = np.random.default_rng(0)
    for _ in range(3):
        shuffled = shuffle_blocks(speech_clip.audio, int(0.4 * speech_clip.sample_rate), rng)
        out = _scores(speech_clip, landmarks, shuffled, expert)
        assert out["confidence"] < 0.5 * base["confidence"], (base, out)
        assert out["distance"] > base["distance"]


def test_no_face_and_missing_weights(speech_clip, expert, tmp_path: Path) -> None:
    nan = np.full((len(speech_clip.frames), 478, 3), np.nan, np.float32)
    assert (
        expert_scores(speech_clip.frames, nan, speech_clip.audio, speech_clip.sample_rate, expert)
        is None
    )
    with pytest.raises(WeightsMissingError, match="absent"):
        load_sync_expert(tmp_path / "none.ckpt")
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(WeightsMissingError, match="bad.ckpt: not a network checkpoint"):
        load_sync_expert(bad)
    a2m = DEFAULT_CKPT.parent / "audio2motion.ckpt"
    with pytest.raises(WeightsMissingError, match="not a avatar.modules.sync_expert.SyncExpert"):
        load_sync_expert(a2m)


def test_metric_in_a_suite(speech_clip, landmarks, expert) -> None:
    suite = Suite({"lipsync": {"expert": SyncExpertScore(expert, ckpt_path=None, max_offset=15)}})
    video = torch.from_numpy(speech_clip.frames).permute(0, 3, 1, 2)[None]
    inputs = {
        "video": video,
        "landmarks": torch.from_numpy(landmarks)[None],
        "audio": torch.from_numpy(speech_clip.audio)[None],
        "sample_rate": speech_clip.sample_rate,
        "fps": speech_clip.fps,
    }
    values, skipped = suite.score_clip(inputs)
    assert not skipped
    assert set(values) == {
        f"lipsync/expert_{k}"
        for k in ("offset", "offset_abs", "distance", "confidence", "dist_at_0")
    }
    assert values["lipsync/expert_offset_abs"] <= 1
    values, skipped = suite.score_clip({**inputs, "fps": 30.0})
    assert "needs 25 fps" in skipped["lipsync/expert"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_offset"):
        SyncExpertScore(ckpt_path=None, max_offset=0)
