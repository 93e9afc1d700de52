"""Loudness normalisation: gain to a target RMS over active frames, then a look-ahead limiter."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from avatar.errors import AudioFormatError

FRAME_S = 0.020
"""Frame length for the activity gate, seconds."""
ABS_GATE_DBFS = -70.0
"""Frames quieter than this never count as active (and all-quiet input is left alone)."""
REL_GATE_DB = 40.0
"""Frames more than this below the loudest frame are treated as silence (pauses, noise floor)."""
LIMITER_WINDOW_S = 0.005
"""Half-width of the limiter's look-ahead/release window, seconds."""


def _db(x: float) -> float:
    return 20.0 * float(np.log10(max(x, 1e-20)))


def frame_rms(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS of consecutive non-overlapping 20 ms frames (the last, partial frame is dropped).

    Args:
        audio: mono waveform, shape ``(S,)``.
        sample_rate: Hz.

    Returns:
        Linear RMS per frame, float64, shape ``(S // frame,)``.
    """
    n = max(1, int(round(FRAME_S * sample_rate)))
    frames = np.asarray(audio[: len(audio) // n * n], np.float64).reshape(-1, n)
    return np.sqrt(np.mean(frames * frames, axis=1))


def active_rms_dbfs(audio: np.ndarray, sample_rate: int) -> float | None:
    """RMS level in dBFS over the active 20 ms frames, or ``None`` when no frame is active.

    A frame is active when it is above -70 dBFS and within 40 dB of the loudest frame.

    Args:
        audio: mono waveform, shape ``(S,)``, full scale 1.0.
        sample_rate: Hz.

    >>> t = np.arange(24000) / 24000
    >>> tone = np.concatenate([0.1 * np.sin(2 * np.pi * 200 * t), np.zeros(24000)])
    >>> round(active_rms_dbfs(tone, 24000), 1)  # 0.1 / sqrt(2), the silent half ignored
    -23.0
    """
    rms = frame_rms(audio, sample_rate)
    if rms.size == 0:
        return None
    loudest = float(rms.max())
    gate = max(10 ** (ABS_GATE_DBFS / 20), loudest * 10 ** (-REL_GATE_DB / 20))
    active = rms[rms >= gate]
    if active.size == 0 or loudest < 10 ** (ABS_GATE_DBFS / 20):
        return None
    return _db(float(np.sqrt(np.mean(active * active))))


def limit_peaks(audio: np.ndarray, sample_rate: int, *, peak_dbfs: float) -> np.ndarray:
    """Look-ahead limiter: a smooth gain envelope keeps ``|audio|`` at or below ``peak_dbfs``.

    The gain each sample needs is min-filtered over +-5 ms and then averaged over the same
    window, so the envelope never exceeds what any sample needs and ramps over ~10 ms
    instead of clipping.

    Args:
        audio: mono waveform, shape ``(S,)``.
        sample_rate: Hz.
        peak_dbfs: ceiling in dBFS (full scale 1.0).

    Returns:
        float32 waveform, shape ``(S,)``.

    >>> x = np.array([0.1, 2.0, 0.1], np.float32)
    >>> float(np.abs(limit_peaks(x, 24000, peak_dbfs=0.0)).max()) <= 1.0
    True
    """
    ceiling = 10 ** (peak_dbfs / 20)
    mag = np.abs(audio).astype(np.float64)
    if mag.size == 0 or mag.max() <= ceiling:
        return audio.astype(np.float32, copy=False)
    need = np.minimum(1.0, ceiling / np.maximum(mag, 1e-20))
    w = max(1, int(round(LIMITER_WINDOW_S * sample_rate)))
    gain = uniform_filter1d(
        minimum_filter1d(need, 2 * w + 1, mode="nearest"), 2 * w + 1, mode="nearest"
    )
    gain = np.minimum(gain, need)  # rounding in the moving average must not let a peak through
    return (audio * gain).astype(np.float32)


def normalize_loudness(
    audio: np.ndarray, sample_rate: int, *, target_dbfs: float, peak_dbfs: float = -1.0
) -> np.ndarray:
    """Scale speech so its active-frame RMS is ``target_dbfs``, then limit peaks to ``peak_dbfs``.

    Silent frames (pauses) do not count towards the level, so a long pause does not make the
    speech louder. Input with no active frame (silence, or empty) comes back unchanged.

    Args:
        audio: mono waveform, float, shape ``(S,)``, full scale 1.0.
        sample_rate: Hz.
        target_dbfs: RMS level of the active frames after the gain, dBFS (e.g. -20).
        peak_dbfs: ceiling for the absolute sample value after the gain, dBFS.

    Returns:
        float32 waveform, shape ``(S,)``.

    Raises:
        AudioFormatError: ``audio`` is not one-dimensional.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([0.01 * rng.standard_normal(24000), np.zeros(12000)])
    >>> y = normalize_loudness(x, 24000, target_dbfs=-20.0)
    >>> round(active_rms_dbfs(y, 24000), 1), bool(np.all(y[24000:] == 0))
    (-20.0, True)
    >>> z = np.zeros(100, np.float32)
    >>> normalize_loudness(z, 24000, target_dbfs=-20.0) is z
    True
    """
    if np.ndim(audio) != 1:
        raise AudioFormatError(f"normalize_loudness expects mono audio (S,), got {np.shape(audio)}")
    level = active_rms_dbfs(audio, sample_rate)
    if level is None:
        return audio
    gain = 10 ** ((target_dbfs - level) / 20)
    return limit_peaks(
        np.asarray(audio, np.float32) * np.float32(gain), sample_rate, peak_dbfs=peak_dbfs
    )
