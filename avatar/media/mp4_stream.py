"""Fragmented MP4 for streaming (PyAV): H.264 + AAC handed to a sink fragment by fragment.

A player can start on the first fragment while the rest is still being rendered: the header
(``ftyp`` + an empty ``moov``) goes out when the writer opens, then one ``moof`` + ``mdat`` per
keyframe interval (``movflags=frag_keyframe+empty_moov+default_base_moof``, the layout Media
Source Extensions and FFmpeg play). Encoding, frame checks and A/V interleaving are
:class:`~avatar.media.mp4_writer.Mp4Encoding`'s, shared with the file writer, so a stream and a
file of the same render carry the same frames and audio.

:func:`open_mp4` picks the writer for an output (a path or a sink), :func:`check_mp4_output`
checks either before any work.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from avatar.media.mp4_writer import EncoderSettings, Mp4Encoding, Mp4Writer
from avatar.media.outputs import check_output_path

log = logging.getLogger(__name__)

__all__ = ["FRAGMENT_SECONDS", "Mp4Sink", "Mp4StreamWriter", "check_mp4_output", "open_mp4"]

Mp4Sink: TypeAlias = Callable[[bytes], None]
"""Receives the stream's bytes in order (called from the writing thread)."""

FRAGMENT_SECONDS = 0.5
"""Keyframe (and so fragment) interval, seconds: 12 frames at 25 fps. Shorter fragments reach
the player sooner and cost a little size (one keyframe each)."""

AAC_PRIMING = 1024
"""Samples of encoder delay before FFmpeg's AAC encoder's first real sample (one frame)."""
# libx264 without look-ahead or B-frames (added to the settings' own tune): a frame's packet
# leaves the encoder a few frames after the frame went in, not ~11, so the first fragment (12
# frames) is out after ~16 frames rather than ~23 (measured at 25 fps; 16 at 512 px with
# encoder.threads 1 or 0 alike).
_LOW_LATENCY_TUNE = "zerolatency"


class _SinkFile(io.RawIOBase):
    """A write-only, unseekable file object that hands every write to ``sink`` (until muted)."""

    def __init__(self, sink: Mp4Sink) -> None:
        super().__init__()
        self._sink, self._muted = sink, threading.Event()
        self.bytes_out = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._muted.is_set():
            self._sink(bytes(data))
            self.bytes_out += len(data)
        return len(data)

    def mute(self) -> None:
        """Drop whatever the muxer still writes (an aborted stream sends no trailer)."""
        self._muted.set()


class Mp4StreamWriter(Mp4Encoding):
    """Fragmented MP4 writer: H.264 (keyframe every ``fragment_s``) + AAC into ``sink``.

    The header reaches ``sink`` when the writer opens, each fragment as soon as the encoder has
    produced its last packet; :meth:`close` sends the last fragment and the index (``mfra``).
    :meth:`abort` (or leaving the ``with`` block by an exception) stops the output where it is:
    the receiver sees a stream cut short, never a made-up ending. An exception raised by
    ``sink`` (the reader went away) aborts the writer and propagates.

    Args:
        sink: called with each piece of the stream, in order, from the writing thread.
        fps, size, sample_rate, encoder, channels: as for
            :class:`~avatar.media.mp4_writer.Mp4Encoding`.
        fragment_s: keyframe and fragment interval, seconds (at least one frame).
        label: names the stream in messages.
    """

    def __init__(
        self,
        sink: Mp4Sink,
        *,
        fps: float,
        size: tuple[int, int],
        sample_rate: int,
        encoder: EncoderSettings,
        channels: int = 1,
        fragment_s: float = FRAGMENT_SECONDS,
        label: str = "MP4 stream",
    ) -> None:
        super().__init__(
            label, fps=fps, size=size, sample_rate=sample_rate, encoder=encoder, channels=channels
        )
        self.keyframe_interval = max(1, round(fragment_s * self.fps))  # frames per fragment
        self._file = _SinkFile(sink)
        gop = str(self.keyframe_interval)
        try:
            self._open(
                self._file,
                # the muxer holds a whole fragment; flush_packets sends it on as soon as it is cut
                {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
                {"g": gop, "keyint_min": gop, "sc_threshold": "0"},
                tune=_LOW_LATENCY_TUNE,
            )
        except BaseException:
            self._file.mute()
            raise
        # A fragmented file has no edit list to hide the AAC priming (the moov is written before
        # the first packet), so the priming is laid over the first AAC_PRIMING samples instead:
        # audio packets start at pts 0 and the decoded audio lines up with the video, its first
        # ~43 ms (at 24 kHz) silent.
        self._audio_skip = self._audio_sent = AAC_PRIMING

    @property
    def bytes_out(self) -> int:
        """Bytes handed to the sink so far."""
        return self._file.bytes_out

    def close(self) -> None:
        """Finish the audio, flush the encoders and send the last fragment."""
        if self._closed:
            return
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        log.debug("%s: streamed %d frames, %d bytes", self._label, self._n_frames, self.bytes_out)

    def abort(self) -> None:
        """Stop the stream where it is: nothing more reaches the sink."""
        self._file.mute()
        self._close_container()


def check_mp4_output(out: str | os.PathLike[str] | Mp4Sink) -> Path | Mp4Sink:
    """``out`` checked before any work: a path as :func:`~avatar.media.check_output_path`
    checks it (returned as a Path), a sink (any callable) as it is."""
    if callable(out):
        return out
    return check_output_path(out, key=None)


def open_mp4(
    out: str | os.PathLike[str] | Mp4Sink,
    *,
    fps: float,
    size: tuple[int, int],
    sample_rate: int,
    encoder: EncoderSettings,
    channels: int = 1,
) -> Mp4Writer | Mp4StreamWriter:
    """The writer of ``out``: :class:`~avatar.media.Mp4Writer` for a path (a faststart file,
    written atomically), :class:`Mp4StreamWriter` for a sink (fragments as they are made)."""
    kwargs = dict(fps=fps, size=size, sample_rate=sample_rate, channels=channels)
    if callable(out):
        return Mp4StreamWriter(out, encoder=encoder, **kwargs)  # type: ignore[arg-type]
    return Mp4Writer(out, encoder=encoder, **kwargs)  # type: ignore[arg-type]
