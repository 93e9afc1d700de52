"""Identity: faces and landmarks (MediaPipe), source choice, alignment, masks, the cache."""

from avatar.identity.derive import derive_identity
from avatar.identity.landmarker import FaceObservation, FaceTracker
from avatar.identity.search import detect_faces
from avatar.identity.topology import mesh_triangles
from avatar.identity.types import AvatarIdentity

__all__ = [
    "AvatarIdentity",
    "FaceObservation",
    "FaceTracker",
    "derive_identity",
    "detect_faces",
    "mesh_triangles",
]
