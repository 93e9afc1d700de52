"""Media I/O (PyAV): audio and WAV files, streaming MP4 (H.264 + AAC) writing, MP4 reading, probing.

Audio is float32 in [-1, 1], (S,) mono or (S, C); frames are RGB uint8 (H, W, 3). AAC priming (1024
samples of encoder delay) goes out as a negative first-packet pts, which the mp4 muxer records in an
edit list and FFmpeg's decoder drops; ``read_mp4`` also cuts audio timed before the video start.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import tempfile
import wave
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from scipy.signal import resample_poly

from avatar.errors import AudioFormatError, VideoFormatError

log = logging.getLogger(__name__)

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
_INT_SCALE = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}  # FFmpeg decodes 24-bit PCM to s32
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # we encode AAC at
PathLike = str | os.PathLike[str]


def _require_file(path: PathLike, error: type[Exception]) -> Path:
    if not Path(path).is_file():
        raise error(f"{path}: file does not exist")
    return Path(path)


def _check_rate(rate: int, what: object) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(f"{what}: sample rate {rate} Hz is outside [8000, 192000]")


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """Decoded audio frame -> float32 (S, C) in [-1, 1], whatever the sample format."""
    data = frame.to_ndarray()  # planar: (C, S); packed: (1, S * C)
    data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
    name = frame.format.name.rstrip("p")
    if name == "u8":
        return ((data - 128.0) / 128.0).astype(np.float32)
    return (data / _INT_SCALE.get(name, 1.0)).astype(np.float32)


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample (S,) or (S, C) audio along time with a polyphase filter at the exact ratio dst/src.

    Returns:
        float32 with ceil(S * dst_rate / src_rate) samples: the duration is kept.

    >>> resample(np.zeros(16000, np.float32), 16000, 22050).shape
    (22050,)
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate:
        return np.asarray(audio, dtype=np.float32)
    g = math.gcd(src_rate, dst_rate)
    return resample_poly(audio, dst_rate // g, src_rate // g, axis=0).astype(np.float32)


def read_audio(
    path: PathLike, *, mono: bool = True, sample_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """Read the first audio stream of any file FFmpeg decodes (wav, flac, mp3, ogg, m4a, mp4).

    Args:
        path: Audio (or video) file; PCM may be 8/16/24/32-bit int or 32/64-bit float.
        mono: Average the channels to (S,); over 2 channels are always averaged, to (S, 1).
        sample_rate: Resample to this rate in Hz; None keeps the file's rate.

    Returns:
        (audio, rate): float32 in [-1, 1], (S,) if mono else (S, C); rate in Hz.

    Raises:
        AudioFormatError: Missing file, undecodable, no audio stream, no samples, or a rate
            outside [8000, 192000] Hz.
    """
    path = _require_file(path, AudioFormatError)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFormatError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            _check_rate(rate, path)
            chunks = [_frame_samples(frame) for frame in container.decode(stream)]
    except av.FFmpegError as exc:
        raise AudioFormatError(f"{path}: not decodable audio ({exc})") from exc
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise AudioFormatError(f"{path}: audio stream has no samples")
    audio = np.concatenate(chunks)  # (S, C)
    if mono or audio.shape[1] > 2:
        if not mono:
            log.info("%s: downmixing %d channels to mono", path, audio.shape[1])
        audio = audio.mean(axis=1, keepdims=not mono)
    if sample_rate is not None and sample_rate != rate:
        _check_rate(sample_rate, f"{path} (requested rate)")
        audio, rate = resample(audio, rate, sample_rate), sample_rate
    return np.clip(audio, -1.0, 1.0).astype(np.float32), rate


def _temp_beside(path: Path, suffix: str) -> Path:
    """A new hidden file next to ``path``: same filesystem, so ``os.replace`` is atomic.

    ``mkstemp`` makes it private (0600); it gets the mode a plain new file would (umask), since
    it becomes the user's output.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return Path(tmp)


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float (S,) or (S, C) audio in [-1, 1] (clipped) as 16-bit PCM WAV, atomically.

    Parent directories are created; the data goes to a temp file that replaces ``path`` at the end.
    """
    path, audio = Path(path), np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or sample_rate <= 0:
        raise AudioFormatError(f"{path}: need (S,) or (S, C) audio and a positive rate")
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    tmp = _temp_beside(path, ".part.wav")
    try:
        with wave.open(str(tmp), "wb") as out:
            out.setparams((1 if audio.ndim == 1 else audio.shape[1], 2, sample_rate, 0, "NONE", ""))
            out.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def frame_count(audio_seconds: float, fps: float) -> int:
    """Video frames covering ``audio_seconds``: seconds * fps rounded half up, >= 1 if non-empty.

    >>> frame_count(2.0, 25), frame_count(1.02, 25), frame_count(1.01, 25), frame_count(0.001, 25)
    (50, 26, 25, 1)
    """
    if audio_seconds < 0 or fps <= 0:
        raise ValueError(f"need audio_seconds >= 0 and fps > 0, got {audio_seconds}, {fps}")
    return max(math.floor(audio_seconds * fps + 0.5), 1) if audio_seconds > 0 else 0


class Mp4Writer:
    """Streaming MP4 writer: H.264 (libx264, yuv420p, CFR, pts = frame index) + AAC, faststart.

    Frames are encoded as they arrive. Audio is buffered and encoded up to the time the video has
    reached (so the file is interleaved); ``close`` zero-pads or trims it to exactly n_frames / fps.
    Output goes to a hidden temp file beside ``path`` that replaces ``path`` only on a clean
    ``close``; leaving the ``with`` block by an exception (or ``abort()``) deletes it.

    Args:
        path: Target .mp4 file; parent directories are created.
        fps: Frames per second (made rational with denominator <= 1001, e.g. 30000/1001).
        size: (W, H) in pixels, both even (yuv420p).
        sample_rate: Rate of the audio given to ``write_audio`` in Hz; a rate AAC lacks is
            resampled to the next one up (at most 48000).
        crf: libx264 constant rate factor, 0..51 (18 near-transparent, 23 the x264 default).
        preset: libx264 preset, ultrafast .. veryslow.
        audio_bitrate: AAC bitrate in bit/s.
        channels: Audio channels, 1 or 2.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        fps: float,
        size: tuple[int, int],
        sample_rate: int,
        crf: int,
        preset: str,
        audio_bitrate: int,
        channels: int = 1,
    ) -> None:
        width, height = size
        if not (math.isfinite(fps) and fps > 0) or min(size) <= 0 or width % 2 or height % 2:
            raise VideoFormatError(f"{path}: need fps > 0 and even (W, H), got {fps}, {size}")
        if channels not in (1, 2):
            raise AudioFormatError(f"{path}: MP4 audio must be mono or stereo, not {channels} ch")
        _check_rate(sample_rate, path)
        self.path, self.fps, self.size = Path(path), float(fps), (width, height)
        self.sample_rate, self.channels = sample_rate, channels
        self._rate = Fraction(fps).limit_denominator(1001)
        self._aac_rate = next((r for r in _AAC_RATES if r >= sample_rate), 48000)
        self._layout = "mono" if channels == 1 else "stereo"
        self._n_frames, self._audio_sent, self._closed = 0, 0, False
        self._audio_buf = np.zeros((0, channels), np.float32)  # (S, C) at the AAC rate, unsent
        self._tmp = _temp_beside(self.path, ".part.mp4")
        try:
            self._container = av.open(
                str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"}
            )
            self._video = self._container.add_stream(
                "libx264", rate=self._rate, options={"crf": str(crf), "preset": preset}
            )
            self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
            self._video.codec_context.time_base = 1 / self._rate
            self._audio = self._container.add_stream("aac", rate=self._aac_rate)
            self._audio.layout, self._audio.bit_rate = self._layout, audio_bitrate
            self._container.start_encoding()  # opens the encoders, so frame_size is known
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._frame_size = self._audio.codec_context.frame_size or 1024
        if self._aac_rate != sample_rate:
            log.info("%s: resampling audio %d -> %d Hz for AAC", path, sample_rate, self._aac_rate)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        if self._closed:
            raise RuntimeError(f"Mp4Writer for {self.path} is closed")
        for packet in packets:
            self._container.mux(packet)

    def write_frame(self, frame_rgb: np.ndarray) -> None:
        """Encode one RGB uint8 (H, W, 3) frame, (W, H) = ``size``."""
        frame_rgb, (width, height) = np.asarray(frame_rgb), self.size
        if frame_rgb.dtype != np.uint8 or frame_rgb.shape != (height, width, 3):
            raise VideoFormatError(
                f"{self.path}: frame {self._n_frames} must be uint8 ({height}, {width}, 3), "
                f"got {frame_rgb.dtype} {frame_rgb.shape}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
        frame.pts, frame.time_base = self._n_frames, 1 / self._rate
        self._mux(self._video.encode(frame))
        self._n_frames += 1
        self._pump_audio(final=False)

    def write_frames(self, frames: Iterable[np.ndarray]) -> None:
        """Encode frames one at a time from a (T, H, W, 3) array or any iterable of frames."""
        for frame in frames:
            self.write_frame(frame)

    def write_audio(self, samples: np.ndarray) -> None:
        """Append float (S,) or (S, C) audio in [-1, 1] at ``sample_rate``; call once or often."""
        samples = np.asarray(samples)
        samples = samples[:, None] if samples.ndim == 1 else samples
        ok = samples.ndim == 2 and samples.shape[1] == self.channels
        if not (ok and np.issubdtype(samples.dtype, np.floating) and np.isfinite(samples).all()):
            raise AudioFormatError(
                f"{self.path}: audio must be finite float (S,) or (S, "
                f"{self.channels}), got {samples.dtype} {samples.shape}"
            )
        samples = resample(np.clip(samples, -1.0, 1.0), self.sample_rate, self._aac_rate)
        self._audio_buf = np.concatenate([self._audio_buf, samples])
        self._pump_audio(final=False)

    def _pump_audio(self, *, final: bool) -> None:
        """Encode buffered audio up to the video's current end in AAC frames of frame_size."""
        target = round(self._n_frames * self._aac_rate / self._rate)  # samples the video spans
        missing = target - self._audio_sent - len(self._audio_buf)
        if final and missing > 0:
            pad = np.zeros((missing, self.channels), np.float32)
            self._audio_buf = np.concatenate([self._audio_buf, pad])
        elif final and missing < 0:
            log.debug("%s: trimming %d audio samples past the video", self.path, -missing)
        while True:
            n = min(self._frame_size, target - self._audio_sent, len(self._audio_buf))
            if n <= 0 or (n < self._frame_size and not final):
                break  # the encoder takes a short frame only as the last one
            chunk, self._audio_buf = self._audio_buf[:n], self._audio_buf[n:]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T), format="fltp", layout=self._layout
            )
            frame.sample_rate, frame.pts = self._aac_rate, self._audio_sent
            frame.time_base = Fraction(1, self._aac_rate)
            self._mux(self._audio.encode(frame))
            self._audio_sent += n

    def close(self) -> None:
        """Finish the audio, flush both encoders, write the trailer and move the file into place."""
        if self._closed:
            return
        try:
            if self._n_frames == 0:
                raise VideoFormatError(f"{self.path}: no frames were written")
            self._pump_audio(final=True)
            self._mux(self._video.encode(None))
            self._mux(self._audio.encode(None))
            self._closed = True
            self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        log.debug("%s: wrote %d frames at %s fps", self.path, self._n_frames, self._rate)

    def abort(self) -> None:
        """Drop the output: close the container and delete the temp file; ``path`` is untouched."""
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            log.debug("%s: error while aborting: %s", self.path, exc)
        self._tmp.unlink(missing_ok=True)


def write_mp4(
    path: PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    crf: int = 18,
    preset: str = "veryfast",
    audio_bitrate: int = 128000,
) -> Path:
    """Write RGB uint8 frames ((T, H, W, 3) array or iterable) and (S,) or (S, C) audio to MP4.

    The audio is trimmed or zero-padded to T / fps; see ``Mp4Writer`` for the encoding.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None or np.ndim(first) != 3:
        raise VideoFormatError(f"{path}: need at least one (H, W, 3) frame")
    audio = np.asarray(audio)
    height, width = np.shape(first)[:2]
    with Mp4Writer(
        path,
        fps=fps,
        size=(width, height),
        sample_rate=sample_rate,
        crf=crf,
        preset=preset,
        audio_bitrate=audio_bitrate,
        channels=1 if audio.ndim == 1 else audio.shape[-1],
    ) as writer:
        writer.write_audio(audio)  # first, so audio and video packets interleave
        writer.write_frame(first)
        writer.write_frames(frames)
    return Path(path)


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
    path = _require_file(path, VideoFormatError)
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
                    parts.append((start, _frame_samples(f).mean(axis=1)))
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


class StreamResampler:
    """Resampling of a stream chunk by chunk (libswresample through PyAV).

    The output does not depend on how the input was chunked: pushing the whole signal at once
    and pushing it in 20 ms pieces give identical samples, so a real-time path and its offline
    twin see the same audio. Output trails input by the filter delay (a few ms) until
    :meth:`flush`.

    Args:
        src_rate: rate of the pushed audio, Hz.
        dst_rate: rate of the returned audio, Hz.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        _check_rate(src_rate, "stream")
        self.src_rate, self.dst_rate = int(src_rate), int(dst_rate)
        self._pts = 0
        self._resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=self.dst_rate)
            if self.src_rate != self.dst_rate
            else None
        )

    def _run(self, frame: av.AudioFrame | None) -> np.ndarray:
        assert self._resampler is not None
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """(S,) float32 mono at ``src_rate`` -> the (S',) float32 samples now ready."""
        samples = np.ascontiguousarray(samples, np.float32).reshape(-1)
        if self._resampler is None or not len(samples):
            return samples.copy() if self._resampler is None else np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = self.src_rate
        frame.time_base = Fraction(1, self.src_rate)
        frame.pts = self._pts
        self._pts += len(samples)
        return self._run(frame)

    def flush(self) -> np.ndarray:
        """The samples still held in the filter (call once, at the end of the stream)."""
        return self._run(None) if self._resampler is not None else np.zeros(0, np.float32)


def resample_stream(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Whole-signal resampling identical to pushing it through a :class:`StreamResampler`.

    >>> x = np.random.default_rng(0).standard_normal(4800).astype(np.float32)
    >>> len(resample_stream(x, 48000, 16000))
    1600
    """
    r = StreamResampler(src_rate, dst_rate)
    return np.concatenate([r.push(samples), r.flush()])
