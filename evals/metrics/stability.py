"""Stability and behaviour metrics: aligned landmark jitter, landmark distance, flicker, pose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from evals.functional._clips import as_clips
from evals.functional.flicker import _flicker_compute, _flicker_update
from evals.functional.head_motion import _head_motion_compute, _head_motion_update
from evals.functional.landmark_distance import (
    _landmark_distance_compute,
    _landmark_distance_update,
)
from evals.functional.landmark_jitter import (
    RIGID_POINTS,
    _landmark_jitter_compute,
    _landmark_jitter_update,
)
from evals.metrics.base import EvalMetric

__all__ = ["Flicker", "HeadMotionStats", "LandmarkDistance", "LandmarkJitter"]


def _points(points: Sequence[int] | str | None) -> tuple[int, ...] | None:
    if points is None or points == "all":
        return None
    if points == "rigid":
        return RIGID_POINTS
    if isinstance(points, str):
        raise ValueError(f"points must be 'rigid', 'all', None or indices, got {points!r}")
    out = tuple(int(p) for p in points)
    if not out or min(out) < 0:
        raise ValueError(f"points must be non-empty non-negative indices, got {points!r}")
    return out


class LandmarkJitter(EvalMetric):
    """Aligned landmark jitter, in fractions of the outer-eye-corner distance (lower is steadier).

    Each frame's landmarks are aligned to the clip's mean shape by a similarity transform, and
    the centred second-difference residual is measured; calibrated so that i.i.d. Gaussian noise
    of std ``sigma`` per coordinate reads ``sigma * sqrt(pi / 2)`` (see
    :mod:`evals.functional.landmark_jitter`).

    Inputs to ``update``: ``landmarks`` (B, T, 478, 2|3) in pixels (NaN rows where no face).
    Output: the jitter (a scalar tensor).

    Args:
        points: ``"rigid"`` (upper face oval, eye corners, nose bridge: what speech barely
            moves), ``"all"``, or landmark indices (must include 33 and 263).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> face = torch.rand(478, 2, generator=g) * 100; face[263] = face[33] + torch.tensor([100., 0])
        >>> noisy = face + 0.5 * torch.randn(2, 200, 478, 2, generator=g)  # 0.005 eye distances
        >>> round(LandmarkJitter(points="rigid")(noisy).item() / 0.005 / (torch.pi / 2) ** 0.5, 1)
        1.0
    """  # noqa: E501

    higher_is_better = False
    _sum_states = ("total", "count")

    def __init__(self, *, points: Sequence[int] | str | None, **kwargs: Any) -> None:
        points_ = _points(points)
        super().__init__(**kwargs)
        self.points = points_

    def update(self, landmarks: Any) -> None:
        """Adds clips: (B, T, P, 2|3) landmarks in pixels (not applicable under 3 frames)."""
        self._require_frames(as_clips(landmarks, 3, "landmarks", dtype=None), 3, "landmark jitter")
        self._add(_landmark_jitter_update(landmarks, self.points))

    def compute(self) -> torch.Tensor:
        return torch.tensor(_landmark_jitter_compute(*self._sums()), dtype=torch.float64)


class LandmarkDistance(EvalMetric):
    """Landmark distance (LMD) between a render and its ground truth (lower is better).

    Inputs to ``update``: ``landmarks`` (B, T, P, 2|3) of the render and ``target_landmarks`` of
    the ground truth, in pixels (NaN rows where no face). Output: mean point distance.

    Args:
        points: indices scored (e.g. the lips), ``"all"``/None for every point, or ``"rigid"``.
        normalize: divide by the target's outer-eye-corner distance per frame.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.rand(1, 50, 478, 2, generator=g) * 100
        >>> noisy = a + 0.3 * torch.randn(a.shape, generator=g)
        >>> round(LandmarkDistance()(noisy, a).item() / 0.3 / (torch.pi / 2) ** 0.5, 2)
        1.0
    """

    higher_is_better = False
    _sum_states = ("total", "count")

    def __init__(
        self, *, points: Sequence[int] | str | None = None, normalize: bool = False, **kwargs: Any
    ) -> None:
        points_ = _points(points)
        super().__init__(**kwargs)
        self.points, self.normalize = points_, bool(normalize)

    def update(self, landmarks: Any, target_landmarks: Any) -> None:
        """Adds clips: (B, T, P, 2|3) render and ground-truth landmarks."""
        self._add(
            _landmark_distance_update(landmarks, target_landmarks, self.points, self.normalize)
        )

    def compute(self) -> torch.Tensor:
        return torch.tensor(_landmark_distance_compute(*self._sums()), dtype=torch.float64)


class Flicker(EvalMetric):
    """Mean absolute frame-to-frame luminance change, overall and in static regions.

    Inputs to ``update``: ``video`` (B, T, 3, H, W) uint8 or float in [0, 1], and optionally
    ``static_mask`` (B, H, W) bool, True where nothing should move (the background). Outputs:
    ``overall`` and ``static`` in luminance units [0, 1] per frame (lower is steadier; ``static``
    is NaN without a mask).

    Example:
        >>> v = torch.zeros(1, 3, 3, 4, 4); v[0, 1] += 0.2
        >>> {k: round(x.item(), 3) for k, x in Flicker()(v, torch.ones(1, 4, 4, dtype=torch.bool)).items()}
        {'overall': 0.2, 'static': 0.2}
    """  # noqa: E501

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {"overall": None, "static": False}
    _sum_states = ("s_all", "n_all", "s_static", "n_static")

    def update(self, video: Any, static_mask: Any | None = None) -> None:
        """Adds clips: (B, T, 3, H, W) frames (or streamed clips) and an optional (B, H, W)
        static-region mask (not applicable under 2 frames)."""
        self._require_frames(as_clips(video, 4, "video", dtype=None), 2, "flicker")
        self._add(_flicker_update(video, static_mask))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_flicker_compute(*self._sums()))


class HeadMotionStats(EvalMetric):
    """Spread (std, degrees) of yaw, pitch and roll within a clip, and mean angular speed (deg/s).

    Behaviour statistics with no better direction: a frozen head reads near 0, a restless one
    high. Inputs to ``update``: ``pose`` (B, T, 3) yaw, pitch, roll in degrees (NaN where no
    face) and ``fps``. Outputs: ``yaw_std``, ``pitch_std``, ``roll_std``, ``speed``.

    Example:
        >>> t = torch.arange(100) / 25.0
        >>> pose = torch.stack([2 * torch.sin(2 * torch.pi * t), 0 * t, 0 * t], dim=1)
        >>> round(HeadMotionStats()(pose, 25.0)["yaw_std"].item(), 2)
        1.41
    """

    directions: ClassVar[dict[str, bool | None]] = {
        "yaw_std": None,
        "pitch_std": None,
        "roll_std": None,
        "speed": None,
    }
    _sum_states = ("s_yaw", "s_pitch", "s_roll", "s_speed", "n_clips")

    def update(self, pose: Any, fps: Any) -> None:
        """Adds clips: (B, T, 3) head pose in degrees at ``fps`` (not applicable under 2 frames)."""
        self._require_frames(as_clips(pose, 2, "pose", dtype=None), 2, "head motion")
        std, speed, n = _head_motion_update(pose, fps)
        self._add([*std.tolist(), speed, n])

    def compute(self) -> dict[str, torch.Tensor]:
        yaw, pitch, roll, speed, n = self._sums()
        return self._tensors(_head_motion_compute(np.array([yaw, pitch, roll]), speed, n))
