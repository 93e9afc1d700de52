"""MotionTrack: per-frame motion channels at a fixed fps, saved and loaded as npz."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import MotionTrackError

MOUTH_CHANNELS = (
    "jaw_open",  # 0..1: jaw drop; 1 is a wide-open "ah" (about 28% of the eye-corner distance)
    "lip_open",  # 0..1: lip separation on top of the jaw (teeth apart, lips parted)
    "mouth_stretch",  # -1..1: corners pulled out (+, "ee") or in (-)
    "lip_round",  # 0..1: rounding/protrusion ("oo", "w"); narrows and rounds the opening
    "lip_press",  # 0..1: lips pressed together (m, b, p); overrides opening
    "lower_lip_tuck",  # 0..1: lower lip raised under the upper teeth (f, v)
    "upper_lip_raise",  # 0..1: upper lip lifted, upper teeth shown
)
EYE_CHANNELS = (
    "blink_l",  # 0..1: left-eye (image left) closure, 1 fully closed
    "blink_r",  # 0..1: right-eye closure
    "gaze_x",  # -1..1: iris shift, fraction of the eye half-width; 0 looks at the camera
    "gaze_y",  # -1..1: iris shift, fraction of the eye half-height
)
HEAD_CHANNELS = (
    "head_yaw",  # degrees, + turns to image right
    "head_pitch",  # degrees, + nods down
    "head_roll",  # degrees, + tilts clockwise in the image
)
EXPRESSION_CHANNELS = (
    "brow_raise",  # -1..1: brows up (+) or down/frown (-)
    "smile",  # 0..1: lip corners up and out
    "cheek_raise",  # 0..1
    "eye_squint",  # 0..1: lower lids up
)
CHANNELS: tuple[str, ...] = MOUTH_CHANNELS + EYE_CHANNELS + HEAD_CHANNELS + EXPRESSION_CHANNELS
"""Channels every renderer understands, in canonical order."""


@dataclass
class MotionTrack:
    """Dense motion: ``values[t, c]`` is channel ``channels[c]`` at time ``t / fps`` seconds.

    Attributes:
        values: float32 array of shape (T, C).
        channels: channel names, length C (see :data:`CHANNELS`; extra names such as viseme
            weights ``viseme.<name>`` are allowed and ignored by renderers).
        fps: frames per second.
    """

    values: np.ndarray
    channels: tuple[str, ...]
    fps: float

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        self.channels = tuple(self.channels)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channels):
            raise MotionTrackError(
                f"MotionTrack: values of shape {self.values.shape} do not match "
                f"{len(self.channels)} channels"
            )
        if len(set(self.channels)) != len(self.channels):
            raise MotionTrackError("MotionTrack: duplicate channel names")
        if not self.fps > 0:
            raise MotionTrackError(f"MotionTrack: fps must be positive, got {self.fps}")
        if not np.all(np.isfinite(self.values)):
            raise MotionTrackError("MotionTrack: values contain NaN or infinity")

    @classmethod
    def zeros(cls, n_frames: int, fps: float, channels: Sequence[str] = CHANNELS) -> MotionTrack:
        """A rest track: every channel 0 for ``n_frames`` frames.

        >>> MotionTrack.zeros(3, 25).values.shape[0]
        3
        """
        return cls(np.zeros((n_frames, len(channels)), np.float32), tuple(channels), fps)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered: ``len(self) / fps``."""
        return len(self) / self.fps

    def index(self, name: str) -> int:
        try:
            return self.channels.index(name)
        except ValueError:
            raise MotionTrackError(
                f"MotionTrack: unknown channel {name!r}; has {', '.join(self.channels)}"
            ) from None

    def __getitem__(self, name: str) -> np.ndarray:
        """The (T,) series of one channel (a view)."""
        return self.values[:, self.index(name)]

    def __contains__(self, name: object) -> bool:
        return name in self.channels

    def get(self, name: str, default: float = 0.0) -> np.ndarray:
        """The (T,) series of ``name``, or a constant ``default`` series when absent."""
        if name in self.channels:
            return self[name]
        return np.full(len(self), default, np.float32)

    def set(self, name: str, series: np.ndarray) -> None:
        """Write a (T,) series into an existing channel."""
        self.values[:, self.index(name)] = np.asarray(series, np.float32)

    def slice(self, start: int, stop: int) -> MotionTrack:
        """Frames ``[start, stop)`` as a new track (copy)."""
        return MotionTrack(self.values[start:stop].copy(), self.channels, self.fps)

    def select(self, channels: Sequence[str]) -> MotionTrack:
        """Only ``channels`` (absent ones filled with 0), in the given order."""
        cols = [self.get(c) for c in channels]
        values = np.stack(cols, axis=1) if cols else np.zeros((len(self), 0), np.float32)
        return MotionTrack(values, tuple(channels), self.fps)

    @staticmethod
    def concatenate(parts: Sequence[MotionTrack]) -> MotionTrack:
        """Join tracks with identical channels and fps along time."""
        if not parts:
            raise MotionTrackError("MotionTrack.concatenate: nothing to join")
        first = parts[0]
        for p in parts[1:]:
            if p.channels != first.channels or p.fps != first.fps:
                raise MotionTrackError("MotionTrack.concatenate: channels or fps differ")
        return MotionTrack(np.concatenate([p.values for p in parts]), first.channels, first.fps)

    def save(self, path: str | Path) -> Path:
        """Write ``values``, ``channels`` and ``fps`` to an ``.npz`` file; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp, values=self.values, channels=np.array(self.channels), fps=np.float64(self.fps)
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MotionTrack:
        """Read a track written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["values"], tuple(str(c) for c in z["channels"]), float(z["fps"]))
        except (OSError, KeyError, ValueError) as e:
            raise MotionTrackError(f"MotionTrack: cannot load {path}: {e}") from e
