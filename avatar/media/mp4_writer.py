"""Streaming MP4 writing (PyAV): H.264 (libx264) + AAC, interleaved, faststart, atomic.

:class:`Mp4Encoding` holds what every MP4 writer shares (encoders, frame checks, audio
interleaving); :class:`Mp4Writer` writes a file, :mod:`avatar.media.mp4_stream` a fragmented
stream.

Frames are RGB uint8 (H, W, 3), converted to I420 with OpenCV and handed to libx264 without
a copy (:func:`~avatar.media.yuv.rgb_to_i420`: 0.19 ms of CPU a 512 px frame where PyAV's copy
and libswscale took 0.78 ms; the same BT.601 limited-range colours, chroma sited differently),
or I420 already (:meth:`Mp4Encoding.write_frame_i420`). Audio is float32 in [-1, 1], (S,) mono
or (S, C). AAC priming (1024 samples of encoder delay) goes out as a negative first-packet pts,
which the mp4 muxer records in an edit list and FFmpeg's decoder drops.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Self

import av
import numpy as np

from avatar.audio import check_rate, resample
from avatar.errors import AudioFormatError, AvatarError, VideoFormatError
from avatar.media.encoder_settings import X264_PRESETS, EncoderSettings
from avatar.media.files import commit_temp, discard_temp, temp_beside
from avatar.media.outputs import start_error, write_error
from avatar.media.yuv import i420_shape, rgb_to_i420

log = logging.getLogger(__name__)

__all__ = ["X264_PRESETS", "EncoderSettings", "Mp4Encoding", "Mp4Writer", "write_mp4"]

_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # we encode AAC at
PathLike = str | os.PathLike[str]


class Mp4Encoding:
    """What every MP4 writer shares: H.264 (libx264, yuv420p, CFR, pts = frame index) + AAC,
    frames checked and encoded as they arrive, audio interleaved and cut to the video.

    Audio is buffered and encoded up to the time the video has reached (so the output is
    interleaved); :meth:`_finish` zero-pads or trims it to exactly n_frames / fps. Subclasses
    say where the bytes go (:class:`Mp4Writer`: a file; :class:`~avatar.media.mp4_stream.
    Mp4StreamWriter`: a sink, fragment by fragment) by calling :meth:`_open` with the target,
    and what a failed write means (:meth:`_write_failed`).

    Args:
        label: names the output in messages (its path, or what a stream is for).
        fps: Frames per second (made rational with denominator <= 1001, e.g. 30000/1001).
        size: (W, H) in pixels, both even (yuv420p).
        sample_rate: Rate of the audio given to ``write_audio`` in Hz; a rate AAC lacks is
            resampled to the next one up (at most 48000).
        encoder: H.264 and AAC settings (config group ``encoder``).
        channels: Audio channels, 1 or 2.
    """

    def __init__(
        self,
        label: str,
        *,
        fps: float,
        size: tuple[int, int],
        sample_rate: int,
        encoder: EncoderSettings,
        channels: int = 1,
    ) -> None:
        width, height = size
        if not (math.isfinite(fps) and fps > 0) or min(size) <= 0 or width % 2 or height % 2:
            raise VideoFormatError(f"{label}: need fps > 0 and even (W, H), got {fps}, {size}")
        if channels not in (1, 2):
            raise AudioFormatError(f"{label}: MP4 audio must be mono or stereo, not {channels} ch")
        check_rate(sample_rate, label)
        self._label, self.fps, self.size = label, float(fps), (width, height)
        self.sample_rate, self.channels, self.encoder = sample_rate, channels, encoder
        self._rate = Fraction(fps).limit_denominator(1001)
        self._aac_rate = next((r for r in _AAC_RATES if r >= sample_rate), 48000)
        self._layout = "mono" if channels == 1 else "stereo"
        self._n_frames, self._audio_sent, self._closed = 0, 0, False
        self._audio_buf = np.zeros((0, channels), np.float32)  # (S, C) at the AAC rate, unsent
        self._audio_skip = 0  # input samples still to drop at the start (a stream's priming)

    def _open(
        self,
        target: str | BinaryIO,
        muxer_options: dict[str, str],
        video_options: dict[str, str] | None = None,
        *,
        tune: str | None = None,
    ) -> None:
        """Open the muxer on ``target`` (a file name or a writable binary file object) with
        ``muxer_options`` (``movflags`` ...) and both encoders; ``video_options`` add libx264
        options to the encoder settings', ``tune`` a libx264 tune to the settings' tune."""
        options = self.encoder.x264_options(tune=tune)
        self._container = av.open(target, "w", format="mp4", options=muxer_options)
        self._video = self._container.add_stream(
            "libx264", rate=self._rate, options={**options, **(video_options or {})}
        )
        width, height = self.size
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._video.codec_context.time_base = 1 / self._rate
        self._audio = self._container.add_stream("aac", rate=self._aac_rate)
        self._audio.layout, self._audio.bit_rate = self._layout, self.encoder.audio_bitrate
        self._container.start_encoding()  # opens the encoders, so frame_size is known
        self._frame_size = self._audio.codec_context.frame_size or 1024
        if self._aac_rate != self.sample_rate:
            log.info(
                "%s: resampling audio %d -> %d Hz for AAC",
                self._label,
                self.sample_rate,
                self._aac_rate,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def n_frames(self) -> int:
        """Frames written so far."""
        return self._n_frames

    def _write_failed(self, exc: OSError) -> BaseException | None:
        """The error to raise when the output refused a write (the output is aborted by
        then); None: ``exc`` itself."""
        return None

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        if self._closed:
            raise RuntimeError(f"the MP4 writer of {self._label} is closed")
        try:
            for packet in packets:
                self._container.mux(packet)
        except OSError as exc:  # the disk is full, the file system went read-only ...
            self.abort()
            error = self._write_failed(exc)
            if error is None:
                raise
            raise error from exc

    def write_frame(self, frame_rgb: np.ndarray) -> None:
        """Encode one RGB uint8 (H, W, 3) frame, (W, H) = ``size`` (converted to I420 here)."""
        frame_rgb, (width, height) = np.asarray(frame_rgb), self.size
        if frame_rgb.dtype != np.uint8 or frame_rgb.shape != (height, width, 3):
            raise VideoFormatError(
                f"{self._label}: frame {self._n_frames} must be uint8 ({height}, {width}, 3), "
                f"got {frame_rgb.dtype} {frame_rgb.shape}"
            )
        self._encode_i420(rgb_to_i420(np.ascontiguousarray(frame_rgb)))

    def write_frame_i420(self, frame_i420: np.ndarray) -> None:
        """Encode one frame given as I420 planes: uint8 (H * 3 / 2, W), (W, H) = ``size``,
        BT.601 limited range, laid out as :func:`~avatar.media.yuv.rgb_to_i420` returns."""
        frame_i420, (width, height) = np.asarray(frame_i420), self.size
        shape = i420_shape(width, height)
        if frame_i420.dtype != np.uint8 or frame_i420.shape != shape:
            raise VideoFormatError(
                f"{self._label}: I420 frame {self._n_frames} must be uint8 {shape}, "
                f"got {frame_i420.dtype} {frame_i420.shape}"
            )
        self._encode_i420(np.ascontiguousarray(frame_i420))

    def _encode_i420(self, frame_i420: np.ndarray) -> None:
        # The frame wraps the array (no copy: 0.15 ms less at 512 px); libx264 copies the
        # picture before ``encode`` returns, so the caller may reuse the array afterwards.
        # PyAV 18 takes the height of a wrapped yuv420p array as rows // 6 * 4, wrong unless
        # H % 4 == 0: other heights are copied into a new frame.
        if self.size[1] % 4 == 0:
            frame = av.VideoFrame.from_numpy_buffer(frame_i420, format="yuv420p")
        else:
            frame = av.VideoFrame.from_ndarray(frame_i420, format="yuv420p")
        self._encode(frame)

    def _encode(self, frame: av.VideoFrame) -> None:
        """Encode the next video frame: a yuv420p frame goes to libx264 as it is, any other
        format through libswscale first (PyAV converts it to the stream's pix_fmt)."""
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
                f"{self._label}: audio must be finite float (S,) or (S, "
                f"{self.channels}), got {samples.dtype} {samples.shape}"
            )
        samples = resample(np.clip(samples, -1.0, 1.0), self.sample_rate, self._aac_rate)
        if self._audio_skip:
            drop = min(self._audio_skip, len(samples))
            samples, self._audio_skip = samples[drop:], self._audio_skip - drop
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
            log.debug("%s: trimming %d audio samples past the video", self._label, -missing)
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

    def _finish(self) -> None:
        """Finish the audio, flush both encoders and write the trailer (the container closes)."""
        if self._n_frames == 0:
            raise VideoFormatError(f"{self._label}: no frames were written")
        self._pump_audio(final=True)
        self._mux(self._video.encode(None))
        self._mux(self._audio.encode(None))
        self._closed = True
        self._container.close()

    def _close_container(self) -> None:
        """Close the container after a failure (whatever it still fails with is logged)."""
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            log.debug("%s: error while aborting: %s", self._label, exc)

    def close(self) -> None:  # pragma: no cover - every writer overrides it
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - every writer overrides it
        raise NotImplementedError


class Mp4Writer(Mp4Encoding):
    """Streaming MP4 file writer: H.264 + AAC, interleaved, faststart, written atomically.

    Frames are encoded as they arrive (see :class:`Mp4Encoding`). Output goes to a hidden temp
    file beside ``path`` that replaces ``path`` only on a clean ``close``; leaving the ``with``
    block by an exception (or ``abort()``) deletes it. A write the OS refuses (disk full,
    read-only file system, no permission) deletes it too and raises
    :class:`~avatar.errors.OutputPathError` naming the path and the reason.

    Args:
        path: Target .mp4 file; parent directories are created.
        fps, size, sample_rate, encoder, channels: as for :class:`Mp4Encoding`.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        fps: float,
        size: tuple[int, int],
        sample_rate: int,
        encoder: EncoderSettings,
        channels: int = 1,
    ) -> None:
        super().__init__(
            str(path),
            fps=fps,
            size=size,
            sample_rate=sample_rate,
            encoder=encoder,
            channels=channels,
        )
        self.path = Path(path)
        try:
            self._tmp = temp_beside(self.path, ".part.mp4")
        except OSError as exc:
            raise start_error(self.path, exc, what="MP4") from exc
        try:
            self._open(str(self._tmp), {"movflags": "+faststart"})
        except BaseException as exc:
            discard_temp(self._tmp)
            if isinstance(exc, OSError):
                raise write_error(self.path, exc, what="MP4") from exc
            raise

    def _write_failed(self, exc: OSError) -> BaseException | None:
        return write_error(self.path, exc, what="MP4")

    def close(self) -> None:
        """Finish the audio, flush both encoders, write the trailer and move the file into place."""
        if self._closed:
            return
        try:
            self._finish()  # the trailer, and the faststart rewrite of the file
            commit_temp(self._tmp, self.path)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError) and not isinstance(exc, AvatarError):
                raise write_error(self.path, exc, what="MP4") from exc
            raise
        log.debug("%s: wrote %d frames at %s fps", self.path, self._n_frames, self._rate)

    def abort(self) -> None:
        """Drop the output: close the container and delete the temp file; ``path`` is untouched."""
        self._close_container()
        discard_temp(self._tmp)


def write_mp4(
    path: PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    encoder: EncoderSettings,
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
        encoder=encoder,
        channels=1 if audio.ndim == 1 else audio.shape[-1],
    ) as writer:
        writer.write_audio(audio)  # first, so audio and video packets interleave
        writer.write_frame(first)
        writer.write_frames(frames)
    return Path(path)
