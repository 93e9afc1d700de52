"""normalize_loudness: target level over active frames, peak ceiling, silence untouched."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import AudioFormatError
from avatar.speech.loudness import active_rms_dbfs, normalize_loudness

SR = 24000


def _bursts(level: float, seed: int = 0) -> np.ndarray:
    """Speech-like test signal: 0.3 s noise/tone bursts separated by 0.2 s of silence, (S,)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.3 * SR)) / SR
    parts = []
    for k in range(5):
        burst = np.sin(2 * np.pi * (150 + 40 * k) * t) + 0.3 * rng.standard_normal(t.size)
        parts += [level * burst * np.hanning(t.size) ** 0.1, np.zeros(int(0.2 * SR))]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("level", [1e-3, 0.05, 0.9])
@pytest.mark.parametrize("target", [-26.0, -20.0, -14.0])
def test_hits_target_within_1db(level: float, target: float) -> None:
    y = normalize_loudness(_bursts(level), SR, target_dbfs=target)
    assert y.dtype == np.float32
    assert abs(active_rms_dbfs(y, SR) - target) < 1.0


def test_peak_is_limited_and_silence_stays_zero() -> None:
    x = _bursts(0.01)
    x[1000] = 0.5  # one click far above the bursts' level
    y = normalize_loudness(x, SR, target_dbfs=-12.0, peak_dbfs=-1.0)
    assert np.abs(y).max() <= 10 ** (-1 / 20) + 1e-6
    assert np.all(y[x == 0] == 0)


@pytest.mark.parametrize(
    "x", [np.zeros(24000, np.float32), np.zeros(0, np.float32), np.full(24000, 1e-6, np.float32)]
)
def test_silence_returned_unchanged(x: np.ndarray) -> None:
    with np.errstate(all="raise"):
        y = normalize_loudness(x, SR, target_dbfs=-20.0)
    assert np.array_equal(y, x)


def test_rejects_stereo() -> None:
    with pytest.raises(AudioFormatError, match="mono"):
        normalize_loudness(np.zeros((2, 100), np.float32), SR, target_dbfs=-20.0)
