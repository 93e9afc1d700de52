"""Identity: faces and landmarks (MediaPipe), source choice, alignment, masks, the cache."""

from avatar.identity.derive import derive_identity
from avatar.identity.landmarker import FaceObservation, FaceTracker, detect_faces
from avatar.identity.topology import mesh_triangles
from avatar.identity.types import AvatarIdentity, MouthInterior

__all__ = [
    "AvatarIdentity",
    "FaceObservation",
    "FaceTracker",
    "MouthInterior",
    "derive_identity",
    "detect_faces",
    "mesh_triangles",
]
