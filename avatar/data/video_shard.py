"""One video -> one shard of :mod:`avatar.data.video_folder`: aligned crops, landmarks, fitted
motion and audio at 25 fps, in two decoding passes so memory does not grow with the video.

Pass 1 tracks the face (MediaPipe, VIDEO mode) on the frames kept at the shard's rate (frame k
of the shard is the source frame on screen at ``k / fps``) and keeps only landmarks. The reference
frame is then the first whose head is within ``FRONTAL_DEG`` of frontal (else the first with a
face), and its alignment (the identity stage's: eyes level, at fixed place and scale) is the
one transform of every crop. Pass 2 decodes again and warps each kept frame with it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from avatar.data.video_folder import ShardSettings, SkipVideo, cut_audio
from avatar.identity.alignment import alignment_matrix, transform_landmarks, warp_portrait
from avatar.identity.landmarker import FaceObservation, FaceTracker
from avatar.media import VideoStream, read_mp4
from avatar.motion.track import CHANNELS, MotionTrack

log = logging.getLogger(__name__)

__all__ = ["FRONTAL_DEG", "MotionFitter", "kept_frames", "make_shard", "reference_frame"]

FRONTAL_DEG = 15.0
"""Yaw and pitch within this many degrees make a frame frontal enough to be the reference."""

MotionFitter = Callable[[list[FaceObservation | None], int, float], MotionTrack]
"""(faces per shard frame in source pixels, reference index, fps) -> the fitted track."""


def kept_frames(stream: VideoStream, fps: float) -> Iterator[tuple[int, np.ndarray]]:
    """(shard index k, frame) for the source frame on screen at ``k / fps`` (the last one
    started by then); a source frame is repeated when the source rate is below ``fps`` and
    skipped when above."""
    ratio = stream.fps / fps
    k = 0
    for i, frame in enumerate(stream):
        while math.floor(k * ratio + 1e-9) == i:
            yield k, frame
            k += 1


def reference_frame(faces: list[FaceObservation | None]) -> int:
    """Index of the first frontal face (yaw and pitch within :data:`FRONTAL_DEG`), else of
    the first face; raises :class:`SkipVideo` when there is none."""
    seen = [i for i, f in enumerate(faces) if f is not None]
    if not seen:
        raise SkipVideo("no face in any frame")
    frontal = [i for i in seen if max(abs(faces[i].pose[0]), abs(faces[i].pose[1])) <= FRONTAL_DEG]
    return (frontal or seen)[0]


def _limit(path: Path, settings: ShardSettings) -> VideoStream:
    """The video, decoded no further than ``settings.max_seconds`` (and a frame)."""
    probe = VideoStream(path)
    if not probe.has_audio:
        raise SkipVideo("no audio track")
    return VideoStream(path, max_frames=math.ceil(settings.max_seconds * probe.fps) + 1)


def _track(stream: VideoStream, settings: ShardSettings) -> list[FaceObservation | None]:
    """Pass 1: the face in every kept frame (None where not found)."""
    last = round(settings.max_seconds * settings.fps)
    faces: list[FaceObservation | None] = []
    with FaceTracker() as tracker:
        for k, frame in kept_frames(stream, settings.fps):
            if k >= last:
                break
            faces.append(tracker.track(frame, timestamp_ms=round(k * 1000 / settings.fps)))
    return faces


def make_shard(
    path: str | Path, settings: ShardSettings, *, fit: MotionFitter
) -> dict[str, np.ndarray]:
    """The shard arrays of one video (see :mod:`avatar.data.video_folder` for their shapes).

    Args:
        path: a video with audio.
        settings: crop size, rates and limits.
        fit: fits rig channels to the tracked faces (:mod:`avatar.motion.tracking`).

    Raises:
        SkipVideo: no audio, too short, or a face found in too few frames (the reason).
        VideoFormatError: an unreadable file.
    """
    path = Path(path)
    stream = _limit(path, settings)
    faces = _track(stream, settings)
    n = len(faces)
    if n < settings.min_seconds * settings.fps:
        raise SkipVideo(f"too short: {n / settings.fps:.2f} s < {settings.min_seconds} s")
    found = sum(f is not None for f in faces) / n
    if found < settings.min_face_fraction:
        raise SkipVideo(f"no face in {100 * (1 - found):.0f}% of frames")
    ref = reference_frame(faces)
    matrix = alignment_matrix(faces[ref].landmarks, size=settings.size)
    size = settings.size
    crops = np.empty((n, size, size, 3), np.uint8)
    for k, frame in kept_frames(_limit(path, settings), settings.fps):
        if k >= n:
            break
        crops[k] = warp_portrait(frame, matrix, size=size)
    landmarks = np.full((n, 478, 2), np.nan, np.float32)
    for k, face in enumerate(faces):
        if face is not None:
            landmarks[k] = transform_landmarks(face.landmarks, matrix)[:, :2]
    motion = fit(faces, ref, settings.fps).select(CHANNELS)
    if len(motion) != n:
        raise ValueError(f"{path}: the fitter gave {len(motion)} frames for {n}")
    sound = read_mp4(path, with_frames=False)  # the whole track, aligned to the first frame
    audio = cut_audio(sound.audio, sound.sample_rate, settings, n)
    log.info("%s: %d frames, reference %d, face in %.0f%%", path.name, n, ref, 100 * found)
    return {
        "frames": crops,
        "landmarks": landmarks,
        "motion": motion.values.astype(np.float32),
        "channels": np.asarray(CHANNELS),
        "audio": audio,
        "reference": np.asarray(ref),
        "matrix": matrix.astype(np.float32),
    }
