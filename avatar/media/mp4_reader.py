"""Reading video files (PyAV): decoded frames with their audio aligned to the video start,
frame iteration, one streamed pass (frames as they decode, then the audio), and stream facts
without decoding.

Frames are RGB uint8 (H, W, 3); audio is float32 mono in [-1, 1]. ``read_mp4`` and
:class:`VideoStream` cut audio timed before the video start (AAC priming that no edit list
removed). FFmpeg running out of memory is raised as a ``MemoryError``, not as bad data.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from avatar.errors import VideoFormatError
from avatar.media.audio_files import decoded_samples, require_file

__all__ = ["VideoClip", "VideoStream", "iter_video_frames", "mp4_boxes", "probe_mp4", "read_mp4"]

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
    except MemoryError:  # av.error.MemoryError is an FFmpegError too: not the file's fault
        raise
    except av.FFmpegError as exc:
        raise VideoFormatError(f"{path}: not decodable video ({exc})") from exc


class _AudioLine:
    """Mono audio laid on a timeline that starts with the video, piece by piece as it decodes.

    Each piece goes at its start time (None: right after the previous piece); audio before the
    video start (priming the decoder did not drop, no edit list) is cut; a later piece
    overwrites an earlier one where they overlap. The buffer grows as needed (zeros between
    pieces), so no list of pieces is kept.
    """

    def __init__(self, rate: int, capacity: int = 0) -> None:
        self.rate, self.end, self.top = rate, 0, 0
        self.buf = np.zeros(max(0, capacity), np.float32)

    def add(self, start_s: float | None, chunk: np.ndarray) -> None:
        """Lays (S,) samples starting ``start_s`` seconds after the video start (or None)."""
        start = self.end if start_s is None else round(start_s * self.rate)
        self.end = start + len(chunk)
        if start < 0:  # priming the decoder did not drop (no edit list): cut it here
            chunk, start = chunk[-start:], 0
        stop = start + len(chunk)
        if stop > len(self.buf):
            grown = np.zeros(max(stop, len(self.buf) * 3 // 2 + self.rate), np.float32)
            grown[: self.top] = self.buf[: self.top]
            self.buf = grown
        self.buf[start:stop] = chunk
        self.top = max(self.top, stop)

    def line(self, n_samples: int) -> np.ndarray:
        """(n_samples,) float32: the timeline cut or zero-padded to ``n_samples``."""
        if len(self.buf) >= n_samples:
            return self.buf[:n_samples]  # zeros past ``top``
        out = np.zeros(n_samples, np.float32)
        out[: self.top] = self.buf[: self.top]
        return out


@dataclass
class _Pass:
    """What one demuxing pass over a file found besides the frames it yielded."""

    rate: Fraction = Fraction(0)
    shape: tuple[int, int, int, int] = (0, 0, 0, 3)
    sample_rate: int = 0
    audio: _AudioLine = field(default_factory=lambda: _AudioLine(0))
    n_packets: int = 0  # non-empty video packets
    n_decoded: int = 0  # frames yielded


def _demux(
    path: PathLike, found: _Pass, *, decode_video: bool, limit: float
) -> Iterator[np.ndarray]:
    """Yield up to ``limit`` RGB frames in order, decoding the audio track alongside.

    Fills ``found`` as it goes: stream facts first, then the audio timeline and counts.
    """
    with _open_video(path) as (container, video):
        video.thread_type = "AUTO"
        found.rate = Fraction(video.average_rate or video.guessed_rate or 0)
        if found.rate <= 0:
            raise VideoFormatError(f"{path}: unknown frame rate")
        t0 = float((video.start_time or 0) * video.time_base)
        found.shape = (0, video.height, video.width, 3)
        audio = container.streams.audio[0] if container.streams.audio else None
        found.sample_rate = audio.codec_context.sample_rate if audio else 0
        seconds = float(audio.duration * audio.time_base) if audio and audio.duration else 0.0
        found.audio = _AudioLine(found.sample_rate, round(seconds * found.sample_rate))
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            if packet.stream.type == "audio":
                for f in packet.decode():
                    start = None if f.time is None else f.time - t0
                    found.audio.add(start, decoded_samples(f).mean(axis=1))
            else:
                found.n_packets += packet.size > 0
                if decode_video and found.n_decoded < limit:
                    for f in packet.decode():
                        found.n_decoded += 1
                        yield f.to_ndarray(format="rgb24")


def read_mp4(
    path: PathLike, *, with_frames: bool = True, max_frames: int | None = None
) -> VideoClip:
    """Read a video file: RGB frames, and mono audio aligned to the video start and cut to its end.

    Holds every frame: use :class:`VideoStream` for long clips.

    Args:
        path: MP4 (or any container FFmpeg reads).
        with_frames: Decode frames; False only counts video packets (fast) and decodes the audio.
        max_frames: Keep only the first ``max_frames`` frames and the matching audio.

    Raises:
        VideoFormatError: Missing file, undecodable data, no video stream or no frame rate.
    """
    limit = math.inf if max_frames is None else max_frames
    found = _Pass()
    frames = list(_demux(path, found, decode_video=with_frames, limit=limit))
    n_frames = int(min(len(frames) if with_frames else found.n_packets, limit))
    stacked = np.stack(frames[:n_frames]) if frames else np.zeros(found.shape, np.uint8)
    n_samples = round(n_frames * found.sample_rate / found.rate)
    audio_line = found.audio.line(n_samples)
    return VideoClip(stacked, float(found.rate), audio_line, found.sample_rate, n_frames)


class VideoStream:
    """A video file decoded once, in order, without holding its frames: a streaming read_mp4.

    Iterating yields (H, W, 3) uint8 RGB frames as they decode, with the audio track decoded
    alongside (it is small); once the iteration has ended, :attr:`n_frames` and :meth:`audio`
    give what :func:`read_mp4` would (mono audio aligned to the video start, cut to
    ``n_frames / fps``). Stream facts are read on construction, without decoding. Unlike
    :func:`read_mp4`, a truncated MP4 is an error: one whose last box runs past the end of the
    file (checked before decoding).

    Args:
        path: MP4 (or any container FFmpeg reads).
        max_frames: stop after this many frames (the audio is cut to match).

    Attributes:
        fps, width, height: stream facts.
        declared_frames: the frame count the container declares (0: unknown).
        has_audio: the file has an audio stream.
        n_frames: frames of the last complete pass (-1 before one).

    Raises:
        VideoFormatError: on construction or while iterating: missing file, undecodable data,
            no video stream, no frame rate, or a truncated file.
    """

    def __init__(self, path: PathLike, *, max_frames: int | None = None) -> None:
        self.path = path
        self.max_frames = max_frames
        with _open_video(path) as (container, video):
            rate = Fraction(video.average_rate or video.guessed_rate or 0)
            self.width, self.height = int(video.width), int(video.height)
            self.declared_frames = int(video.frames or 0)  # the container's count, 0: unknown
            self.has_audio = bool(container.streams.audio)
        if rate <= 0:
            raise VideoFormatError(f"{path}: unknown frame rate")
        self.fps = float(rate)
        cut = _truncated_box(path)
        if cut is not None:
            raise VideoFormatError(
                f"{path}: truncated file: its '{cut[0]}' box runs {cut[1]} bytes past the end "
                "(an interrupted copy or download?)"
            )
        self.n_frames = -1  # known once a pass has ended
        self._found = _Pass()
        self._audio: np.ndarray | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        limit = math.inf if self.max_frames is None else self.max_frames
        found = _Pass()
        n = 0
        for frame in _demux(self.path, found, decode_video=True, limit=limit):
            if n < limit:
                n += 1
                yield frame
        self.n_frames, self._found, self._audio = n, found, None

    @property
    def sample_rate(self) -> int:
        """Audio rate in Hz (0 without an audio track; known once a pass has ended)."""
        return self._found.sample_rate

    def audio(self) -> np.ndarray:
        """(S,) float32 mono audio from the first frame, S = round(n_frames / fps * rate).

        Empty without an audio track. Raises ``RuntimeError`` before a pass has ended.
        """
        if self.n_frames < 0:
            raise RuntimeError(f"{self.path}: iterate the stream before reading its audio")
        if self._audio is None:  # cut once; the timeline buffer is then let go
            found = self._found
            n_samples = round(self.n_frames * found.sample_rate / found.rate)
            self._audio = found.audio.line(n_samples)
            found.audio = _AudioLine(0)
        return self._audio


def iter_video_frames(path: PathLike) -> Iterator[tuple[np.ndarray, float]]:
    """Yield (RGB uint8 (H, W, 3), presentation time in s) per frame, decoding as it goes."""
    with _open_video(path) as (container, video):
        video.thread_type = "AUTO"
        step = 1 / float(video.average_rate or 1)
        for index, frame in enumerate(container.decode(video)):
            seconds = frame.time if frame.time is not None else index * step
            yield frame.to_ndarray(format="rgb24"), float(seconds)


def _box_spans(path: PathLike) -> Iterator[tuple[str, int, int]]:
    """(type, start, size in bytes) of the top-level ISO-BMFF boxes in file order."""
    pos, end = 0, os.path.getsize(path)
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
            yield kind.decode("latin-1"), pos, size
            pos += size


def mp4_boxes(data: bytes) -> list[str]:
    """Types of the complete top-level ISO-BMFF boxes at the start of ``data`` (bytes of an MP4,
    e.g. a stream as received so far), in order.

    >>> mp4_boxes(b"\\x00\\x00\\x00\\x08ftyp" + b"\\x00\\x00\\x00\\x10moov")
    ['ftyp']
    """
    out, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size < 8 or at + size > len(data):
            break
        out.append(kind.decode("latin-1"))
        at += size
    return out


def _top_level_boxes(path: PathLike) -> list[str]:
    """Types of the top-level ISO-BMFF boxes in file order."""
    return [kind for kind, _, _ in _box_spans(path)]


def _truncated_box(path: PathLike) -> tuple[str, int] | None:
    """(type, missing bytes) of an ISO-BMFF file's box that runs past its end, else None.

    Files that do not start with an ``ftyp`` box (other containers) are not checked.
    """
    spans = list(_box_spans(path))
    if not spans or spans[0][0] != "ftyp":
        return None
    end = os.path.getsize(path)
    kind, start, size = spans[-1]
    return (kind, start + size - end) if start + size > end else None


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
