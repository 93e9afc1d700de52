"""Per-frame MediaPipe face landmarks of a video, as dense arrays for the eval metrics.

Runs :class:`avatar.identity.landmarker.FaceTracker` (VIDEO mode: detection plus tracking) over
every frame as it arrives (frames may come from a decoder and are not kept) and stacks the
results into a :class:`FaceTrack` with NaN where no face was found, so that the functional
metrics (:mod:`evals.functional.mouth`, ``blink``, ``lipsync``) take plain ``(T, 478, 3)`` arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from avatar.identity.landmarker import FaceObservation, FaceTracker
from avatar.identity.topology import NUM_LANDMARKS

log = logging.getLogger(__name__)

__all__ = ["FaceTrack", "track_video"]

NUM_BLENDSHAPES = 52
"""Blendshape scores per face from the FaceLandmarker (``_neutral`` plus 51 ARKit-style ones)."""


@dataclass
class FaceTrack:
    """Landmarks, blendshapes and detection flags of one face over a clip.

    Attributes:
        landmarks: (T, 478, 3) float32 in pixels of the frames (x right, y down, z relative depth
            in x units, see :class:`~avatar.identity.landmarker.FaceObservation`); NaN in frames
            without a face.
        found: (T,) bool, True where a face was found.
        blendshapes: (T, B) float32 scores in [0, 1] (B = ``len(blendshape_names)``, 52 for the
            bundled model); NaN in frames without a face.
        blendshape_names: the B blendshape names, column order of ``blendshapes``.
        fps: frames per second of the clip.
        pose: (T, 3) float32 head pose (yaw, pitch, roll) in degrees from MediaPipe's facial
            transformation matrix (:func:`~avatar.identity.landmarker.pose_from_matrix`); NaN in
            frames without a face (all NaN when not given).
    """

    landmarks: np.ndarray
    found: np.ndarray
    blendshapes: np.ndarray
    blendshape_names: list[str] = field(default_factory=list)
    fps: float = 25.0
    pose: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.found)
        if self.pose is None:
            self.pose = np.full((t, 3), np.nan, np.float32)
        if self.pose.shape != (t, 3):
            raise ValueError(f"pose must be ({t}, 3), got {self.pose.shape}")
        if self.landmarks.shape != (t, NUM_LANDMARKS, 3):
            raise ValueError(
                f"landmarks must be ({t}, {NUM_LANDMARKS}, 3), got {self.landmarks.shape}"
            )
        if self.blendshapes.shape != (t, len(self.blendshape_names)):
            b = len(self.blendshape_names)
            raise ValueError(f"blendshapes must be ({t}, {b}), got {self.blendshapes.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return len(self.found)

    @property
    def detection_rate(self) -> float:
        """Fraction of frames with a face, in [0, 1] (0.0 for an empty clip)."""
        return float(np.mean(self.found)) if self.n_frames else 0.0

    def blendshape(self, name: str) -> np.ndarray:
        """(T,) float32 scores of one blendshape (e.g. ``"jawOpen"``), NaN where no face."""
        try:
            return self.blendshapes[:, self.blendshape_names.index(name)]
        except ValueError:
            raise KeyError(f"unknown blendshape {name!r}; known: {self.blendshape_names}") from None


def track_video(
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    min_confidence: float = 0.5,
    expected_frames: int = 0,
) -> FaceTrack:
    """Tracks the face in every frame of a clip, one frame at a time.

    Results go straight into preallocated arrays (no per-frame objects are kept), so a long
    clip costs its landmarks (about 6 kB a frame) and nothing else.

    Args:
        frames: (H, W, 3) uint8 RGB frames in order: a (T, H, W, 3) array or any iterable (e.g.
            a :class:`~avatar.media.mp4_reader.VideoStream`); only the current frame is held.
        fps: frames per second; frame i is given to MediaPipe at ``round(i * 1000 / fps)`` ms
            (made strictly increasing above 1 kHz, as
            :func:`~avatar.identity.landmarker.track_frames` does).
        min_confidence: detection, presence and tracking thresholds of the tracker, in [0, 1].
        expected_frames: T if known (the arrays are sized for it; more frames grow them).

    Returns:
        The :class:`FaceTrack` (NaN rows where no face was found).
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    size = expected_frames or (len(frames) if hasattr(frames, "__len__") else 0) or 256
    rows = _Rows(size)
    with FaceTracker(min_confidence=min_confidence) as tracker:
        last_ts = -1
        for i, frame in enumerate(frames):
            ts = max(round(i * 1000 / fps), last_ts + 1)
            last_ts = ts
            rows.add(tracker.track(np.asarray(frame), ts))
    track = rows.track(float(fps))
    log.debug("tracked %d frames: face in %.1f%%", track.n_frames, 100 * track.detection_rate)
    return track


class _Rows:
    """Per-frame tracking results in arrays grown by half when full (NaN rows: no face)."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.landmarks = np.full((capacity, NUM_LANDMARKS, 3), np.nan, np.float32)
        self.pose = np.full((capacity, 3), np.nan, np.float32)
        self.found = np.zeros(capacity, bool)
        self.names: list[str] = []  # blendshape columns: the first face's names
        self.blend = np.full((capacity, 0), np.nan, np.float32)

    def _grow(self) -> None:
        extra = max(256, len(self.found) // 2)
        self.landmarks = np.concatenate(
            [self.landmarks, np.full((extra, NUM_LANDMARKS, 3), np.nan, np.float32)]
        )
        self.pose = np.concatenate([self.pose, np.full((extra, 3), np.nan, np.float32)])
        self.found = np.concatenate([self.found, np.zeros(extra, bool)])
        self.blend = np.concatenate(
            [self.blend, np.full((extra, self.blend.shape[1]), np.nan, np.float32)]
        )

    def add(self, face: FaceObservation | None) -> None:
        if self.n == len(self.found):
            self._grow()
        i, self.n = self.n, self.n + 1
        if face is None:
            return
        self.found[i] = True
        self.landmarks[i] = face.landmarks
        self.pose[i] = face.pose
        if face.blendshapes and not self.names:
            self.names = list(face.blendshapes)
            self.blend = np.full((len(self.found), len(self.names)), np.nan, np.float32)
        if self.names and face.blendshapes:
            self.blend[i] = [face.blendshapes.get(k, np.nan) for k in self.names]

    def track(self, fps: float) -> FaceTrack:
        n = self.n
        return FaceTrack(
            self.landmarks[:n],
            self.found[:n],
            self.blend[:n],
            self.names,
            fps,
            self.pose[:n],
        )
