"""Landmark A/V offset over a batch of clips: mouth aperture vs speech envelope (per-clip lag).

Per clip, :func:`evals.functional.lipsync.av_offset` finds the lag of the highest correlation of
the aperture with the envelope (> 0: the video lags the audio) and its confidence (peak minus
median correlation over lags). Over a batch the per-clip values are averaged, counting only clips
with a defined lag. This is a landmark proxy for SyncNet's offset/LSE-C, not LSE itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_clips
from evals.functional.lipsync import _av_offset_compute, _av_offset_update

__all__ = ["lipsync_offset"]


def _lipsync_offset_update(
    aperture: Any, envelope: Any, max_offset: int, min_pairs: int
) -> tuple[float, float, float, float, int, int]:
    """Sums over clips: (offset, |offset|, confidence, correlation at lag 0, clips with a lag,
    clips)."""
    aps = as_clips(aperture, 1, "aperture")
    envs = as_clips(envelope, 1, "envelope")
    if len(aps) != len(envs):
        raise ValueError(f"aperture has {len(aps)} clips but envelope has {len(envs)}")
    s_off = s_abs = s_conf = s_zero = 0.0
    n_sync = 0
    for a, e in zip(aps, envs, strict=True):
        if a.shape != e.shape:
            raise ValueError(f"aperture and envelope differ in length: {a.shape} vs {e.shape}")
        corr = _av_offset_update(a, e, max_offset, min_pairs)
        result = _av_offset_compute(corr, max_offset)
        if result.offset_frames is None:
            continue
        n_sync += 1
        s_off += result.offset_frames
        s_abs += abs(result.offset_frames)
        s_conf += result.confidence
        s_zero += float(np.nan_to_num(corr[max_offset], nan=0.0))
    return s_off, s_abs, s_conf, s_zero, n_sync, len(aps)


def _lipsync_offset_compute(
    s_off: float, s_abs: float, s_conf: float, s_zero: float, n_sync: float, n_clips: float
) -> dict[str, float]:
    """Means over clips with a defined lag; NaN when there is none."""
    if n_sync <= 0:
        nan = float("nan")
        return {
            "offset": nan,
            "offset_abs": nan,
            "confidence": nan,
            "corr_at_0": nan,
            "defined": 0.0 if n_clips else nan,
        }
    return {
        "offset": s_off / n_sync,
        "offset_abs": s_abs / n_sync,
        "confidence": s_conf / n_sync,
        "corr_at_0": s_zero / n_sync,
        "defined": n_sync / n_clips,
    }


def lipsync_offset(
    aperture: Any, envelope: Any, *, max_offset: int = 8, min_pairs: int = 10
) -> dict[str, float]:
    """Mean landmark A/V offset, its absolute value and confidence over a batch of clips.

    Args:
        aperture: (B, T) mouth aperture per frame (NaN where no face), or B (T_i,) arrays.
        envelope: (B, T) speech envelope per frame in [0, 1], same lengths as ``aperture``.
        max_offset: largest lag searched, frames (>= 0).
        min_pairs: fewest finite frame pairs for a lag to count (>= 2).

    Returns:
        ``offset`` mean lag in frames (> 0: video lags audio), ``offset_abs`` mean |lag|,
        ``confidence`` mean peak-minus-median correlation in [0, 2], ``corr_at_0`` mean
        correlation at lag 0 in [-1, 1] (the sync as delivered, whatever the best lag), and
        ``defined`` the fraction of clips with a lag.

    Example:
        >>> env = np.random.default_rng(0).random((2, 60))
        >>> lipsync_offset(np.roll(env, 2, axis=1), env)["offset"]
        2.0
    """
    if max_offset < 0 or min_pairs < 2:
        raise ValueError(f"need max_offset >= 0 and min_pairs >= 2, got {max_offset}, {min_pairs}")
    return _lipsync_offset_compute(
        *_lipsync_offset_update(aperture, envelope, max_offset, min_pairs)
    )
