"""AvatarIdentity: everything a renderer needs to animate one companion, derived from its images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AvatarIdentity:
    """A companion's animatable identity at one render size.

    Attributes:
        portrait: (S, S, 3) uint8 RGB, the chosen source image aligned so the face is centred,
            upright and at a fixed scale.
        landmarks: (478, 3) float32 MediaPipe face-mesh points in portrait pixels
            (x right, y down, z towards the camera negative, scaled like x).
        triangles: (F, 3) int32 vertex indices of the face-mesh triangulation into ``landmarks``.
        masks: name -> (S, S) float32 in [0, 1]: ``face``, ``mouth``, ``eye_l``, ``eye_r``.
        blendshapes: MediaPipe's 52 blendshape scores for the source image.
        head_pose: (yaw, pitch, roll) of the source face in degrees.
        source_index: index of the chosen image in the companion's image list.
        source_path: that image's path (or ``"<embedded:astronaut>"``).
        selection: per-image scores and reasons, in image order (for logging and notebooks).
        key: cache key (hash of the image bytes and the derivation settings).
    """

    portrait: np.ndarray
    landmarks: np.ndarray
    triangles: np.ndarray
    masks: dict[str, np.ndarray]
    blendshapes: dict[str, float] = field(default_factory=dict)
    head_pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source_index: int = 0
    source_path: str = ""
    selection: list[dict] = field(default_factory=list)
    key: str = ""

    @property
    def size(self) -> int:
        """Render size S in pixels (the portrait is S x S)."""
        return int(self.portrait.shape[0])

    @property
    def eye_distance(self) -> float:
        """Distance between the outer eye corners (landmarks 33 and 263), pixels."""
        return float(np.linalg.norm(self.landmarks[33, :2] - self.landmarks[263, :2]))
