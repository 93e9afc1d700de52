"""Multi-scale face search (the FaceLandmarker over a pyramid of windows) and centred pose.

MediaPipe's short-range face detector letterboxes the whole input to 128 x 128, so a face whose
outer-eye distance is below ~7% of the image's longer side is missed (measured on the astronaut:
found at 7.3%, missed at 5.9%). Generated companion images are often large with a modest face, or
hold several people, so the image is also searched in square windows of half, a quarter, ... of
its longer side with half-window stride; every face then appears whole in some window at a scale
the detector handles. A level of more than ``MAX_WINDOWS_PER_LEVEL`` windows is not searched, which
bounds the time on large images (see the constant).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from avatar.identity.landmarker import FaceObservation, run_image_landmarker

log = logging.getLogger(__name__)

__all__ = ["centred_pose", "detect_faces", "is_duplicate", "search_sides", "window_origins"]

FLAT_STD = 3.0
"""Windows whose pixel standard deviation is below this (uint8 levels) are skipped as blank."""
EDGE_MARGIN = 0.02
"""A face found in a window must keep this fraction of the window side from its inner edges."""
MAX_WINDOWS_PER_LEVEL = 1024
"""Finer pyramid levels with more windows are not searched. A 1024 x 1024 image is searched down
to 64-pixel windows (961 of them); a 4096 x 3072 one down to 256 (713), about 900 landmarker runs
in all instead of 16,000 (64 s measured on a face-less image) and so misses faces whose eye distance
is below ~18 px there: too small to use anyway, but reported as no face rather than too small."""


def window_origins(length: int, window: int) -> list[int]:
    """Start offsets of windows of ``window`` pixels covering ``length`` with half-window stride.

    Example:
        >>> window_origins(1024, 512)
        [0, 256, 512]
        >>> window_origins(300, 512)
        [0]
    """
    if window >= length:
        return [0]
    starts = list(range(0, length - window + 1, max(window // 2, 1)))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def search_sides(height: int, width: int, min_window: int) -> list[int]:
    """Window sides of the pyramid levels below the whole image, largest first.

    Half the longer side, then halving down to ``min_window``, stopping before a level of more
    than :data:`MAX_WINDOWS_PER_LEVEL` windows.

    Example:
        >>> search_sides(1024, 1024, 64)
        [512, 256, 128, 64]
        >>> search_sides(3072, 4096, 64)
        [2048, 1024, 512, 256]
    """
    sides: list[int] = []
    side = max(height, width) // 2
    while side >= min_window:
        windows = len(window_origins(height, side)) * len(window_origins(width, side))
        if windows > MAX_WINDOWS_PER_LEVEL:
            log.debug("face search stops above %d px windows (%d windows)", side, windows)
            break
        sides.append(side)
        side //= 2
    return sides


def _inside_window(
    face: FaceObservation, x0: int, y0: int, side: int, width: int, height: int
) -> bool:
    """Whether the face lies inside the window, off its edges (image borders excepted)."""
    bx0, by0, bx1, by1 = face.bbox
    m = EDGE_MARGIN * side
    x1, y1 = min(x0 + side, width), min(y0 + side, height)
    return (
        (x0 == 0 or bx0 >= x0 + m)
        and (y0 == 0 or by0 >= y0 + m)
        and (x1 == width or bx1 <= x1 - m)
        and (y1 == height or by1 <= y1 - m)
    )


def _center(face: FaceObservation) -> tuple[float, float]:
    x0, y0, x1, y1 = face.bbox
    return (x0 + x1) / 2, (y0 + y1) / 2


def _contains(face: FaceObservation, point: tuple[float, float]) -> bool:
    x0, y0, x1, y1 = face.bbox
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


def is_duplicate(face: FaceObservation, known: list[FaceObservation]) -> bool:
    """Whether ``face`` is one of ``known`` again (either box holds the other's centre)."""
    return any(_contains(k, _center(face)) or _contains(face, _center(k)) for k in known)


def _search_level(
    image_rgb: np.ndarray, side: int, known: list[FaceObservation]
) -> list[FaceObservation]:
    """New faces found in the windows of one pyramid level."""
    height, width = image_rgb.shape[:2]
    found: list[FaceObservation] = []
    for y0 in window_origins(height, side):
        for x0 in window_origins(width, side):
            crop = image_rgb[y0 : y0 + side, x0 : x0 + side]
            if float(crop.std()) < FLAT_STD:
                continue
            for face in run_image_landmarker(crop, num_faces=2, offset=(x0, y0)):
                if _inside_window(face, x0, y0, side, width, height) and not is_duplicate(
                    face, known + found
                ):
                    found.append(face)
    return found


def detect_faces(
    image_rgb: np.ndarray, *, max_faces: int = 4, min_window: int = 128
) -> list[FaceObservation]:
    """Finds faces in a still image, largest first.

    The whole image is searched first, then overlapping square windows of half, quarter, ...
    its longer side, down to ``min_window`` pixels, stopping one level below the first level that
    found a face (so faces much smaller than the largest are not hunted for), or before a level of
    more than :data:`MAX_WINDOWS_PER_LEVEL` windows.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        max_faces: most faces to return.
        min_window: smallest window side in pixels; faces with an eye distance below ~7% of it
            are not found.

    Returns:
        Up to ``max_faces`` observations in image pixels, sorted by bounding-box area, largest
        first.
    """
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    height, width = np.asarray(image_rgb).shape[:2]
    faces = run_image_landmarker(image_rgb, num_faces=max_faces)
    first_hit = 0 if faces else None
    for level, side in enumerate(search_sides(height, width, min_window), start=1):
        if first_hit is not None and level > first_hit + 1:
            break
        new = _search_level(image_rgb, side, faces)
        if new:
            log.debug("window level %d (%d px) found %d more face(s)", level, side, len(new))
            faces.extend(new)
            first_hit = level if first_hit is None else first_hit
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces[:max_faces]


def centred_pose(
    image_rgb: np.ndarray, face: FaceObservation, *, context: float = 2.0, max_side: int = 256
) -> tuple[float, float, float]:
    """A face's (yaw, pitch, roll) measured in a square crop centred on it.

    MediaPipe's pose depends on where the face sits in the frame (see
    :func:`~avatar.identity.landmarker.pose_from_matrix`); centring removes that, so faces from
    different images, or at different places, compare fairly.

    Args:
        image_rgb: (H, W, 3) uint8 RGB image the face was found in.
        face: the face, in that image's pixels.
        context: crop side as a multiple of the face's larger bounding-box side.
        max_side: the crop is shrunk (INTER_AREA) to at most this many pixels.

    Returns:
        (yaw, pitch, roll) degrees, conventions as ``pose_from_matrix``; the face's own pose if the
        crop yields no face.
    """
    x0, y0, x1, y1 = face.bbox
    half = context * max(x1 - x0, y1 - y0, 1.0) / 2
    left, top = round((x0 + x1) / 2 - half), round((y0 + y1) / 2 - half)
    side = max(round(2 * half), 16)
    height, width = image_rgb.shape[:2]
    crop = image_rgb[max(top, 0) : top + side, max(left, 0) : left + side]
    crop = cv2.copyMakeBorder(
        crop,
        max(-top, 0),
        max(top + side - height, 0),
        max(-left, 0),
        max(left + side - width, 0),
        cv2.BORDER_REPLICATE,
    )
    if side > max_side:
        crop = cv2.resize(crop, (max_side, max_side), interpolation=cv2.INTER_AREA)
    found = run_image_landmarker(np.ascontiguousarray(crop), num_faces=1)
    if not found:
        log.debug("no face in the centred crop; keeping the frame-relative pose")
        return face.pose
    return found[0].pose
