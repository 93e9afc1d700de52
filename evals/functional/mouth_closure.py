"""Mouth closure in the pauses of speech over a batch of clips (pooled over pauses and frames).

Pauses and their scored frames are those of :func:`evals.functional.lipsync.pause_closure`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_clips, per_clip_scalars
from evals.functional.lipsync import pause_closure

__all__ = ["mouth_closure"]


def _mouth_closure_update(
    aperture: Any,
    level_db: Any,
    fps: Any,
    *,
    min_pause_s: float,
    threshold: float,
    silence_db: float,
    margin_s: float,
) -> tuple[float, float, float, float, float]:
    """Sums: (closed frames, scored frames, closed pauses, pauses, sum of pause max apertures)."""
    aps = as_clips(aperture, 1, "aperture")
    lvls = as_clips(level_db, 1, "level_db")
    if len(aps) != len(lvls):
        raise ValueError(f"aperture has {len(aps)} clips but level_db has {len(lvls)}")
    rates = per_clip_scalars(fps, len(aps), "fps")
    closed = scored = n_closed = n_pauses = s_max = 0.0
    for a, lv, rate in zip(aps, lvls, rates, strict=True):
        result = pause_closure(
            a,
            lv,
            float(rate),
            min_pause_s=min_pause_s,
            threshold=threshold,
            silence_db=silence_db,
            margin_s=margin_s,
        )
        for p in result.pauses:
            vals = a[p.scored[0] : p.scored[1]]
            vals = vals[np.isfinite(vals)]
            closed += float((vals < threshold).sum())
            scored += vals.size
            if vals.size:
                n_pauses += 1
                n_closed += p.closed
                s_max += p.max_aperture
    return closed, scored, n_closed, n_pauses, s_max


def _mouth_closure_compute(
    closed: float, scored: float, n_closed: float, n_pauses: float, s_max: float
) -> dict[str, float]:
    nan = float("nan")
    return {
        "closed_fraction": closed / scored if scored else nan,
        "pauses_closed": n_closed / n_pauses if n_pauses else nan,
        "max_aperture": s_max / n_pauses if n_pauses else nan,
        "n_pauses": float(n_pauses),
    }


def mouth_closure(
    aperture: Any,
    level_db: Any,
    fps: Any,
    *,
    min_pause_s: float = 0.3,
    threshold: float = 0.06,
    silence_db: float = -35.0,
    margin_s: float = 0.08,
) -> dict[str, float]:
    """Whether mouths close in the pauses of speech, pooled over a batch of clips.

    Args:
        aperture: (B, T) mouth aperture (NaN where no face), or B (T_i,) arrays.
        level_db: (B, T) audio level per frame, dB relative to the clip's loudest frame
            (:func:`~evals.functional.lipsync.frame_level_db`), same lengths.
        fps: frames per second, a scalar or (B,).
        min_pause_s: shortest silence that counts as a pause, seconds.
        threshold: aperture below which the mouth is closed.
        silence_db: level at or below which a frame is silent, dB (negative).
        margin_s: transition time excluded at each speech-side end of a pause, seconds.

    Returns:
        ``closed_fraction`` closed scored pause frames / scored pause frames in [0, 1],
        ``pauses_closed`` fraction of pauses whose largest aperture is below ``threshold``,
        ``max_aperture`` mean over pauses of the largest aperture, ``n_pauses`` pauses scored
        (NaN fractions when there is no pause).

    Example:
        >>> level = np.r_[np.zeros(10), np.full(10, -60.0), np.zeros(10)]
        >>> ap = np.r_[np.full(10, 0.3), np.full(10, 0.01), np.full(10, 0.3)]
        >>> mouth_closure(ap, level, 25.0)["closed_fraction"]
        1.0
    """
    return _mouth_closure_compute(
        *_mouth_closure_update(
            aperture,
            level_db,
            fps,
            min_pause_s=min_pause_s,
            threshold=threshold,
            silence_db=silence_db,
            margin_s=margin_s,
        )
    )
