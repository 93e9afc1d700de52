"""Per-clip features the metrics read: tracked landmarks, mouth/eye curves, audio envelope, video.

:func:`extract_features` measures one clip once (MediaPipe tracking is the expensive part) and
returns :class:`ClipFeatures`, whose :meth:`~ClipFeatures.inputs` are named like the metrics'
``update`` arguments (``aperture``, ``envelope``, ``landmarks``, ``video``, ...) as batches of
one clip, so a suite can feed every metric by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from evals.functional.lipsync import frame_level_db, speech_envelope
from evals.functional.mouth import eye_openness, mouth_aperture
from evals.landmarks import FaceTrack, track_video

log = logging.getLogger(__name__)

__all__ = ["ClipFeatures", "extract_features", "static_mask"]


@dataclass
class ClipFeatures:
    """What the metrics need from one clip.

    Attributes:
        fps: frames per second.
        frames: (T, H, W, 3) uint8 RGB.
        audio: (S,) float32 mono in [-1, 1] from frame 0, at ``sample_rate`` Hz.
        sample_rate: audio rate in Hz.
        track: the face track (landmarks, pose, blendshapes).
        aperture: (T,) mouth aperture (NaN where no face).
        envelope: (T,) speech envelope in [0, 1].
        level_db: (T,) audio level per frame, dB relative to the loudest frame.
        eye_openness: (T, 2) lid opening per eye (NaN where no face).
        static_mask: (H, W) bool, True away from the face (the background).
        references: the companion's reference images ((H, W, 3) uint8), if known.
        timings: speed inputs when the clip was rendered here (``total_s``, ``first_frame_s``,
            ``audio_s``, ``n_frames``).
    """

    fps: float
    frames: np.ndarray
    audio: np.ndarray
    sample_rate: int
    track: FaceTrack
    aperture: np.ndarray
    envelope: np.ndarray
    level_db: np.ndarray
    eye_openness: np.ndarray
    static_mask: np.ndarray
    references: list[np.ndarray] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def inputs(self) -> dict[str, Any]:
        """Metric inputs by ``update`` argument name, each a batch of one clip (absent: None)."""
        video = torch.from_numpy(self.frames).permute(0, 3, 1, 2)[None]  # (1, T, 3, H, W) view
        out: dict[str, Any] = {
            "fps": self.fps,
            "video": video,
            "landmarks": torch.from_numpy(self.track.landmarks)[None],
            "pose": torch.from_numpy(np.asarray(self.track.pose))[None],
            "aperture": torch.from_numpy(self.aperture)[None],
            "envelope": torch.from_numpy(self.envelope)[None],
            "level_db": torch.from_numpy(self.level_db)[None],
            "eye_openness": torch.from_numpy(self.eye_openness)[None],
            "static_mask": torch.from_numpy(self.static_mask)[None],
            "references": self.references or None,
            "audio": torch.from_numpy(self.audio)[None],  # (1, S) from frame 0
            "sample_rate": self.sample_rate,
        }
        for key in ("total_s", "first_frame_s", "audio_s", "n_frames"):
            value = self.timings.get(key)
            out[key] = None if value is None else torch.tensor([float(value)], dtype=torch.float64)
        return out


def static_mask(landmarks: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """Pixels away from the face over the whole clip: the background that should not change.

    The union over frames of each face's landmark box, grown by ``margin`` times its size on
    the left, right and top, and extended to the bottom of the frame (neck and shoulders may
    move with the head), is excluded.

    Args:
        landmarks: (T, P, 2|3) landmarks in pixels, NaN rows where no face.
        shape: (H, W) of the frames.
        margin: growth of the face box on each side, as a fraction of its width/height.

    Returns:
        (H, W) bool, True for static pixels (all True when no face was found).

    Example:
        >>> lm = np.zeros((1, 478, 3)); lm[0, :, 0] = [40] * 239 + [60] * 239; lm[0, :, 1] = 50
        >>> m = static_mask(lm, (100, 100), margin=0.0); bool(m[50, 50]), bool(m[90, 10])
        (False, True)
    """
    h, w = shape
    mask = np.ones((h, w), bool)
    xy = np.asarray(landmarks, np.float64)[..., :2]
    ok = np.isfinite(xy).all(axis=(1, 2))
    for pts in xy[ok]:
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        gx, gy = margin * (x1 - x0), margin * (y1 - y0)
        c0, c1 = int(max(np.floor(x0 - gx), 0)), int(min(np.ceil(x1 + gx) + 1, w))
        r0 = int(max(np.floor(y0 - gy), 0))
        mask[r0:, c0:c1] = False
    return mask


def extract_features(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    *,
    references: Sequence[np.ndarray] | None = None,
    timings: Mapping[str, float] | None = None,
    floor_db: float,
    min_confidence: float,
    mask_margin: float,
) -> ClipFeatures:
    """Tracks the face in a clip and derives every per-frame curve the metrics use.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        fps: frames per second.
        audio: (S,) mono audio from frame 0 (empty: silent clip).
        sample_rate: audio rate in Hz (any value when ``audio`` is empty).
        references: the companion's reference images, (H, W, 3) uint8 each.
        timings: speed inputs (``total_s``, ``first_frame_s``, ``audio_s``, ``n_frames``).
        floor_db: envelope floor, dB below the loudest frame.
        min_confidence: face tracker thresholds, in [0, 1].
        mask_margin: see :func:`static_mask`.

    Returns:
        The :class:`ClipFeatures`.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    n = len(frames)
    track = track_video(frames, fps, min_confidence=min_confidence)
    audio = np.asarray(audio, np.float32).reshape(-1)
    if audio.size == 0 or sample_rate <= 0:
        audio, sample_rate = np.zeros(round(n / fps * 16000), np.float32), 16000
    feats = ClipFeatures(
        fps=float(fps),
        frames=frames,
        audio=audio,
        sample_rate=int(sample_rate),
        track=track,
        aperture=mouth_aperture(track.landmarks),
        envelope=speech_envelope(audio, sample_rate, fps, n, floor_db=floor_db),
        level_db=frame_level_db(audio, sample_rate, fps, n),
        eye_openness=eye_openness(track.landmarks),
        static_mask=static_mask(track.landmarks, frames.shape[1:3], mask_margin),
        references=list(references) if references else None,
        timings=dict(timings or {}),
    )
    log.debug("features of %d frames: face in %.0f%%", n, 100 * track.detection_rate)
    return feats
