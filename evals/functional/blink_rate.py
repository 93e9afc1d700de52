"""Blink rate over a batch of clips: blinks detected from eye openness, per minute of video.

Blinks are :func:`evals.functional.blink.detect_blinks` events; the rate pools blinks and
durations over the batch (total blinks / total minutes), so long clips weigh more.
"""

from __future__ import annotations

from typing import Any

from evals.functional._clips import as_clips, per_clip_scalars
from evals.functional.blink import detect_blinks

__all__ = ["blink_rate"]


def _blink_rate_update(
    eye_openness: Any, fps: Any, *, ratio: float, noise_k: float, max_duration_s: float
) -> tuple[float, float, float]:
    """Sums: (blinks, seconds of video, clips)."""
    clips = as_clips(eye_openness, 2, "eye_openness")
    rates = per_clip_scalars(fps, len(clips), "fps")
    blinks = seconds = 0.0
    for x, rate in zip(clips, rates, strict=True):
        events = detect_blinks(
            x, float(rate), ratio=ratio, noise_k=noise_k, max_duration_s=max_duration_s
        )
        blinks += len(events)
        seconds += len(x) / float(rate)
    return blinks, seconds, float(len(clips))


def _blink_rate_compute(blinks: float, seconds: float, n_clips: float) -> dict[str, float]:
    return {
        "rate_per_min": 60.0 * blinks / seconds if seconds > 0 else float("nan"),
        "count": blinks / n_clips if n_clips else float("nan"),
    }


def blink_rate(
    eye_openness: Any,
    fps: Any,
    *,
    ratio: float = 0.6,
    noise_k: float = 4.0,
    max_duration_s: float = 1.0,
) -> dict[str, float]:
    """Blinks per minute over a batch of clips.

    Args:
        eye_openness: (B, T, 2) eye openness per frame and eye
            (:func:`~evals.functional.mouth.eye_openness`, NaN where no face), or B (T_i, 2)
            arrays.
        fps: frames per second, a scalar or (B,).
        ratio: see :func:`~evals.functional.blink.detect_blinks`.
        noise_k: see :func:`~evals.functional.blink.detect_blinks`.
        max_duration_s: longest closure counted as a blink, seconds.

    Returns:
        ``rate_per_min`` total blinks / total minutes (relaxed conversation: about 10-20) and
        ``count`` mean blinks per clip.

    Example:
        >>> import numpy as np
        >>> x = np.full((1500, 2), 0.3); x[100:103] = 0.05; x[700:703] = 0.05
        >>> blink_rate(x, 25.0)["rate_per_min"]
        2.0
    """
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    sums = _blink_rate_update(
        eye_openness, fps, ratio=ratio, noise_k=noise_k, max_duration_s=max_duration_s
    )
    return _blink_rate_compute(*sums)
