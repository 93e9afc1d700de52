"""Blink detection, rate and matching on synthetic eye-openness curves with scheduled blinks."""

from __future__ import annotations

import numpy as np
import pytest

from evals.functional.blink import blink_rate_per_min, detect_blinks, match_blinks

FPS = 25.0
DIP = np.array([0.7, 0.3, 0.15, 0.35, 0.6, 0.85])
"""Openness over a blink relative to the open eye: fast close, slower reopening (6 frames)."""


def scheduled_openness(
    seed: int, n: int = 1500, baseline: float = 0.25, noise: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """(openness (n, 2), blink onset frames): blinks 1.5-5.5 s apart with per-eye noise."""
    rng = np.random.default_rng(seed)
    onsets, t = [], int(rng.integers(10, 40))
    while t < n - len(DIP):
        onsets.append(t)
        t += int(rng.uniform(1.5, 5.5) * FPS)
    curve = np.ones(n)
    for onset in onsets:
        curve[onset : onset + len(DIP)] = DIP * rng.uniform(0.9, 1.1)
    eyes = baseline * curve[:, None] + rng.normal(0.0, noise, (n, 2))
    return eyes, np.asarray(onsets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detect_blinks_precision_recall(seed: int) -> None:
    openness, onsets = scheduled_openness(seed)
    events = detect_blinks(openness, FPS)
    precision, recall = match_blinks([e.peak_frame for e in events], onsets, tolerance_frames=3)
    assert precision >= 0.9 and recall >= 0.9
    for e in events:
        assert e.start_frame <= e.peak_frame < e.end_frame


def test_detect_blinks_single_eye_and_missing_frames() -> None:
    openness, onsets = scheduled_openness(3)
    mono = openness.mean(axis=1)
    mono[::37] = np.nan  # frames without a face are never blinks
    events = detect_blinks(mono, FPS)
    precision, recall = match_blinks([e.peak_frame for e in events], onsets, 3)
    assert precision >= 0.9 and recall >= 0.9


def test_detect_blinks_ignores_noise_and_long_closures() -> None:
    rng = np.random.default_rng(4)
    steady = 0.25 + rng.normal(0.0, 0.02, 500)
    assert detect_blinks(steady, FPS) == []
    shut = steady.copy()
    shut[100:160] = 0.02  # 2.4 s with the eyes closed: not a blink
    shut[300:303] = 0.03
    assert [e.peak_frame for e in detect_blinks(shut, FPS)] == [300 + int(np.argmin(shut[300:303]))]
    assert detect_blinks(np.full(20, np.nan), FPS) == []


def test_blink_rate_per_min() -> None:
    openness, onsets = scheduled_openness(5)
    events = detect_blinks(openness, FPS)
    rate = blink_rate_per_min(events, len(openness), FPS)
    assert rate == pytest.approx(len(events) / 1.0)  # 1500 frames at 25 fps = one minute
    assert blink_rate_per_min([], 0, FPS) == 0.0


def test_match_blinks_edge_cases() -> None:
    assert match_blinks([], [], 2) == (1.0, 1.0)
    assert match_blinks([10], [], 2) == (0.0, 1.0)
    assert match_blinks([], [10], 2) == (1.0, 0.0)
    assert match_blinks([10, 11], [10], 2) == (0.5, 1.0)  # one-to-one
    assert match_blinks([5, 7], [3, 9], 2) == (1.0, 1.0)
    with pytest.raises(ValueError):
        match_blinks([1], [1], -1)
