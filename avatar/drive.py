"""Drive a companion with the face in a video: MediaPipe landmarks per frame, the mesh-warp
rig's channels fitted to them (:mod:`avatar.motion.tracking`), rendered with the video's sound.

This is the video side of motion from video: reading frames, the landmarker and the renderer's
rig, which :mod:`avatar.motion` may not import. ``avatar-render drive=<video>`` calls
:func:`render_drive`; evals and the video-folder dataset call :func:`motion_from_video`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.audio import Audio
from avatar.companion import CompanionSpec
from avatar.errors import FaceNotFoundError, VideoFormatError
from avatar.media import iter_video_frames, probe_mp4, read_mp4
from avatar.speech.tts import silence_speech

if TYPE_CHECKING:
    from avatar.identity.landmarker import FaceObservation
    from avatar.motion.track import MotionTrack
    from avatar.motion.tracking import FittedMotion
    from avatar.pipeline import Pipeline
    from avatar.render_result import RenderResult

log = logging.getLogger(__name__)

__all__ = ["fit_tracked_faces", "motion_from_video", "render_drive", "rig_bases"]
__all__ += ["track_video_face"]


def rig_bases(landmarks: np.ndarray, canvas_px: int = 256) -> dict[str, np.ndarray]:
    """The mesh-warp rig of a face at rest ((478, 3) pixels, any image size) for
    :func:`~avatar.motion.tracking.fit_motion`: channel -> (478, 2) pixels per unit, the face
    rig's (:func:`~avatar.renderers.meshwarp.rig.vertex_bases`, ``close_source`` included) and
    per degree the head's (its dense ``head_fields`` sampled at the vertices as ``WarpFields``
    does, on a ``canvas_px`` canvas holding the face, scaled back)."""
    from avatar.renderers.meshwarp.fields import head_fields
    from avatar.renderers.meshwarp.raster import Rasteriser
    from avatar.renderers.meshwarp.rig import vertex_bases

    pts = np.asarray(landmarks, np.float64)
    bases = {k: v.astype(np.float64) for k, v in vertex_bases(pts.astype(np.float32)).items()}
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    scale = 0.5 * canvas_px / max(float((hi - lo).max()), 1.0)  # the face fills half of it
    canvas = pts * scale
    canvas[:, :2] += 0.5 * canvas_px - 0.5 * (lo + hi) * scale
    dense = head_fields(canvas.astype(np.float32), canvas_px, Rasteriser(canvas, canvas_px))
    ij = np.clip(np.round(canvas[:, :2]).astype(int), 0, canvas_px - 1)
    bases.update({k: f[ij[:, 1], ij[:, 0]].astype(np.float64) / scale for k, f in dense.items()})
    return bases


def track_video_face(
    path: str | Path, *, max_seconds: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's landmarks of the face in every frame of a video FFmpeg reads: (T, 478, 3)
    float32 pixels (NaN rows where no face) and (T,) presentation times in seconds.

    Raises VideoFormatError: missing, not a video, no frames, or longer than ``max_seconds``.
    """
    from avatar.identity.landmarker import run_image_landmarker

    if max_seconds is not None:
        seconds = probe_mp4(path)["video_duration"] or 0.0
        if seconds > max_seconds:
            raise VideoFormatError(
                f"{path}: {seconds:.1f} s of video, over the limit of {max_seconds:g} s "
                "(config key max_audio_seconds)"
            )
    rows: list[np.ndarray] = []
    times: list[float] = []
    for frame, seconds in iter_video_frames(path):
        if times and seconds <= times[-1]:
            continue  # a repeated or out-of-order timestamp: keep the first frame
        # IMAGE mode, every frame on its own: VIDEO mode's tracking smooths the landmarks and
        # lags fast mouth motion (inner-lip gap correlation 0.935 vs 0.952 on rendered clips)
        faces = run_image_landmarker(frame, num_faces=1)
        rows.append(faces[0].landmarks if faces else np.full((478, 3), np.nan, np.float32))
        times.append(seconds)
    if not rows:
        raise VideoFormatError(f"{path}: no video frames")
    return np.asarray(rows, np.float32), np.asarray(times, np.float64)


def motion_from_video(
    path: str | Path,
    *,
    fps: float = 25.0,
    rest_landmarks: np.ndarray | None = None,
    observed_rig: tuple[np.ndarray, Mapping[str, np.ndarray]] | None = None,
    max_seconds: float | None = None,
) -> FittedMotion:
    """The motion of the face in a video, in the rig's channels (:mod:`avatar.motion.tracking`).

    Args:
        path: the video; fps: of the track (any video rate, variable too, is resampled).
        rest_landmarks: (478, 3) the face at rest, when known; None: the video's most neutral.
        observed_rig: (rest (478, 2), bases) of the rig as MediaPipe sees it, for a clip
            rendered from a known identity (:func:`~avatar.motion.tracking_fit.identify_bases`);
            replaces ``rest_landmarks`` and the geometric rig.
        max_seconds: refuse a longer video.

    Raises:
        VideoFormatError: not a readable video; FaceNotFoundError: no face in any frame.
    """
    from avatar.motion.tracking import fit_motion

    landmarks, times = track_video_face(path, max_seconds=max_seconds)
    found = np.isfinite(landmarks[:, :, 0]).all(axis=1)
    if not found.any():
        raise FaceNotFoundError(f"{path}: no face found in any of its {len(times)} frames")
    duration = probe_mp4(path)["video_duration"] or None
    rig: Callable[[np.ndarray], Mapping[str, np.ndarray]] = rig_bases
    if observed_rig is not None:
        rest_landmarks, bases = observed_rig
        rig = lambda _rest: bases  # noqa: E731
    fitted = fit_motion(
        landmarks, times, rig, duration=duration, fps=fps, rest_landmarks=rest_landmarks
    )
    if fitted.missing_frames:
        log.warning("%s: no face in %d of %d frames", path, fitted.missing_frames, len(times))
    return fitted


def render_drive(
    pipeline: Pipeline,
    companion: CompanionSpec,
    video: str | Path,
    out: str | Path,
    *,
    max_seconds: float | None = None,
) -> RenderResult:
    """The companion moving as the face in ``video`` does; the MP4 carries the video's audio."""
    motion = motion_from_video(video, fps=pipeline.motion.fps, max_seconds=max_seconds).track
    clip = read_mp4(video, with_frames=False)
    rate = clip.sample_rate or 24000
    silent = np.zeros(round(motion.duration * rate), np.float32)
    samples = clip.audio if clip.sample_rate else silent
    speech = silence_speech(len(samples) / rate, rate)
    track = Audio(samples, rate)
    return pipeline.render_speech(companion, speech, out, motion=motion, soundtrack=track)


def fit_tracked_faces(
    faces: Sequence[FaceObservation | None], reference: int, fps: float
) -> MotionTrack:
    """Rig channels of faces tracked at ``fps`` (None where none was found), at rest as in
    frame ``reference``: the fitter of :func:`avatar.data.video_shard.make_shard`, whose
    identity is made from that frame, so the channels move the portrait as the video moved.

    Returns:
        A :class:`~avatar.motion.track.MotionTrack` of ``len(faces)`` frames at ``fps``.
    """
    from avatar.motion.tracking import fit_motion

    if not 0 <= reference < len(faces) or faces[reference] is None:
        raise ValueError(f"reference frame {reference} holds no face")
    missing = np.full((478, 3), np.nan, np.float32)
    landmarks = np.stack([missing if f is None else f.landmarks for f in faces])
    times = np.arange(len(faces)) / fps
    rest = faces[reference].landmarks
    fitted = fit_motion(
        landmarks, times, rig_bases, duration=len(faces) / fps, fps=fps, rest_landmarks=rest
    )
    return fitted.track
