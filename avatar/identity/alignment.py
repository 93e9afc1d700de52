"""Portrait alignment: a similarity transform levelling the eyes, fixing face scale and position.

The chosen face is mapped into an S x S portrait with the midpoint of the outer eye corners
(33, 263) at ``eye_center * S`` and their distance ``eye_distance * S``. With the defaults
(0.5, 0.40) and 0.30 the astronaut's face oval spans 0.25 S to 0.78 S vertically (mesh top of the
forehead to chin) and 0.27 S to 0.73 S horizontally, leaving the hair above and the neck below.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from avatar.identity.landmarker import FaceObservation
from avatar.identity.search import detect_faces
from avatar.identity.topology import EYE_L_OUTER, EYE_R_OUTER

log = logging.getLogger(__name__)

EYE_CENTER = (0.5, 0.40)
"""Default (x, y) of the outer-eye-corner midpoint, as fractions of S."""
EYE_DISTANCE = 0.30
"""Default outer-eye-corner distance as a fraction of S."""
REDETECT_TOLERANCE = 0.1
"""Re-detected eyes must lie within this fraction of the eye distance of where they were put."""


def alignment_matrix(
    landmarks: np.ndarray,
    *,
    size: int,
    eye_center: tuple[float, float] = EYE_CENTER,
    eye_distance: float = EYE_DISTANCE,
) -> np.ndarray:
    """The similarity transform from source pixels to portrait pixels.

    Args:
        landmarks: (478, 2+) landmarks in source pixels (x right, y down).
        size: portrait side S in pixels.
        eye_center: (x, y) target of the outer-eye midpoint, fractions of S.
        eye_distance: target outer-eye distance, fraction of S.

    Returns:
        (2, 3) float64 matrix ``A`` with ``portrait_xy = A @ [x, y, 1]`` (rotation by minus the
        eye-line angle, uniform scale, translation).
    """
    left = np.asarray(landmarks[EYE_L_OUTER, :2], np.float64)
    right = np.asarray(landmarks[EYE_R_OUTER, :2], np.float64)
    delta = right - left
    dist = float(np.hypot(*delta))
    if dist < 1e-6:
        raise ValueError("eye corners coincide; cannot align")
    scale = eye_distance * size / dist
    cos, sin = scale * delta / dist  # rotating by -angle takes the eye line to +x
    rot = np.array([[cos, sin], [-sin, cos]])
    target = np.array(eye_center, np.float64) * size
    shift = target - rot @ ((left + right) / 2)
    return np.hstack([rot, shift[:, None]])


def warp_portrait(image_rgb: np.ndarray, matrix: np.ndarray, *, size: int) -> np.ndarray:
    """Applies an alignment matrix, resampling well both when shrinking and when enlarging.

    ``cv2.warpAffine`` treats INTER_AREA as bilinear, so a downscale is done first with
    ``cv2.resize(INTER_AREA)`` and the remaining near-unit-scale warp uses INTER_CUBIC.
    Borders replicate the edge pixels.

    Args:
        image_rgb: (H, W, 3) uint8 source.
        matrix: (2, 3) source -> portrait transform.
        size: portrait side S.

    Returns:
        (S, S, 3) uint8 portrait.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    mat = np.asarray(matrix, np.float64)
    src = image_rgb
    if scale < 1.0:
        h, w = image_rgb.shape[:2]
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        src = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
        pre = np.diag([w / new_w, h / new_h])  # shrunk pixels -> source pixels
        mat = np.hstack([mat[:, :2] @ pre, mat[:, 2:]])
    out = cv2.warpAffine(
        src, mat, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return np.ascontiguousarray(out)


def transform_landmarks(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Maps (N, 3) landmarks through a similarity transform; z is scaled like x and y."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    out = np.empty_like(landmarks, dtype=np.float32)
    out[:, :2] = landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out[:, 2] = landmarks[:, 2] * scale
    return out


def _closest_face(faces: list[FaceObservation], expected: np.ndarray) -> FaceObservation | None:
    """The re-detected face whose outer eye corners are nearest the expected ones, if close."""
    tol = REDETECT_TOLERANCE * float(np.linalg.norm(expected[1] - expected[0]))
    best, best_err = None, np.inf
    for face in faces:
        got = face.landmarks[[EYE_L_OUTER, EYE_R_OUTER], :2]
        err = float(np.max(np.linalg.norm(got - expected, axis=1)))
        if err < best_err:
            best, best_err = face, err
    return best if best_err <= tol else None


def align_face(
    image_rgb: np.ndarray,
    face: FaceObservation,
    *,
    size: int = 512,
    eye_center: tuple[float, float] = EYE_CENTER,
    eye_distance: float = EYE_DISTANCE,
) -> tuple[np.ndarray, FaceObservation, bool]:
    """Warps the face into an upright S x S portrait and landmarks it there.

    The portrait is landmarked again so that its landmarks are exact in portrait pixels; only if
    that fails are the source landmarks transformed instead (logged as a warning).

    Args:
        image_rgb: (H, W, 3) uint8 RGB source image.
        face: the face to align, in source pixels.
        size: portrait side S in pixels.
        eye_center: (x, y) of the outer-eye midpoint, fractions of S.
        eye_distance: outer-eye distance, fraction of S.

    Returns:
        (portrait (S, S, 3) uint8, the face in portrait pixels, whether it was re-detected).
    """
    matrix = alignment_matrix(
        face.landmarks, size=size, eye_center=eye_center, eye_distance=eye_distance
    )
    portrait = warp_portrait(image_rgb, matrix, size=size)
    moved = transform_landmarks(face.landmarks, matrix)
    expected = moved[[EYE_L_OUTER, EYE_R_OUTER], :2]
    found = _closest_face(detect_faces(portrait, max_faces=2), expected)
    if found is not None:
        return portrait, found, True
    log.warning(
        "re-detection on the aligned %d px portrait failed; using the transformed source "
        "landmarks instead",
        size,
    )
    fallback = FaceObservation(
        landmarks=moved,
        blendshapes=dict(face.blendshapes),
        transform=face.transform,
        pose=face.pose,
    )
    return portrait, fallback, False
