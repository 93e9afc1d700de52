"""Lip-sync functions on synthetic signals: A/V offset and its sign, pause closure, motion."""

from __future__ import annotations

import numpy as np
import pytest

from evals.functional.lipsync import (
    av_offset,
    db_to_envelope,
    frame_level_db,
    pause_closure,
    speech_envelope,
    speech_motion,
)
from evals.functional.mouth import eye_openness, mouth_aperture

FPS = 25.0


def syllable_envelope(rng: np.random.Generator, n: int = 250) -> np.ndarray:
    """(n,) envelope in [0, 1]: Gaussian syllable bumps every 4-8 frames with random pauses."""
    env, x, centre = np.zeros(n), np.arange(n), 3.0
    while centre < n - 3:
        if rng.random() < 0.12:
            centre += rng.uniform(8, 15)
            continue
        env += rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((x - centre) / rng.uniform(1.0, 2.0)) ** 2)
        centre += rng.uniform(4, 8)
    return np.clip(env, 0.0, 1.0)


def delay(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` delayed by ``k`` frames (advanced if k < 0), NaN where nothing is known."""
    out = np.full_like(x, np.nan)
    if k > 0:
        out[k:] = x[:-k]
    elif k < 0:
        out[:k] = x[-k:]
    else:
        out[:] = x
    return out


@pytest.mark.parametrize("k", range(-8, 9))
def test_av_offset_recovers_shift_with_sign(k: int) -> None:
    rng = np.random.default_rng(100 + k)
    env = syllable_envelope(rng)
    aperture = 0.35 * delay(env, k) + rng.normal(0.0, 0.01, env.shape)  # mouth k frames late
    offset, confidence, corr = av_offset(aperture, env, max_offset=8)
    assert offset is not None and abs(offset - k) <= 1
    assert corr.shape == (17,) and confidence > 0.4


def test_av_offset_positive_means_video_lags() -> None:
    env = syllable_envelope(np.random.default_rng(0))
    assert av_offset(delay(env, 3), env).offset_frames == 3  # the mouth moves after the sound
    assert av_offset(delay(env, -3), env).offset_frames == -3


def test_av_offset_shuffled_envelope_has_low_confidence() -> None:
    rng = np.random.default_rng(1)
    env = syllable_envelope(rng)
    matched = av_offset(0.35 * env, env)
    shuffled = av_offset(0.35 * env, rng.permutation(env))
    assert shuffled.confidence < 0.3 < matched.confidence


def test_av_offset_undefined_inputs() -> None:
    result = av_offset(np.full(40, np.nan), np.ones(40))
    assert result.offset_frames is None and np.isnan(result.confidence)
    with pytest.raises(ValueError):
        av_offset(np.zeros(10), np.zeros(11))


def test_frame_level_and_envelope() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    audio = np.sin(2 * np.pi * 220 * t) * np.repeat([1.0, 0.0, 0.01, 1.0], sr // 4)
    level = frame_level_db(audio, sr, FPS, 25)
    assert level.shape == (25,) and level.max() == pytest.approx(0.0)
    assert np.all(level[7:12] == -120.0) and level[14] == pytest.approx(-40.0, abs=0.5)
    env = speech_envelope(audio, sr, FPS, 25)
    assert env.shape == (25,) and env.min() >= 0.0 and env.max() <= 1.0
    assert np.all(frame_level_db(np.zeros(sr), sr, FPS, 25) == -120.0)  # digital silence
    assert db_to_envelope(-35.0) == pytest.approx(25 / 60)


def _speech_and_pauses() -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(level dB, aperture, pause spans): 0.2, 0.4 and 0.6 s silences between speech."""
    rng = np.random.default_rng(2)
    spans = [(25, 30), (55, 65), (90, 105)]  # 5 frames (0.2 s: too short), 10 and 15 frames
    level = np.zeros(130)
    aperture = rng.uniform(0.15, 0.4, 130)
    for a, b in spans:
        level[a:b] = -60.0
        aperture[a:b] = 0.02
    return level, aperture, spans


def test_pause_closure_closed_mouth() -> None:
    level, aperture, _ = _speech_and_pauses()
    result = pause_closure(aperture, level, FPS)
    assert [(p.start_frame, p.end_frame) for p in result.pauses] == [(55, 65), (90, 105)]
    assert result.all_closed and result.closed_fraction == 1.0
    assert result.max_aperture == pytest.approx(0.02)


def test_pause_closure_margin_allows_transitions() -> None:
    level, aperture, _ = _speech_and_pauses()
    aperture[55:57] = 0.3  # still closing during the first 2 frames (0.08 s) of the pause
    aperture[103:105] = 0.3  # already opening in the last 2
    result = pause_closure(aperture, level, FPS)
    assert result.all_closed and result.pauses[0].scored == (57, 63)


def test_pause_closure_open_mouth_in_pause() -> None:
    level, aperture, _ = _speech_and_pauses()
    aperture[96] = 0.1
    result = pause_closure(aperture, level, FPS)
    assert not result.all_closed
    assert [p.closed for p in result.pauses] == [True, False]
    assert result.pauses[1].max_aperture == pytest.approx(0.1)
    assert 0.0 < result.closed_fraction < 1.0


def test_pause_closure_from_waveform() -> None:
    sr, n = 16000, 100
    rng = np.random.default_rng(3)
    audio = rng.normal(0.0, 0.2, n * sr // 25)
    audio[40 * 640 : 60 * 640] = 0.0  # frames 40-59 silent (0.8 s)
    aperture = np.full(n, 0.3)
    aperture[40:60] = 0.01
    result = pause_closure(aperture, audio, FPS, sample_rate=sr)
    assert len(result.pauses) == 1 and result.all_closed
    aperture[50] = np.nan  # a frame without a face does not count against the pause
    assert pause_closure(aperture, audio, FPS, sample_rate=sr).all_closed


def test_pause_closure_no_pause() -> None:
    result = pause_closure(np.full(50, 0.3), np.zeros(50), FPS)
    assert result.pauses == [] and result.all_closed and np.isnan(result.closed_fraction)


def test_speech_motion_separates_speech_and_silence() -> None:
    level, aperture, _ = _speech_and_pauses()
    motion = speech_motion(aperture, db_to_envelope(level))
    assert motion.speech_mean > 0.15 > 0.05 > motion.silence_mean
    assert motion.n_speech + motion.n_silence == 130


def test_mouth_and_eye_measures_handle_missing_faces() -> None:
    pts = np.random.default_rng(4).normal(100.0, 20.0, size=(3, 478, 3))
    pts[1] = np.nan
    ap, eyes = mouth_aperture(pts), eye_openness(pts)
    assert ap.shape == (3,) and eyes.shape == (3, 2)
    assert np.isnan(ap[1]) and np.isnan(eyes[1]).all() and np.isfinite(ap[[0, 2]]).all()
    with pytest.raises(ValueError):
        mouth_aperture(np.zeros((3, 468, 3)))
