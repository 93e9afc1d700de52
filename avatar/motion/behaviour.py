"""Non-verbal behaviour: blinks, idle head sway, speech-related nods, gaze on the camera.

Every function takes a seeded ``numpy.random.Generator`` so that a track is reproducible.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def blink_times(
    duration_s: float,
    rng: np.random.Generator,
    *,
    rate_per_min: float,
    min_interval_s: float,
    max_interval_s: float,
    after_s: float | None = None,
) -> np.ndarray:
    """Blink onset times in seconds over ``[0, duration_s)``.

    Intervals are drawn from a gamma distribution whose mean gives ``rate_per_min``, clipped to
    ``[min_interval_s, max_interval_s]`` so that there is never a long stare (a blink at least
    every ``max_interval_s``) and never a flutter.

    Args:
        after_s: onset of the previous blink, seconds (<= 0: before this stretch, which
            continues another); the first blink follows it by one interval (at once if that
            is already past). None: a fresh start, the first blink 0.4 s to one mean interval in.

    >>> ts = blink_times(60.0, np.random.default_rng(0), rate_per_min=15,
    ...                  min_interval_s=1.5, max_interval_s=6.0)
    >>> 8 <= len(ts) <= 25 and bool(np.all(np.diff(ts) >= 1.5))
    True
    """
    mean = 60.0 / rate_per_min
    shape = 4.0  # fairly regular, as in relaxed conversation
    times = []
    if after_s is None:
        t = float(rng.uniform(0.4, min(max_interval_s, mean)))
    else:
        gap = float(np.clip(rng.gamma(shape, mean / shape), min_interval_s, max_interval_s))
        t = max(after_s + gap, 0.0)
    while t < duration_s:
        times.append(t)
        t += float(np.clip(rng.gamma(shape, mean / shape), min_interval_s, max_interval_s))
    return np.asarray(times, np.float64)


def blink_curve(
    onsets_s: np.ndarray, n_frames: int, fps: float, *, close_s: float, hold_s: float, open_s: float
) -> np.ndarray:
    """(T,) eyelid closure in [0, 1] for blinks starting at ``onsets_s``.

    A blink closes in ``close_s`` (fast), stays shut ``hold_s`` and reopens in ``open_s``
    (slower), the asymmetric profile of real blinks. Each frame takes the mean closure over its
    interval so that even a 100 ms blink reaches nearly full closure on one 25 fps frame.
    """
    sub = 8  # samples per frame
    t = (np.arange(n_frames * sub) + 0.5) / (fps * sub)
    closure = np.zeros_like(t)
    # each blink is evaluated on its own span only (linear time); two samples of margin on
    # each side so that rounding at the span's ends cannot leave out a nonzero sample
    margin = 2.0 / (fps * sub)
    onsets = np.asarray(onsets_s, np.float64)
    lo = np.searchsorted(t, onsets - margin, side="left")
    hi = np.searchsorted(t, onsets + (close_s + hold_s + open_s) + margin, side="right")
    for onset, a, b in zip(onsets.tolist(), lo.tolist(), hi.tolist(), strict=True):
        dt = t[a:b] - onset
        closing = np.clip(dt / close_s, 0.0, 1.0)
        opening = np.clip(1.0 - (dt - close_s - hold_s) / open_s, 0.0, 1.0)
        c = np.where(dt < close_s + hold_s, closing, opening)
        c = np.where(dt < 0, 0.0, c)
        closure[a:b] = np.maximum(closure[a:b], np.sin(0.5 * np.pi * c) ** 2)
    per_frame = closure.reshape(n_frames, sub).max(axis=1)
    return per_frame.astype(np.float32)


def smooth_noise(
    n_frames: int, fps: float, rng: np.random.Generator, *, cutoff_hz: float
) -> np.ndarray:
    """(T,) band-limited noise with unit standard deviation (Gaussian-filtered white noise)."""
    pad = int(3 * fps / cutoff_hz)
    white = rng.standard_normal(n_frames + 2 * pad)
    sigma = fps / (2.0 * np.pi * cutoff_hz)
    x = gaussian_filter1d(white, sigma)[pad : pad + n_frames]
    # std of Gaussian-filtered unit white noise (not the sample std: a short clip would blow up)
    expected_std = 1.0 / np.sqrt(2.0 * np.sqrt(np.pi) * sigma)
    return (x / expected_std).astype(np.float32)


def head_motion(
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    *,
    activity: np.ndarray,
    sway_deg: float,
    speaking_sway_gain: float,
    nod_deg: float,
) -> dict[str, np.ndarray]:
    """Head yaw, pitch and roll in degrees, each (T,).

    Idle sway is slow band-limited noise (below 0.3 Hz) of ``sway_deg`` standard deviation;
    while speaking it grows by ``speaking_sway_gain`` and phrase-level nods follow the speech
    activity: pitch dips by up to ``nod_deg`` when the voice gets louder.

    Args:
        activity: (T,) speech loudness envelope in [0, 1] per frame (0 in silence).
    """
    speaking = gaussian_filter1d(np.asarray(activity, np.float64), 0.5 * fps)
    gain = 1.0 + speaking_sway_gain * np.clip(speaking / max(speaking.max(), 1e-6), 0, 1)
    yaw = sway_deg * gain * smooth_noise(n_frames, fps, rng, cutoff_hz=0.25)
    roll = 0.6 * sway_deg * gain * smooth_noise(n_frames, fps, rng, cutoff_hz=0.2)
    pitch = 0.7 * sway_deg * gain * smooth_noise(n_frames, fps, rng, cutoff_hz=0.3)
    # nods: emphasis = fast envelope minus slow envelope (syllable-to-phrase band)
    fast = gaussian_filter1d(np.asarray(activity, np.float64), 0.06 * fps)
    slow = gaussian_filter1d(np.asarray(activity, np.float64), 0.6 * fps)
    emphasis = np.clip(fast - slow, 0.0, None)
    if emphasis.max() > 1e-6:
        emphasis /= emphasis.max()
    pitch = pitch + nod_deg * gaussian_filter1d(emphasis, 0.08 * fps)
    return {
        "head_yaw": yaw.astype(np.float32),
        "head_pitch": pitch.astype(np.float32),
        "head_roll": roll.astype(np.float32),
    }


def speech_activity(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """(T,) loudness envelope per frame in [0, 1]: frame RMS in dB mapped from [-50, 0] dBFS
    relative to the loudest frame.

    >>> a = np.r_[np.zeros(8000), 0.5 * np.ones(8000)].astype(np.float32)
    >>> env = speech_activity(a, 16000, 25, 25.0)
    >>> float(env[:10].max()), float(env[-5:].min())
    (0.0, 1.0)
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    # frame k covers samples [round(k * hop), round((k + 1) * hop)), cut at the audio's end
    edges = np.minimum(np.rint(np.arange(n_frames + 1) * (sample_rate / fps)), len(audio))
    edges = edges.astype(np.int64)
    env = _segment_rms(audio, edges[:-1], edges[1:]).astype(np.float32)
    peak = float(env.max()) if n_frames else 0.0
    if peak <= 1e-8:
        return np.zeros(n_frames, np.float32)
    db = 20.0 * np.log10(np.maximum(env / peak, 1e-8))
    return np.clip((db + 50.0) / 50.0, 0.0, 1.0).astype(np.float32)


def silent_spans(
    audio: np.ndarray, sample_rate: int, *, min_duration_s: float, threshold_db: float
) -> list[tuple[float, float]]:
    """(start, end) seconds where the audio stays ``threshold_db`` below its loudest 20 ms
    frame for at least ``min_duration_s``.

    >>> a = np.r_[np.ones(8000), np.zeros(8000), np.ones(8000)].astype(np.float32) * 0.3
    >>> [(round(s, 2), round(e, 2)) for s, e in silent_spans(a, 16000, min_duration_s=0.2,
    ...                                                      threshold_db=-40)]
    [(0.5, 1.0)]
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    hop = max(int(round(0.02 * sample_rate)), 1)
    n = len(audio) // hop
    if n == 0:
        return []
    starts = np.arange(n, dtype=np.int64) * hop
    rms = _segment_rms(audio, starts, starts + hop)
    peak = float(rms.max())
    if peak <= 1e-9:
        return [(0.0, len(audio) / sample_rate)]
    quiet = 20.0 * np.log10(np.maximum(rms / peak, 1e-12)) < threshold_db
    # runs of quiet frames [start, i): where the padded mask steps up, and where it steps down
    steps = np.diff(np.r_[False, quiet, False].astype(np.int8))
    ups, downs = np.flatnonzero(steps == 1).tolist(), np.flatnonzero(steps == -1).tolist()
    spans: list[tuple[float, float]] = []
    for start, i in zip(ups, downs, strict=True):
        if (i - start) * hop / sample_rate >= min_duration_s:
            spans.append((start * hop / sample_rate, min(i * hop, len(audio)) / sample_rate))
    return spans


def _segment_rms(audio: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(K,) float64 RMS of each ``audio[lo[k]:hi[k]]`` (0 where empty).

    Segments of one length are gathered into rows, about a million samples at a time, so the
    float64 copy stays small whatever the audio's length; a row's mean is the same sum as
    ``np.mean`` of the segment alone.
    """
    out = np.zeros(len(lo), np.float64)
    sizes = hi - lo
    for size in np.unique(sizes[sizes > 0]).tolist():
        rows = np.flatnonzero(sizes == size)
        step = max(1, 2**20 // size)
        for a in range(0, len(rows), step):
            part = rows[a : a + step]
            seg = audio[lo[part, None] + np.arange(size)].astype(np.float64)
            out[part] = np.sqrt(np.mean(seg**2, axis=1))
    return out
