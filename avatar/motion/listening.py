"""Listening and idle behaviour: breathing, attentive nods and small reactions to the user."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from avatar.motion.behaviour import silent_spans


def breathing(
    n_frames: int, fps: float, rng: np.random.Generator, *, degrees: float, rate_hz: float
) -> np.ndarray:
    """(T,) head pitch in degrees from a slow breathing cycle (random phase)."""
    t = np.arange(n_frames) / fps
    phase = rng.uniform(0.0, 2.0 * np.pi)
    return (degrees * np.sin(2.0 * np.pi * rate_hz * t + phase)).astype(np.float32)


def phrase_ends(
    user_audio: np.ndarray, sample_rate: int, *, min_pause_s: float, silence_db: float
) -> list[float]:
    """Seconds at which the user stops talking for at least ``min_pause_s``."""
    duration = len(user_audio) / sample_rate
    ends = []
    for start, _end in silent_spans(
        user_audio, sample_rate, min_duration_s=min_pause_s, threshold_db=silence_db
    ):
        if start > 0.0 and start < duration:
            ends.append(start)
    return ends


def listening_motion(
    user_audio: np.ndarray,
    sample_rate: int,
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    *,
    nod_deg: float,
    nod_probability: float,
    reaction: float,
    min_pause_s: float,
    silence_db: float,
) -> dict[str, np.ndarray]:
    """Channel offsets of an attentive listener, each (T,).

    At the end of each of the user's phrases the companion nods (a pitch dip of ``nod_deg``
    over about half a second) with probability ``nod_probability``, and shows a brief
    reaction (brows up, a hint of a smile) of size ``reaction``.
    """
    pitch = np.zeros(n_frames, np.float64)
    brow = np.zeros(n_frames, np.float64)
    smile = np.zeros(n_frames, np.float64)
    for t_end in phrase_ends(
        user_audio, sample_rate, min_pause_s=min_pause_s, silence_db=silence_db
    ):
        k = int(round(t_end * fps))
        if k >= n_frames or rng.random() > nod_probability:
            continue
        pitch[k] += nod_deg * fps * 0.25
        brow[k] += reaction * fps * 0.4
        smile[k] += 0.5 * reaction * fps * 0.4
    pitch = gaussian_filter1d(pitch, 0.1 * fps)
    brow = gaussian_filter1d(brow, 0.2 * fps)
    smile = gaussian_filter1d(smile, 0.2 * fps)
    return {
        "head_pitch": pitch.astype(np.float32),
        "brow_raise": brow.astype(np.float32),
        "smile": smile.astype(np.float32),
    }
