"""Head-motion statistics: how much and how fast the head turns (yaw, pitch, roll per frame).

Angles are MediaPipe's head pose (:func:`avatar.identity.landmarker.pose_from_matrix`: yaw > 0
turns to the image right, pitch > 0 nods down, roll > 0 tilts clockwise), in degrees. These are
behaviour statistics to watch over time (a frozen head reads near 0, a restless one high), not
scores with a better direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_clips, per_clip_scalars

__all__ = ["head_motion_stats"]


def _head_motion_update(pose: Any, fps: Any) -> tuple[np.ndarray, float, float]:
    """Sums over clips: ((3,) per-clip std of yaw/pitch/roll, per-clip mean speed, clips)."""
    clips = as_clips(pose, 2, "pose")
    rates = per_clip_scalars(fps, len(clips), "fps")
    s_std = np.zeros(3)
    s_speed = n = 0.0
    for p, rate in zip(clips, rates, strict=True):
        if p.shape[1] != 3:
            raise ValueError(f"pose must be (T, 3) yaw, pitch, roll per clip, got {p.shape}")
        ok = np.isfinite(p).all(axis=1)
        step = np.linalg.norm(np.diff(p, axis=0), axis=1) * rate  # deg/s between frames
        step = step[np.isfinite(step)]
        if ok.sum() < 2 or step.size == 0:
            continue
        s_std += p[ok].std(axis=0)
        s_speed += float(step.mean())
        n += 1
    return s_std, s_speed, n


def _head_motion_compute(s_std: np.ndarray, s_speed: float, n: float) -> dict[str, float]:
    if not n:
        return dict.fromkeys(("yaw_std", "pitch_std", "roll_std", "speed"), float("nan"))
    std = np.asarray(s_std, np.float64) / n
    return {
        "yaw_std": float(std[0]),
        "pitch_std": float(std[1]),
        "roll_std": float(std[2]),
        "speed": s_speed / n,
    }


def head_motion_stats(pose: Any, fps: Any) -> dict[str, float]:
    """Spread and speed of head rotation, averaged over clips.

    Args:
        pose: (B, T, 3) yaw, pitch, roll in degrees per frame (NaN where no face), or B (T_i, 3).
        fps: frames per second, a scalar or (B,).

    Returns:
        ``yaw_std``, ``pitch_std``, ``roll_std``: standard deviation of each angle within a clip
        (degrees), and ``speed``: mean angular speed between consecutive frames (degrees per
        second); each the mean over clips with at least 2 faces (NaN when none).

    Example:
        >>> t = np.arange(100) / 25.0
        >>> pose = np.stack([2 * np.sin(2 * np.pi * t), 0 * t, 0 * t], axis=1)
        >>> out = head_motion_stats(pose, 25.0); round(out["yaw_std"], 2), round(out["speed"], 1)
        (1.41, 7.9)
    """
    return _head_motion_compute(*_head_motion_update(pose, fps))
