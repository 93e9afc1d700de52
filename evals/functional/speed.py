"""Speed of rendering: real-time factor, frames per second and first-frame latency.

Inputs are wall-clock timings per clip as :class:`avatar.pipeline.RenderResult` reports them
(``timings["total"]``: request to last frame, text or audio in; ``timings["first_frame"]``:
request to first frame) with the clip's audio length and frame count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_numpy

__all__ = ["first_frame_latency", "real_time_factor"]


def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.atleast_1d(as_numpy(x))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or (B,), got shape {arr.shape}")
    if (arr < 0).any() or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite and >= 0, got {arr}")
    return arr


def _real_time_factor_update(
    total_s: Any, audio_s: Any, n_frames: Any
) -> tuple[float, float, float]:
    """Sums: (wall seconds, audio seconds, frames)."""
    t, a = _vector(total_s, "total_s"), _vector(audio_s, "audio_s")
    f = _vector(n_frames, "n_frames")
    if not t.shape == a.shape == f.shape:
        raise ValueError(f"total_s, audio_s, n_frames differ: {t.shape} {a.shape} {f.shape}")
    return float(t.sum()), float(a.sum()), float(f.sum())


def _real_time_factor_compute(wall: float, audio: float, frames: float) -> dict[str, float]:
    nan = float("nan")
    return {"rtf": wall / audio if audio > 0 else nan, "fps": frames / wall if wall > 0 else nan}


def real_time_factor(total_s: Any, audio_s: Any, n_frames: Any) -> dict[str, float]:
    """Wall time per second of speech and frames per wall second, pooled over clips.

    Args:
        total_s: (B,) wall seconds per clip, end to end.
        audio_s: (B,) seconds of speech per clip.
        n_frames: (B,) frames per clip.

    Returns:
        ``rtf`` = sum(total_s) / sum(audio_s) (< 1: faster than real time; lower is better) and
        ``fps`` = sum(n_frames) / sum(total_s) (higher is better).

    Example:
        >>> real_time_factor([1.0, 3.0], [2.0, 6.0], [50, 150])
        {'rtf': 0.5, 'fps': 50.0}
    """
    return _real_time_factor_compute(*_real_time_factor_update(total_s, audio_s, n_frames))


def _first_frame_latency_update(first_frame_s: Any) -> tuple[float, float, float]:
    """Sums: (seconds, clips) and the largest latency."""
    x = _vector(first_frame_s, "first_frame_s")
    return float(x.sum()), float(x.size), float(x.max(initial=0.0))


def _first_frame_latency_compute(total: float, n: float, worst: float) -> dict[str, float]:
    nan = float("nan")
    return {"mean": total / n if n else nan, "max": worst if n else nan}


def first_frame_latency(first_frame_s: Any) -> dict[str, float]:
    """Mean and largest time from request to first frame.

    Args:
        first_frame_s: (B,) seconds per clip.

    Returns:
        ``mean`` and ``max`` seconds (lower is better).

    Example:
        >>> first_frame_latency([0.2, 0.4])
        {'mean': 0.30000000000000004, 'max': 0.4}
    """
    return _first_frame_latency_compute(*_first_frame_latency_update(first_frame_s))
