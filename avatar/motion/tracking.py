"""Motion from video: the rig's channels fitted to a tracked face, frame by frame, as a MotionTrack.

Input is what a face tracker gives for each video frame (MediaPipe's 478 landmarks in pixels,
NaN where no face was found) with the frames' presentation times; output is a
:class:`~avatar.motion.track.MotionTrack` at the track rate (25 fps) in the units of
:data:`~avatar.motion.track.CHANNELS`. Steps:

1. the face at rest: given (the identity's landmarks, for a clip the project rendered), or the
   video's own most neutral frame (mouth closed, eyes open, the usual head pose);
2. the rig of that face (injected: ``avatar.renderers.meshwarp`` builds it; this stage may not
   import renderers) and a bounded least-squares fit per frame (:class:`~avatar.motion.
   tracking_fit.RigFit`): head pose is relative to the rest face;
3. frames without a face take values interpolated between their neighbours (held at the ends);
4. resampling by timestamps to the track rate (variable frame rate videos included);
5. a short Savitzky-Golay filter (quadratic: no lag, peaks of fast mouth motion kept).

Reading the video and running the tracker is the caller's (see ``avatar.cli``'s ``drive=``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from avatar.errors import MotionTrackError
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.motion.tracking_fit import FIT_BOUNDS, FIT_CHANNELS, NUM_LANDMARKS, RigFit

log = logging.getLogger(__name__)

__all__ = ["TRACK_FPS", "FittedMotion", "RigBuilder", "fit_motion", "neutral_frame"]

TRACK_FPS = 25.0
"""Frames per second of the fitted track (the renderer's rate)."""

RigBuilder = Callable[[np.ndarray], Mapping[str, np.ndarray]]
"""(478, 3) rest landmarks in frame pixels -> channel -> (478, 2) vertex displacement per unit
(per degree for ``head_*``), for every name in :data:`FIT_CHANNELS`, optionally with the
renderer's ``close_source`` rest correction."""

SMOOTH_WINDOWS = {"head_yaw": 9, "head_pitch": 9, "head_roll": 9}
"""Savitzky-Golay window (frames at 25 fps) per channel; others use :data:`SMOOTH_WINDOW`."""
SMOOTH_WINDOW = 5
"""Window for the face channels: 0.2 s, shorter than a blink or a syllable."""

_LIPS = (13, 14)  # inner-lip midpoints, top and bottom
_EYE_CORNERS = (33, 263)
_UPPER_FACE = (10, 338, 297, 332, 284, 251, 389, 356, 454, 234, 127, 162, 21, 54, 103, 67, 109)
_NOSE_AND_EYES = (1, 4, 6, 168, 33, 133, 263, 362)
_RIGID = _UPPER_FACE + _NOSE_AND_EYES
"""Vertices the jaw, lips and lids do not move: their layout tells the head pose."""


@dataclass(frozen=True)
class FittedMotion:
    """A track fitted to a video, with how it was made.

    Attributes:
        track: the motion, :data:`CHANNELS` at :data:`TRACK_FPS` (channels the fit does not
            read are 0).
        missing_frames: video frames without a face (their values interpolated or held).
        neutral_index: the video frame taken as the face at rest (-1: the rest face was given).
        residual_px: (T_video,) root-mean-square landmark residual of each frame's fit, in
            pixels (NaN where no face): how well the rig explains the face.
    """

    track: MotionTrack
    missing_frames: int
    neutral_index: int
    residual_px: np.ndarray


def _found(landmarks: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(landmarks[:, :, :2]), axis=(1, 2))


def neutral_frame(landmarks: np.ndarray) -> int:
    """The most neutral frame of a tracked face: its mouth among the most closed (inner-lip gap
    within 15 % of the clip's range from its smallest), its upper face and nose (position and
    size removed: the head pose) closest to the clip's median.

    Args:
        landmarks: (T, 478, 2|3) pixels, NaN rows where no face.

    Returns:
        The frame index.

    Raises:
        MotionTrackError: no frame has a face.
    """
    found = np.flatnonzero(_found(landmarks))
    if not len(found):
        raise MotionTrackError("no face in any frame")
    xy = landmarks[found, :, :2].astype(np.float64)
    eyes = np.linalg.norm(xy[:, _EYE_CORNERS[0]] - xy[:, _EYE_CORNERS[1]], axis=1)
    shape = (xy - xy.mean(axis=1, keepdims=True)) / np.maximum(eyes, 1e-6)[:, None, None]
    gap = np.linalg.norm(shape[:, _LIPS[0]] - shape[:, _LIPS[1]], axis=1)
    closed = gap <= gap.min() + 0.15 * (np.quantile(gap, 0.95) - gap.min())
    rigid = shape[:, list(_RIGID)]
    far = np.linalg.norm(rigid - np.median(rigid, axis=0), axis=2).mean(axis=1)
    far[~closed] = np.inf
    return int(found[int(np.argmin(far))])


def _fill_missing(values: np.ndarray, times: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T, K) values with rows where ``found`` is False interpolated over ``times`` (held at
    the ends)."""
    out = values.copy()
    if found.all():
        return out
    for k in range(values.shape[1]):
        out[~found, k] = np.interp(times[~found], times[found], values[found, k])
    return out


def _resample(values: np.ndarray, times: np.ndarray, n_out: int, fps: float) -> np.ndarray:
    """(T, K) values at ``times`` seconds -> (n_out, K) at ``k / fps`` (linear, held at ends)."""
    grid = np.arange(n_out) / fps
    return np.stack([np.interp(grid, times, values[:, k]) for k in range(values.shape[1])], 1)


def _smooth(values: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """Quadratic Savitzky-Golay per channel (windows shrunk to fit short clips)."""
    out = values.copy()
    for k, name in enumerate(channels):
        window = min(SMOOTH_WINDOWS.get(name, SMOOTH_WINDOW), len(values) - (len(values) + 1) % 2)
        if window >= 3:
            out[:, k] = savgol_filter(values[:, k], window, 2, mode="interp")
    return out


def _check(landmarks: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    landmarks = np.asarray(landmarks, np.float64)
    times = np.asarray(times, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:2] != (NUM_LANDMARKS,) or landmarks.shape[2] < 2:
        raise MotionTrackError(
            f"landmarks must be (T, {NUM_LANDMARKS}, 2|3) pixels, got {landmarks.shape}"
        )
    if times.shape != (len(landmarks),) or not np.all(np.isfinite(times)):
        raise MotionTrackError(f"times must be ({len(landmarks)},) finite seconds")
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise MotionTrackError("frame times must increase")
    return landmarks, times


def fit_motion(
    landmarks: np.ndarray,
    times: np.ndarray,
    rig: RigBuilder,
    *,
    duration: float | None = None,
    fps: float = TRACK_FPS,
    rest_landmarks: np.ndarray | None = None,
    smooth: bool = True,
) -> FittedMotion:
    """Fit the rig's channels to a tracked face.

    Args:
        landmarks: (T, 478, 3) pixels per video frame (x right, y down, z relative depth in x
            units, as MediaPipe gives them); NaN rows where no face was found.
        times: (T,) presentation time of each frame in seconds, increasing.
        rig: builds the rig of the rest face (see :data:`RigBuilder`).
        duration: seconds the track covers (None: last time plus the median frame step).
        fps: frames per second of the track.
        rest_landmarks: (478, 3) the face at rest in frame pixels, when known (the identity of a
            clip the project rendered); None: the video's :func:`neutral_frame`.
        smooth: apply the temporal filter.

    Returns:
        The :class:`FittedMotion`.

    Raises:
        MotionTrackError: bad shapes or times, or no face in any frame.
    """
    landmarks, times = _check(landmarks, times)
    found = _found(landmarks)
    if not found.any():
        raise MotionTrackError(f"no face in any of the {len(landmarks)} frames")
    neutral = -1
    if rest_landmarks is None:
        neutral = neutral_frame(landmarks)
        rest_landmarks = landmarks[neutral]
    rest_landmarks = np.asarray(rest_landmarks, np.float64)
    bases = rig(rest_landmarks)
    rest = rest_landmarks[:, :2] + np.asarray(bases.get("close_source", 0.0), np.float64)
    fitter = RigFit(bases, rest)
    raw = np.full((len(landmarks), len(FIT_CHANNELS)), np.nan)
    residual = np.full(len(landmarks), np.nan)
    for t in np.flatnonzero(found):
        raw[t], residual[t] = fitter.fit(landmarks[t])
    missing = int((~found).sum())
    if missing:
        log.warning("no face in %d of %d frames: values interpolated", missing, len(landmarks))
    values = _fill_missing(raw, times, found)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
    span = (times[-1] - times[0] + step) if duration is None else float(duration)
    n_out = max(1, int(round(span * fps)))
    values = _resample(values, times - times[0], n_out, fps)
    if smooth:
        values = _smooth(values, FIT_CHANNELS)
    lo = np.array([FIT_BOUNDS[c][0] for c in FIT_CHANNELS])
    hi = np.array([FIT_BOUNDS[c][1] for c in FIT_CHANNELS])
    values = np.clip(values, lo, hi)
    track = MotionTrack.zeros(n_out, fps, CHANNELS)
    for k, name in enumerate(FIT_CHANNELS):
        track.set(name, values[:, k])
    log.info(
        "fitted %d frames (%d without a face) -> %d track frames at %g fps; median residual "
        "%.2f px",
        len(landmarks),
        missing,
        n_out,
        fps,
        float(np.nanmedian(residual)),
    )
    return FittedMotion(track, missing, neutral, residual)
