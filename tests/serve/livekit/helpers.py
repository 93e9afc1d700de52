"""Signals and read-outs shared by the real-time tests."""

from __future__ import annotations

import numpy as np

from serve.livekit.local_room import PublishedRecording

WINDOW_S = 0.005


def tone_bursts(bursts: list[tuple[float, float]], seconds: float, rate: int) -> np.ndarray:
    """(S,) float32: 220 Hz bursts at -10 dBFS over ``bursts`` ((start, end) seconds), silence
    elsewhere."""
    t = np.arange(int(round(seconds * rate))) / rate
    on = np.zeros_like(t, bool)
    for start, end in bursts:
        on |= (t >= start) & (t < end)
    return (0.45 * np.sin(2 * np.pi * 220 * t) * on).astype(np.float32)


def with_noise_floor(samples: np.ndarray, seed: int = 0) -> np.ndarray:
    """``samples`` plus white noise at -60 dBFS, so that every stretch of speech is audible."""
    noise = np.random.default_rng(seed).normal(0, 1e-3, len(samples))
    return (samples + noise).astype(np.float32)


def _window_rms(rec: PublishedRecording) -> tuple[np.ndarray, float]:
    """RMS of the published audio per 5 ms window (int16 units), and the first window's time."""
    samples = rec.audio_samples().astype(np.float64)
    n = int(rec.sample_rate * WINDOW_S)
    usable = len(samples) // n * n
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, n) ** 2, axis=1))
    return rms, rec.audio_start()


def audio_onsets(rec: PublishedRecording, *, level: float = 1000.0) -> list[float]:
    """Publish times (s) at which loud audio starts after at least 100 ms of quiet, refined to
    the first loud sample."""
    samples = rec.audio_samples().astype(np.float64)
    loud = np.abs(samples) > level
    onsets = []
    gap = int(0.1 * rec.sample_rate)
    last_loud = -gap - 1  # as if long quiet before the start
    for index in np.flatnonzero(loud):
        if index - last_loud > gap:
            onsets.append(index)
        last_loud = index
    start = rec.audio_start()
    return [start + i / rec.sample_rate for i in onsets]


def published_speech_span(rec: PublishedRecording, *, level: float = 10.0) -> tuple[float, float]:
    """Publish times (s) of the first and last 5 ms window above ``level`` RMS (int16)."""
    rms, start = _window_rms(rec)
    audible = np.flatnonzero(rms > level)
    if not len(audible):
        raise AssertionError("nothing audible was published")
    return start + audible[0] * WINDOW_S, start + (audible[-1] + 1) * WINDOW_S
