"""Reading video files (PyAV): decoded frames with their audio aligned to the video start,
frame iteration, and stream facts without decoding.

Frames are RGB uint8 (H, W, 3); audio is float32 mono in [-1, 1]. ``read_mp4`` cuts audio
timed before the video start (AAC priming that no edit list removed).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from avatar.errors import VideoFormatError
from avatar.media.audio_files import decoded_samples, require_file

__all__ = ["VideoClip", "iter_video_frames", "probe_mp4", "read_mp4"]

PathLike = str | os.PathLike[str]


@dataclass
class VideoClip:
    """Decoded video and its audio, starting together.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB; T = 0 when read with ``with_frames=False``.
        fps: Frames per second.
        audio: (S,) float32 mono in [-1, 1], S = round(n_frames / fps * sample_rate); empty,
            with ``sample_rate`` 0, when the file has no audio.
        sample_rate: Audio rate in Hz.
        n_frames: Frames in the clip; defaults to len(frames).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate: int
    n_frames: int = -1

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise VideoFormatError(f"frames must be uint8 (T, H, W, 3), got {self.frames.shape}")
        self.n_frames = len(self.frames) if self.n_frames < 0 else self.n_frames

    @property
    def duration(self) -> float:
        """Video duration in seconds: n_frames / fps."""
        return self.n_frames / self.fps


@contextmanager
def _open_video(path: PathLike) -> Iterator[tuple[Any, Any]]:
    """(container, first video stream) of a file; FFmpeg errors become VideoFormatError."""
    path = require_file(path, VideoFormatError)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoFormatError(f"{path}: no video stream")
            yield container, container.streams.video[0]
    except av.FFmpegError as exc:
        raise VideoFormatError(f"{path}: not decodable video ({exc})") from exc


def _place_audio(
    parts: list[tuple[float | None, np.ndarray]], rate: int, n_samples: int
) -> np.ndarray:
    """Lay (start s after the video start or None = after the last, (S,)) on a zero (n_samples,)."""
    out, end = np.zeros(n_samples, np.float32), 0
    for start_s, chunk in parts:
        start = end if start_s is None else round(start_s * rate)
        end = start + len(chunk)
        if start < 0:  # priming the decoder did not drop (no edit list): cut it here
            chunk, start = chunk[-start:], 0
        chunk = chunk[: max(0, n_samples - start)]
        out[start : start + len(chunk)] = chunk
    return out


def read_mp4(
    path: PathLike, *, with_frames: bool = True, max_frames: int | None = None
) -> VideoClip:
    """Read a video file: RGB frames, and mono audio aligned to the video start and cut to its end.

    Args:
        path: MP4 (or any container FFmpeg reads).
        with_frames: Decode frames; False only counts video packets (fast) and decodes the audio.
        max_frames: Keep only the first ``max_frames`` frames and the matching audio.

    Raises:
        VideoFormatError: Missing file, undecodable data, no video stream or no frame rate.
    """
    frames: list[np.ndarray] = []
    parts: list[tuple[float | None, np.ndarray]] = []  # (start s, mono (S,)) per audio frame
    limit, n_packets = math.inf if max_frames is None else max_frames, 0
    with _open_video(path) as (container, video):
        video.thread_type = "AUTO"
        rate = Fraction(video.average_rate or video.guessed_rate or 0)
        if rate <= 0:
            raise VideoFormatError(f"{path}: unknown frame rate")
        t0 = float((video.start_time or 0) * video.time_base)
        shape = (0, video.height, video.width, 3)
        audio = container.streams.audio[0] if container.streams.audio else None
        sample_rate = audio.codec_context.sample_rate if audio else 0
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            if packet.stream.type == "audio":
                for f in packet.decode():
                    start = None if f.time is None else f.time - t0
                    parts.append((start, decoded_samples(f).mean(axis=1)))
            else:
                n_packets += packet.size > 0
                if with_frames and len(frames) < limit:
                    frames += [f.to_ndarray(format="rgb24") for f in packet.decode()]
    n_frames = int(min(len(frames) if with_frames else n_packets, limit))
    stacked = np.stack(frames[:n_frames]) if frames else np.zeros(shape, np.uint8)
    audio_line = _place_audio(parts, sample_rate, round(n_frames * sample_rate / rate))
    return VideoClip(stacked, float(rate), audio_line, sample_rate, n_frames)


def iter_video_frames(path: PathLike) -> Iterator[tuple[np.ndarray, float]]:
    """Yield (RGB uint8 (H, W, 3), presentation time in s) per frame, decoding as it goes."""
    with _open_video(path) as (container, video):
        video.thread_type = "AUTO"
        step = 1 / float(video.average_rate or 1)
        for index, frame in enumerate(container.decode(video)):
            seconds = frame.time if frame.time is not None else index * step
            yield frame.to_ndarray(format="rgb24"), float(seconds)


def _top_level_boxes(path: PathLike) -> list[str]:
    """Types of the top-level ISO-BMFF boxes in file order."""
    boxes, pos, end = [], 0, os.path.getsize(path)
    with open(path, "rb") as fh:
        while pos + 8 <= end:
            fh.seek(pos)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:  # 64-bit largesize follows the type
                size = struct.unpack(">Q", fh.read(8))[0]
            elif size == 0:  # the box runs to the end of the file
                size = end - pos
            if size < 8:
                break
            boxes.append(kind.decode("latin-1"))
            pos += size
    return boxes


def probe_mp4(path: PathLike) -> dict[str, Any]:
    """Stream facts of a video file, without decoding it.

    Returns:
        video_codec, pix_fmt, width, height, fps (average rate), n_video_frames, video_duration (s),
        audio_codec, audio_sample_rate (Hz), audio_channels, audio_duration (s) (audio keys are None
        without audio) and faststart (the moov box comes before mdat).
    """
    with _open_video(path) as (container, video):
        fps = float(video.average_rate or 0)
        n = video.frames or sum(packet.size > 0 for packet in container.demux(video))
        a = container.streams.audio[0] if container.streams.audio else None
        info = dict(
            video_codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt,
            width=video.width,
            height=video.height,
            fps=fps,
            n_video_frames=n,
            video_duration=float(video.duration * video.time_base) if video.duration else n / fps,
            audio_codec=a.codec_context.name if a else None,
            audio_sample_rate=a.codec_context.sample_rate if a else None,
            audio_channels=a.codec_context.layout.nb_channels if a else None,
            audio_duration=float(a.duration * a.time_base) if a and a.duration else None,
        )
    boxes = _top_level_boxes(path)
    info["faststart"] = {"moov", "mdat"} <= set(boxes) and boxes.index("moov") < boxes.index("mdat")
    return info
