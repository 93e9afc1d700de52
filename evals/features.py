"""Per-clip features the metrics read: tracked landmarks, mouth/eye curves, audio envelope, video.

:func:`features_from_file` measures one video file in one decoding pass (MediaPipe tracking is
the expensive part) keeping per-frame features, never the frames: metrics that read pixels
(flicker, identity, the sync experts) get the file as a
:class:`~evals.functional._clips.StreamedVideo` and decode it again frame by frame, so memory
does not grow with the clip's length. :func:`extract_features` does the same for frames already
in memory. Both return :class:`ClipFeatures`, whose :meth:`~ClipFeatures.inputs` are named like
the metrics' ``update`` arguments (``aperture``, ``envelope``, ``landmarks``, ``video``, ...) as
batches of one clip, so a suite can feed every metric by name; :meth:`~ClipFeatures.missing`
says why an input is absent (a clip without audio: the lip-sync metrics are skipped with it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avatar.errors import VideoFormatError
from avatar.media.mp4_reader import VideoStream
from evals.functional._clips import StreamedVideo
from evals.functional.lipsync import frame_level_db, speech_envelope
from evals.functional.mouth import eye_openness, mouth_aperture
from evals.landmarks import FaceTrack, track_video

log = logging.getLogger(__name__)

__all__ = ["ClipFeatures", "extract_features", "features_from_file", "static_mask"]

AUDIO_INPUTS = ("audio", "sample_rate", "envelope", "level_db")
"""Metric inputs made from the audio: absent (with a reason) for a clip without audio."""


@dataclass
class ClipFeatures:
    """What the metrics need from one clip.

    Attributes:
        fps: frames per second.
        frames: (T, H, W, 3) uint8 RGB in memory, or the clip's file read again frame by frame
            on every pass (:class:`~evals.functional._clips.StreamedVideo`).
        audio: (S,) float32 mono in [-1, 1] from frame 0, at ``sample_rate`` Hz; None when the
            clip has no audio (``audio_missing`` says why).
        sample_rate: audio rate in Hz (0 without audio).
        track: the face track (landmarks, pose, blendshapes).
        aperture: (T,) mouth aperture (NaN where no face).
        envelope: (T,) speech envelope in [0, 1] (None without audio).
        level_db: (T,) audio level per frame, dB relative to the loudest frame (None without
            audio).
        eye_openness: (T, 2) lid opening per eye (NaN where no face).
        static_mask: (H, W) bool, True away from the face (the background).
        references: the companion's reference images ((H, W, 3) uint8), if known.
        timings: speed inputs when the clip was rendered here (``total_s``, ``first_frame_s``,
            ``audio_s``, ``n_frames``).
        audio_missing: why there is no audio (e.g. "no audio track in clip.mp4"), else None.
    """

    fps: float
    frames: np.ndarray | StreamedVideo
    audio: np.ndarray | None
    sample_rate: int
    track: FaceTrack
    aperture: np.ndarray
    envelope: np.ndarray | None
    level_db: np.ndarray | None
    eye_openness: np.ndarray
    static_mask: np.ndarray
    references: list[np.ndarray] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    audio_missing: str | None = None

    @property
    def n_frames(self) -> int:
        return self.track.n_frames

    def inputs(self) -> dict[str, Any]:
        """Metric inputs by ``update`` argument name, each a batch of one clip (absent: None)."""
        if isinstance(self.frames, StreamedVideo):
            video: Any = [self.frames]  # a batch of one streamed (T, 3, H, W) clip
        else:
            video = torch.from_numpy(self.frames).permute(0, 3, 1, 2)[None]  # (1, T, 3, H, W)

        def batch(x: np.ndarray | None) -> torch.Tensor | None:
            return None if x is None else torch.from_numpy(x)[None]

        out: dict[str, Any] = {
            "fps": self.fps,
            "video": video,
            "landmarks": batch(self.track.landmarks),
            "pose": batch(np.asarray(self.track.pose)),
            "aperture": batch(self.aperture),
            "envelope": batch(self.envelope),
            "level_db": batch(self.level_db),
            "eye_openness": batch(self.eye_openness),
            "static_mask": batch(self.static_mask),
            "references": self.references or None,
            "audio": batch(self.audio),  # (1, S) from frame 0
            "sample_rate": self.sample_rate if self.audio is not None else None,
        }
        for key in ("total_s", "first_frame_s", "audio_s", "n_frames"):
            value = self.timings.get(key)
            out[key] = None if value is None else torch.tensor([float(value)], dtype=torch.float64)
        return out

    def missing(self) -> dict[str, str]:
        """Why inputs are absent, by input name (for :meth:`~evals.suite.Suite.score_clip`)."""
        return dict.fromkeys(AUDIO_INPUTS, self.audio_missing) if self.audio_missing else {}


def static_mask(landmarks: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """Pixels away from the face over the whole clip: the background that should not change.

    The union over frames of each face's landmark box, grown by ``margin`` times its size on
    the left, right and top, and extended to the bottom of the frame (neck and shoulders may
    move with the head), is excluded.

    Args:
        landmarks: (T, P, 2|3) landmarks in pixels, NaN rows where no face.
        shape: (H, W) of the frames.
        margin: growth of the face box on each side, as a fraction of its width/height.

    Returns:
        (H, W) bool, True for static pixels (all True when no face was found).

    Example:
        >>> lm = np.zeros((1, 478, 3)); lm[0, :, 0] = [40] * 239 + [60] * 239; lm[0, :, 1] = 50
        >>> m = static_mask(lm, (100, 100), margin=0.0); bool(m[50, 50]), bool(m[90, 10])
        (False, True)
    """
    h, w = shape
    mask = np.ones((h, w), bool)
    xy = np.asarray(landmarks)[..., :2]  # no float64 copy of a long clip: min/max are exact
    ok = np.isfinite(xy).all(axis=(1, 2))
    for i in np.flatnonzero(ok):
        x0, y0 = xy[i].min(axis=0).astype(np.float64)
        x1, y1 = xy[i].max(axis=0).astype(np.float64)
        gx, gy = margin * (x1 - x0), margin * (y1 - y0)
        c0, c1 = int(max(np.floor(x0 - gx), 0)), int(min(np.ceil(x1 + gx) + 1, w))
        r0 = int(max(np.floor(y0 - gy), 0))
        mask[r0:, c0:c1] = False
    return mask


def _assemble(
    frames: np.ndarray | StreamedVideo,
    fps: float,
    track: FaceTrack,
    audio: np.ndarray | None,
    sample_rate: int,
    *,
    audio_missing: str | None,
    shape: tuple[int, int],
    references: Sequence[np.ndarray] | None,
    timings: Mapping[str, float] | None,
    floor_db: float,
    mask_margin: float,
) -> ClipFeatures:
    """The per-frame curves of a tracked clip (audio None: no audio curves)."""
    n = track.n_frames
    if audio is not None:
        audio = np.asarray(audio, np.float32).reshape(-1)
    feats = ClipFeatures(
        fps=float(fps),
        frames=frames,
        audio=audio,
        sample_rate=int(sample_rate) if audio is not None else 0,
        track=track,
        aperture=mouth_aperture(track.landmarks),
        envelope=None
        if audio is None
        else speech_envelope(audio, sample_rate, fps, n, floor_db=floor_db),
        level_db=None if audio is None else frame_level_db(audio, sample_rate, fps, n),
        eye_openness=eye_openness(track.landmarks),
        static_mask=static_mask(track.landmarks, shape, mask_margin),
        references=list(references) if references else None,
        timings=dict(timings or {}),
        audio_missing=audio_missing,
    )
    log.debug("features of %d frames: face in %.0f%%", n, 100 * track.detection_rate)
    return feats


def extract_features(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    *,
    references: Sequence[np.ndarray] | None = None,
    timings: Mapping[str, float] | None = None,
    floor_db: float,
    min_confidence: float,
    mask_margin: float,
) -> ClipFeatures:
    """Tracks the face in a clip held in memory and derives every per-frame curve the metrics use.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        fps: frames per second.
        audio: (S,) mono audio from frame 0 (empty: the clip has no audio; the lip-sync
            metrics are then skipped).
        sample_rate: audio rate in Hz (any value when ``audio`` is empty).
        references: the companion's reference images, (H, W, 3) uint8 each.
        timings: speed inputs (``total_s``, ``first_frame_s``, ``audio_s``, ``n_frames``).
        floor_db: envelope floor, dB below the loudest frame.
        min_confidence: face tracker thresholds, in [0, 1].
        mask_margin: see :func:`static_mask`.

    Returns:
        The :class:`ClipFeatures`.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    track = track_video(frames, fps, min_confidence=min_confidence)
    audio = np.asarray(audio, np.float32).reshape(-1)
    silent = audio.size == 0 or sample_rate <= 0
    return _assemble(
        frames,
        fps,
        track,
        None if silent else audio,
        sample_rate,
        audio_missing="the clip has no audio" if silent else None,
        shape=frames.shape[1:3],
        references=references,
        timings=timings,
        floor_db=floor_db,
        mask_margin=mask_margin,
    )


def _fit_audio(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """(S,) mono audio cut or zero-padded to ``n_frames / fps`` seconds."""
    n = round(n_frames / fps * sample_rate)
    audio = np.asarray(audio, np.float32).reshape(-1)
    return np.pad(audio[:n], (0, max(0, n - len(audio))))


def features_from_file(
    path: str | os.PathLike[str],
    *,
    audio: tuple[np.ndarray, int] | None = None,
    audio_missing: str | None = None,
    references: Sequence[np.ndarray] | None = None,
    timings: Mapping[str, float] | None = None,
    floor_db: float,
    min_confidence: float,
    mask_margin: float,
) -> ClipFeatures:
    """Features of a video file, decoded once frame by frame: no frame is kept.

    The face is tracked as frames decode, the audio track is read alongside; ``frames`` of the
    result is the file as a :class:`~evals.functional._clips.StreamedVideo`, decoded again by
    each metric that reads pixels. Memory grows only with the per-frame features (landmarks:
    about 6 kB a frame) and the audio.

    Args:
        path: the video file (any container FFmpeg reads).
        audio: ((S,) mono, rate Hz) to use instead of the file's own audio track, from frame 0
            (cut or zero-padded to the video's length).
        audio_missing: score the clip without audio, for this reason, whatever its own track
            (e.g. the audio file meant to replace it has none).
        references: the companion's reference images, (H, W, 3) uint8 each.
        timings: speed inputs (``total_s``, ``first_frame_s``, ``audio_s``, ``n_frames``).
        floor_db: envelope floor, dB below the loudest frame.
        min_confidence: face tracker thresholds, in [0, 1].
        mask_margin: see :func:`static_mask`.

    Returns:
        The :class:`ClipFeatures`; without audio (no track and no ``audio``), the audio inputs
        are absent with the reason in ``audio_missing``.

    Raises:
        VideoFormatError: missing, undecodable or truncated file, or no frame in it.
    """
    stream = VideoStream(path)
    track = track_video(
        stream, stream.fps, min_confidence=min_confidence, expected_frames=stream.declared_frames
    )
    n = stream.n_frames
    if n == 0:
        raise VideoFormatError(f"{path}: the video stream has no frames")
    samples: np.ndarray | None = None
    rate, missing = 0, audio_missing
    if missing is None and audio is not None:
        samples, rate = _fit_audio(audio[0], audio[1], n, stream.fps), int(audio[1])
    elif missing is None and stream.has_audio:
        samples, rate = stream.audio(), stream.sample_rate
    elif missing is None:
        missing = f"no audio track in {path}"
    video = StreamedVideo(path, n_frames=n, height=stream.height, width=stream.width)
    return _assemble(
        video,
        stream.fps,
        track,
        samples,
        rate,
        audio_missing=missing,
        shape=(stream.height, stream.width),
        references=references,
        timings=timings,
        floor_db=floor_db,
        mask_margin=mask_margin,
    )
