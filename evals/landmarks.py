"""Per-frame MediaPipe face landmarks of a video, as dense arrays for the eval metrics.

Runs :class:`avatar.identity.landmarker.FaceTracker` (VIDEO mode: detection plus tracking) over
every frame and stacks the results into a :class:`FaceTrack` with NaN where no face was found, so
that the functional metrics (:mod:`evals.functional.mouth`, ``blink``, ``lipsync``) take plain
``(T, 478, 3)`` arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from avatar.identity.landmarker import track_frames
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


def track_video(frames: np.ndarray, fps: float, *, min_confidence: float = 0.5) -> FaceTrack:
    """Tracks the face in every frame of a clip.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames (or any sequence of (H, W, 3) uint8 frames).
        fps: frames per second; frame i is given to MediaPipe at ``round(i * 1000 / fps)`` ms.
        min_confidence: detection, presence and tracking thresholds of the tracker, in [0, 1].

    Returns:
        The :class:`FaceTrack` (NaN rows where no face was found).
    """
    faces = track_frames(frames, fps, min_confidence=min_confidence)
    n = len(faces)
    landmarks = np.full((n, NUM_LANDMARKS, 3), np.nan, np.float32)
    found = np.array([f is not None for f in faces], bool)
    shapes: list[dict[str, float]] = [f.blendshapes if f is not None else {} for f in faces]
    pose = np.full((n, 3), np.nan, np.float32)
    for i, face in enumerate(faces):
        if face is not None:
            landmarks[i] = face.landmarks
            pose[i] = face.pose
    names = next((list(s) for s in shapes if s), [])
    blend = np.full((n, len(names)), np.nan, np.float32)
    for i, s in enumerate(shapes):
        if s:
            blend[i] = [s.get(k, np.nan) for k in names]
    track = FaceTrack(landmarks, found, blend, names, float(fps), pose)
    log.debug("tracked %d frames: face in %.1f%%", n, 100 * track.detection_rate)
    return track
