"""Face-mesh topology: the 852 mesh triangles and named landmark index lists (MediaPipe 478 points).

Indices refer to the rows of a (478, 3) landmark array from :mod:`avatar.identity.landmarker`.
The lists are read from ``mediapipe.tasks.python.vision.FaceLandmarksConnections`` and chained into
ordered paths, so they follow MediaPipe's own topology instead of hand-typed copies. Importing
that package takes about 0.5 s (it loads matplotlib), so the connection lists it gives are kept
in a small JSON file per MediaPipe version in the cache root (``$AVATAR_CACHE_DIR`` or
``~/.cache/companion-avatar``) and read from there by later processes.

Sides are named as seen in the image: ``EYE_L_*`` is the eye on the image's left, which is the
subject's right eye (MediaPipe's ``RIGHT_EYE``, corners 33 and 133). This matches the
``blink_l``/``blink_r`` channels of :mod:`avatar.motion.track`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from avatar.cache_root import cache_root

log = logging.getLogger(__name__)

NUM_LANDMARKS = 478
"""Points per face: 468 mesh vertices plus 10 iris points."""


def _chain(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Chains directed edges into ordered vertex paths (a closed loop repeats no vertex).

    Args:
        edges: (start, end) pairs; consecutive edges of one path share end and start.

    Returns:
        The paths in the order they appear, each a list of landmark indices.
    """
    paths: list[list[int]] = []
    for start, end in edges:
        if paths and paths[-1][-1] == start:
            paths[-1].append(end)
        else:
            paths.append([start, end])
    for path in paths:
        if len(path) > 2 and path[0] == path[-1]:
            path.pop()  # closed loop
    return paths


CONNECTIONS = (
    "FACE_LANDMARKS_LIPS",
    "FACE_LANDMARKS_RIGHT_EYE",
    "FACE_LANDMARKS_LEFT_EYE",
    "FACE_LANDMARKS_RIGHT_IRIS",
    "FACE_LANDMARKS_LEFT_IRIS",
    "FACE_LANDMARKS_FACE_OVAL",
    "FACE_LANDMARKS_RIGHT_EYEBROW",
    "FACE_LANDMARKS_LEFT_EYEBROW",
    "FACE_LANDMARKS_TESSELATION",
)
"""The ``FaceLandmarksConnections`` lists this module reads."""


def _cache_file() -> Path:
    return cache_root() / f"face-topology-mediapipe-{version('mediapipe')}.json"


def _from_mediapipe() -> dict[str, list[tuple[int, int]]]:
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as conn

    return {name: [(int(c.start), int(c.end)) for c in getattr(conn, name)] for name in CONNECTIONS}


def _connections() -> dict[str, list[tuple[int, int]]]:
    """MediaPipe's connection lists as (start, end) pairs: from the cache file when it holds
    them, else from MediaPipe (then written there atomically; a cache that cannot be written
    is skipped)."""
    path = _cache_file()
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if sorted(stored) == sorted(CONNECTIONS):
            return {k: [(int(a), int(b)) for a, b in v] for k, v in stored.items()}
    except (OSError, ValueError, TypeError):
        pass
    found = _from_mediapipe()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".topology-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(found, f)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("face topology not cached at %s: %s", path, exc)
    return found


_CONN = _connections()


def _split_upper_lower(paths: list[list[int]], upper_mark: int) -> tuple[list[int], list[int]]:
    """Returns (upper, lower) of two corner-to-corner paths; ``upper_mark`` is on the upper."""
    if len(paths) != 2:
        raise RuntimeError(f"expected two contour paths, got {len(paths)}")
    upper = next(p for p in paths if upper_mark in p)
    lower = next(p for p in paths if upper_mark not in p)
    return upper, lower


_lip_paths = _chain(_CONN["FACE_LANDMARKS_LIPS"])
_outer = [p for p in _lip_paths if p[0] == 61]
_inner = [p for p in _lip_paths if p[0] == 78]

LIPS_OUTER_UPPER, LIPS_OUTER_LOWER = _split_upper_lower(_outer, upper_mark=0)
"""Outer lip contour, upper and lower halves, each ordered from corner 61 (image left) to 291."""
LIPS_INNER_UPPER, LIPS_INNER_LOWER = _split_upper_lower(_inner, upper_mark=13)
"""Inner lip contour (the mouth opening), upper and lower, each ordered from 78 to 308."""
LIPS_OUTER = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[::-1][1:-1]
"""Closed outer lip polygon: upper 61 -> 291, then lower back towards 61 (corners once)."""
LIPS_INNER = LIPS_INNER_UPPER + LIPS_INNER_LOWER[::-1][1:-1]
"""Closed inner lip polygon, ordered like :data:`LIPS_OUTER`."""

# MediaPipe "RIGHT" is the subject's right, which is the image left.
EYE_L_UPPER, EYE_L_LOWER = _split_upper_lower(
    _chain(_CONN["FACE_LANDMARKS_RIGHT_EYE"]), upper_mark=159
)
"""Image-left eye lids, each ordered from outer corner 33 to inner corner 133."""
EYE_R_UPPER, EYE_R_LOWER = _split_upper_lower(
    _chain(_CONN["FACE_LANDMARKS_LEFT_EYE"]), upper_mark=386
)
"""Image-right eye lids, each ordered from outer corner 263 to inner corner 362."""
EYE_L = EYE_L_UPPER + EYE_L_LOWER[::-1][1:-1]
"""Closed image-left eye polygon."""
EYE_R = EYE_R_UPPER + EYE_R_LOWER[::-1][1:-1]
"""Closed image-right eye polygon."""

IRIS_L = [469, 470, 471, 472]
"""Image-left iris ring (MediaPipe RIGHT_IRIS); its centre is :data:`IRIS_L_CENTER`."""
IRIS_R = [474, 475, 476, 477]
"""Image-right iris ring (MediaPipe LEFT_IRIS); its centre is :data:`IRIS_R_CENTER`."""
IRIS_L_CENTER = 468
IRIS_R_CENTER = 473
IRIS = list(range(468, 478))
"""All ten iris points (468-477)."""
assert sorted({i for pair in _CONN["FACE_LANDMARKS_RIGHT_IRIS"] for i in pair}) == IRIS_L
assert sorted({i for pair in _CONN["FACE_LANDMARKS_LEFT_IRIS"] for i in pair}) == IRIS_R

(FACE_OVAL,) = _chain(_CONN["FACE_LANDMARKS_FACE_OVAL"])
"""Closed face-oval polygon, clockwise in the image from the forehead top (10); chin is 152."""

BROW_L_LOWER, BROW_L_UPPER = _chain(_CONN["FACE_LANDMARKS_RIGHT_EYEBROW"])
"""Image-left brow: lower edge (46 -> 55) and upper edge (70 -> 107), outer to inner."""
BROW_R_LOWER, BROW_R_UPPER = _chain(_CONN["FACE_LANDMARKS_LEFT_EYEBROW"])
"""Image-right brow: lower edge (276 -> 285) and upper edge (300 -> 336), outer to inner."""
BROW_L = BROW_L_UPPER + BROW_L_LOWER[::-1]
"""Closed image-left brow polygon."""
BROW_R = BROW_R_UPPER + BROW_R_LOWER[::-1]
"""Closed image-right brow polygon."""

MOUTH_CORNER_L, MOUTH_CORNER_R = 61, 291
"""Outer mouth corners (image left, image right)."""
MOUTH_INNER_CORNER_L, MOUTH_INNER_CORNER_R = 78, 308
"""Inner-lip corners."""
LIP_INNER_TOP, LIP_INNER_BOTTOM = 13, 14
"""Inner-lip midpoints; their distance is the mouth opening."""
LIP_OUTER_TOP, LIP_OUTER_BOTTOM = 0, 17
"""Outer-lip midpoints."""
EYE_L_OUTER, EYE_L_INNER = 33, 133
"""Image-left eye corners."""
EYE_R_INNER, EYE_R_OUTER = 362, 263
"""Image-right eye corners."""
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10


@lru_cache(maxsize=1)
def _triangles() -> np.ndarray:
    edges = _CONN["FACE_LANDMARKS_TESSELATION"]
    if len(edges) % 3:
        raise RuntimeError(f"tesselation has {len(edges)} edges, not a multiple of 3")
    tris: list[tuple[int, int, int]] = []
    seen: set[tuple[int, ...]] = set()
    for i in range(0, len(edges), 3):
        (a, b), (b2, c), (c2, a2) = edges[i : i + 3]
        if b != b2 or c != c2 or a != a2:
            raise RuntimeError(f"tesselation edges {i}..{i + 2} do not close a triangle")
        key = tuple(sorted((a, b, c)))
        if key not in seen:
            seen.add(key)
            tris.append((a, b, c))
    out = np.asarray(tris, dtype=np.int32)
    out.setflags(write=False)
    return out


def mesh_triangles() -> np.ndarray:
    """The face-mesh triangulation over the 468 mesh vertices (iris points are not used).

    Read from MediaPipe's ``FACE_LANDMARKS_TESSELATION``, which lists each triangle as three
    consecutive edges; the edges are checked to close and duplicates are dropped.

    Returns:
        (852, 3) int32 vertex indices, a fresh writable copy.

    Example:
        >>> mesh_triangles().shape
        (852, 3)
    """
    return _triangles().copy()
