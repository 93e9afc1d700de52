"""Audio file limits before decoding: the duration of a file's audio from its container headers.

A long recording decodes to float32 in memory (a 10-minute stereo 48 kHz file is 230 MB) before
any stage can refuse it; reading the headers takes milliseconds whatever the length. FFmpeg fills
the duration from the container: a WAV's data size over its byte rate (capped at what the file
holds), FLAC's STREAMINFO sample count, MP4/M4A's media header, Ogg's last granule position,
an MP3's Xing/VBRI frame count or, for CBR MP3 and raw AAC without one, the file size over the
bitrate (an estimate). Headers can be missing or wrong, so a decoder that must stay bounded
still counts the samples it decodes; this check only refuses early what is plainly too long.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av

from avatar.errors import AudioFormatError

__all__ = ["audio_duration", "check_audio_duration"]


def audio_duration(path: str | os.PathLike[str]) -> float | None:
    """Length of the first audio stream of a file, seconds, from its headers (nothing decoded).

    Args:
        path: any file FFmpeg opens (wav, flac, mp3, ogg, opus, m4a, mp4, mka...).

    Returns:
        The stream's duration (its ``duration`` in its ``time_base``), else the container's,
        else None when the headers do not say (the caller then bounds the decoding itself).

    Raises:
        AudioFormatError: the file does not exist, FFmpeg cannot open it, or it has no audio
            stream.
    """
    if not Path(path).is_file():
        raise AudioFormatError(f"{path}: file does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFormatError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * Fraction(stream.time_base))
            elif container.duration is not None:
                seconds = container.duration / av.time_base
    except av.FFmpegError as exc:
        raise AudioFormatError(f"{path}: not a readable audio file ({exc})") from exc
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def check_audio_duration(
    path: str | os.PathLike[str], *, max_seconds: float, config_key: str
) -> float | None:
    """:func:`audio_duration`, refusing a file whose headers say it is longer than the limit.

    Args:
        path: the audio file.
        max_seconds: longest accepted audio, seconds.
        config_key: the setting that holds ``max_seconds``, named in the error.

    Returns:
        The duration in seconds, or None when the headers do not say.

    Raises:
        AudioFormatError: as :func:`audio_duration`, or the audio is longer than ``max_seconds``
            (the message names the duration, the limit and ``config_key``).
    """
    seconds = audio_duration(path)
    if seconds is not None and seconds > max_seconds:
        raise AudioFormatError(
            f"{path}: {seconds:.1f} s of audio is over the limit of {max_seconds:g} s (config key "
            f"{config_key}); cut the recording or raise the limit"
        )
    return seconds
