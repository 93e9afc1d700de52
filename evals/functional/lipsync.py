"""Lip-sync measures from mouth aperture and audio: A/V offset, mouth closure in pauses, motion.

All functions work per video frame: frame ``k`` covers audio ``[k / fps, (k + 1) / fps)``. The
mouth aperture is :func:`evals.functional.mouth.mouth_aperture` (inner-lip gap over eye-corner
distance). These are landmark/energy proxies for the lip-sync acceptance criteria, not SyncNet's
LSE-C/LSE-D (which need a learned audio-visual model).

Sign convention of :func:`av_offset`: a **positive** offset means the **video lags the audio**
(the mouth moves *after* the sound), i.e. ``aperture[t]`` follows ``envelope[t - offset]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "AVOffset",
    "Pause",
    "PauseClosure",
    "SpeechMotion",
    "av_offset",
    "db_to_envelope",
    "frame_level_db",
    "pause_closure",
    "speech_envelope",
    "speech_motion",
]

FLOOR_DB = -60.0
"""Level (dB below the loudest frame) that maps to 0 in :func:`speech_envelope`."""
ABS_SILENCE_RMS = 1e-5
"""Audio whose loudest frame is below this RMS (-100 dBFS) is silent throughout."""
_MIN_DB = -120.0


_CSUM_FRAMES = 4096  # frames of audio squared and summed at once (bounded memory on long clips)


def _energy_at(audio: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Running sum of float64 squared samples before each of the (sorted) ``bounds``.

    The same values as ``np.concatenate([[0.0], np.cumsum(a * a)])[bounds]`` (a sequential
    sum, carried from block to block), a block of frames at a time.
    """
    out = np.empty(len(bounds))
    carry = 0.0
    for k0 in range(0, max(len(bounds) - 1, 1), _CSUM_FRAMES):
        k1 = min(len(bounds) - 1, k0 + _CSUM_FRAMES)
        a = np.asarray(audio[bounds[k0] : bounds[k1]], np.float64)
        csum = np.cumsum(np.concatenate([[carry], a * a]))
        out[k0 : k1 + 1] = csum[bounds[k0 : k1 + 1] - bounds[k0]]
        carry = csum[-1]
    return out


def frame_level_db(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS level of each video frame's audio, in dB relative to the loudest frame.

    Args:
        audio: (S,) mono waveform in [-1, 1] starting with frame 0.
        sample_rate: audio rate in Hz.
        fps: video frames per second.
        n_frames: T; frames beyond the end of the audio are silent.

    Returns:
        (T,) float64 in [-120, 0] dB: 0 for the loudest frame; -120 everywhere when the loudest
        frame is below -100 dBFS (digital silence).

    Example:
        >>> sr = 1000; t = np.arange(2 * sr) / sr
        >>> audio = np.sin(2 * np.pi * 50 * t) * np.repeat([1.0, 0.1], sr)
        >>> frame_level_db(audio, sr, 2, 4).round(1) + 0.0  # + 0.0 turns -0.0 into 0.0
        array([  0.,   0., -20., -20.])
    """
    audio = np.asarray(audio).reshape(-1)
    if sample_rate <= 0 or not fps > 0 or n_frames < 0:
        raise ValueError(f"need sample_rate > 0, fps > 0, n_frames >= 0; got {sample_rate}, {fps}")
    bounds = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    bounds = np.minimum(bounds, len(audio))
    count = np.diff(bounds)
    energy = np.diff(_energy_at(audio, bounds))
    rms = np.sqrt(np.divide(energy, count, out=np.zeros(n_frames), where=count > 0).clip(0))
    peak = rms.max(initial=0.0)
    if peak < ABS_SILENCE_RMS:
        return np.full(n_frames, _MIN_DB)
    with np.errstate(divide="ignore"):
        level: np.ndarray = np.clip(20.0 * np.log10(rms / peak), _MIN_DB, 0.0)
    return level


def db_to_envelope(level_db: np.ndarray | float, floor_db: float = FLOOR_DB) -> np.ndarray:
    """Maps dB relative to the peak to [0, 1]: 0 dB -> 1, ``floor_db`` and below -> 0, linear."""
    return np.clip(1.0 - np.asarray(level_db, dtype=np.float64) / floor_db, 0.0, 1.0)


def speech_envelope(
    audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, *, floor_db: float = FLOOR_DB
) -> np.ndarray:
    """Per-frame loudness envelope of speech, for correlating with the mouth aperture.

    The :func:`frame_level_db` level mapped by :func:`db_to_envelope` and smoothed with a
    [1/4, 1/2, 1/4] kernel over frames (edges repeated), so it is a frame-rate curve in [0, 1].

    Args:
        audio: (S,) mono waveform in [-1, 1] starting with frame 0.
        sample_rate: audio rate in Hz.
        fps: video frames per second.
        n_frames: T.
        floor_db: level below the loudest frame that maps to 0 (negative dB).

    Returns:
        (T,) float64 in [0, 1], 1 at the loudest frame (before smoothing).
    """
    env = db_to_envelope(frame_level_db(audio, sample_rate, fps, n_frames), floor_db)
    if n_frames < 3:
        return env
    padded = np.concatenate([env[:1], env, env[-1:]])
    smooth: np.ndarray = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return smooth


class AVOffset(NamedTuple):
    """Result of :func:`av_offset` (unpacks as ``offset, confidence, correlations``)."""

    offset_frames: int | None
    """Lag of the best correlation; > 0: the video lags the audio. None if no lag is defined."""
    confidence: float
    """Peak correlation minus the median correlation over lags, in [0, 2]; NaN if undefined."""
    correlations: np.ndarray
    """(2 * max_offset + 1,) Pearson correlation per lag -max_offset..max_offset (NaN: none)."""


def _pearson(a: np.ndarray, b: np.ndarray, min_pairs: int) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_pairs:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def _av_offset_update(
    aperture: np.ndarray, envelope: np.ndarray, max_offset: int, min_pairs: int
) -> np.ndarray:
    """(2 * max_offset + 1,) correlation of ``aperture[t]`` with ``envelope[t - lag]`` per lag."""
    t = len(aperture)
    corr = np.full(2 * max_offset + 1, np.nan)
    for i, lag in enumerate(range(-max_offset, max_offset + 1)):
        if abs(lag) >= t:
            continue
        a, e = (
            (aperture[lag:], envelope[: t - lag]) if lag >= 0 else (aperture[:lag], envelope[-lag:])
        )
        corr[i] = _pearson(a, e, min_pairs)
    return corr


def _av_offset_compute(corr: np.ndarray, max_offset: int) -> AVOffset:
    if not np.isfinite(corr).any():
        return AVOffset(None, float("nan"), corr)
    best = int(np.nanargmax(corr))
    return AVOffset(best - max_offset, float(corr[best] - np.nanmedian(corr)), corr)


def av_offset(
    aperture: np.ndarray, envelope: np.ndarray, *, max_offset: int = 8, min_pairs: int = 10
) -> AVOffset:
    """Audio-video offset by normalised cross-correlation of mouth aperture and speech envelope.

    For each integer lag ``k`` in ``[-max_offset, max_offset]`` the Pearson correlation of the
    pairs ``(aperture[t], envelope[t - k])`` over the frames where both exist and are finite
    (NaN = no face) is computed; lags with fewer than ``min_pairs`` pairs or a constant signal are
    NaN. The offset is the lag of the highest correlation: **positive = video lags audio** (the
    mouth moves after the sound; shift the video earlier by that many frames to fix it), negative
    = video leads. The confidence adapts SyncNet's (median minus minimum of the audio-visual
    distance over offsets) to correlations: peak minus median over lags. A clear single peak gives
    a high confidence; unrelated signals give about ``1.5 / sqrt(T)`` or less.

    Args:
        aperture: (T,) mouth aperture per frame (any scale; NaN allowed).
        envelope: (T,) speech envelope per frame, e.g. :func:`speech_envelope` (NaN allowed).
        max_offset: largest lag searched, frames (>= 0).
        min_pairs: fewest finite pairs for a lag's correlation to count.

    Returns:
        :class:`AVOffset` ``(offset_frames, confidence, correlations)``.

    Example:
        >>> env = np.random.default_rng(0).random(100)
        >>> av_offset(np.roll(env, 3), env).offset_frames  # mouth 3 frames after the sound
        3
    """
    a, e = np.asarray(aperture, np.float64), np.asarray(envelope, np.float64)
    if a.ndim != 1 or a.shape != e.shape:
        raise ValueError(f"aperture and envelope must be (T,) alike, got {a.shape}, {e.shape}")
    if max_offset < 0 or min_pairs < 2:
        raise ValueError(f"need max_offset >= 0 and min_pairs >= 2, got {max_offset}, {min_pairs}")
    return _av_offset_compute(_av_offset_update(a, e, max_offset, min_pairs), max_offset)


@dataclass
class Pause:
    """One pause in the speech and the mouth aperture in it.

    Attributes:
        start_frame: first silent frame.
        end_frame: one past the last silent frame.
        scored: (first, one past last) frames scored, the pause minus the margins.
        max_aperture: largest finite aperture over the scored frames (NaN if none is finite).
        closed: ``max_aperture < threshold`` (False when no scored frame has a face).
    """

    start_frame: int
    end_frame: int
    scored: tuple[int, int]
    max_aperture: float
    closed: bool


@dataclass
class PauseClosure:
    """Result of :func:`pause_closure`.

    Attributes:
        pauses: every pause of at least ``min_pause_s``, in time order.
        all_closed: every pause is closed (True when there is no pause: check ``pauses``).
        closed_fraction: fraction of scored pause frames (with a face) whose aperture is below
            the threshold, in [0, 1]; NaN when there is none.
    """

    pauses: list[Pause] = field(default_factory=list)
    all_closed: bool = True
    closed_fraction: float = float("nan")

    @property
    def max_aperture(self) -> float:
        """Largest aperture over all pauses (NaN without pauses)."""
        vals = [p.max_aperture for p in self.pauses if np.isfinite(p.max_aperture)]
        return max(vals) if vals else float("nan")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a (T,) bool array, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def pause_closure(
    aperture: np.ndarray,
    level: np.ndarray,
    fps: float,
    *,
    sample_rate: int | None = None,
    min_pause_s: float = 0.3,
    threshold: float = 0.06,
    silence_db: float = -35.0,
    margin_s: float = 0.08,
) -> PauseClosure:
    """Whether the mouth is closed during the pauses of the speech.

    A pause is a run of at least ``min_pause_s`` of frames whose audio level is more than
    ``-silence_db`` dB below the loudest frame. Each pause is shrunk by ``round(margin_s * fps)``
    frames at each end that borders speech (the mouth takes a few frames to close and to open;
    ends at the clip's start or end are not shrunk). A pause is closed when its largest aperture
    over the remaining frames is below ``threshold``.

    Args:
        aperture: (T,) mouth aperture per frame (:func:`~evals.functional.mouth.mouth_aperture`),
            NaN where no face.
        level: (T,) audio level per frame in dB relative to the loudest frame
            (:func:`frame_level_db`), or, with ``sample_rate``, the (S,) mono waveform.
        fps: video frames per second.
        sample_rate: set when ``level`` is a waveform, its rate in Hz.
        min_pause_s: shortest silence that counts as a pause, seconds.
        threshold: aperture below which the mouth counts as closed.
        silence_db: frames at or below this level (dB, negative) are silent.
        margin_s: transition time excluded at each speech-side end of a pause, seconds.

    Returns:
        :class:`PauseClosure`.

    Example:
        >>> level = np.r_[np.zeros(10), np.full(10, -60.0), np.zeros(10)]
        >>> ap = np.r_[np.full(10, 0.3), np.full(10, 0.01), np.full(10, 0.3)]
        >>> r = pause_closure(ap, level, 25.0)
        >>> len(r.pauses), r.all_closed, r.pauses[0].scored
        (1, True, (12, 18))
    """
    ap = np.asarray(aperture, np.float64)
    t = len(ap)
    if sample_rate is not None:
        level = frame_level_db(level, sample_rate, fps, t)
    lv = np.asarray(level, np.float64)
    if ap.ndim != 1 or lv.shape != ap.shape:
        raise ValueError(f"aperture and level must be (T,) alike, got {ap.shape}, {lv.shape}")
    margin = round(margin_s * fps)
    pauses, closed_frames, scored_frames = [], 0, 0
    for start, end in _runs(lv <= silence_db):
        if (end - start) / fps < min_pause_s - 1e-9:
            continue
        lo = start + (margin if start > 0 else 0)
        hi = end - (margin if end < t else 0)
        vals = ap[lo:hi][np.isfinite(ap[lo:hi])] if hi > lo else np.zeros(0)
        peak = float(vals.max()) if vals.size else float("nan")
        pauses.append(
            Pause(start, end, (lo, max(hi, lo)), peak, bool(vals.size and peak < threshold))
        )
        closed_frames += int((vals < threshold).sum())
        scored_frames += vals.size
    frac = closed_frames / scored_frames if scored_frames else float("nan")
    result = PauseClosure(pauses, all(p.closed for p in pauses), frac)
    log.debug("pause closure: %d pauses, all closed: %s", len(pauses), result.all_closed)
    return result


class SpeechMotion(NamedTuple):
    """Result of :func:`speech_motion`."""

    speech_mean: float
    """Mean aperture over speech frames (NaN if none)."""
    silence_mean: float
    """Mean aperture over silent frames (NaN if none)."""
    n_speech: int
    """Speech frames with a face."""
    n_silence: int
    """Silent frames with a face."""


def speech_motion(
    aperture: np.ndarray,
    envelope: np.ndarray,
    *,
    silence_db: float = -35.0,
    floor_db: float = FLOOR_DB,
) -> SpeechMotion:
    """Mean mouth aperture while speaking versus while silent (the mouth should move in speech).

    Speech frames are those whose envelope is above ``db_to_envelope(silence_db, floor_db)``
    (0.42 with the defaults), the level :func:`pause_closure` calls silence.

    Args:
        aperture: (T,) mouth aperture, NaN where no face.
        envelope: (T,) :func:`speech_envelope` made with the same ``floor_db``.
        silence_db: silence level, dB relative to the loudest frame.
        floor_db: the envelope's floor, dB.

    Returns:
        :class:`SpeechMotion` ``(speech_mean, silence_mean, n_speech, n_silence)``.

    Example:
        >>> speech_motion(np.array([0.3, 0.2, 0.0, 0.02]), np.array([1.0, 0.9, 0.0, 0.1]))[:2]
        (0.25, 0.01)
    """
    ap, env = np.asarray(aperture, np.float64), np.asarray(envelope, np.float64)
    if ap.ndim != 1 or ap.shape != env.shape:
        raise ValueError(f"aperture and envelope must be (T,) alike, got {ap.shape}, {env.shape}")
    ok = np.isfinite(ap) & np.isfinite(env)
    speech = ok & (env > float(db_to_envelope(silence_db, floor_db)))
    silent = ok & ~speech
    return SpeechMotion(
        _masked_mean(ap, speech), _masked_mean(ap, silent), int(speech.sum()), int(silent.sum())
    )


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> float:
    return float(x[mask].mean()) if mask.any() else float("nan")
