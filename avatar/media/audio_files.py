"""Audio files (PyAV): read any format FFmpeg decodes, write 16-bit PCM WAV atomically.

Audio is float32 in [-1, 1], (S,) mono or (S, C).
"""

from __future__ import annotations

import logging
import os
import wave
from pathlib import Path

import av
import numpy as np

from avatar.audio import Audio, check_rate, resample
from avatar.errors import AudioFormatError
from avatar.media.files import commit_temp, discard_temp, temp_beside
from avatar.media.outputs import start_error, write_error
from avatar.media.probe import check_audio_duration

log = logging.getLogger(__name__)

__all__ = ["decoded_samples", "load_audio", "read_audio", "require_file", "write_wav"]

_INT_SCALE = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}  # FFmpeg decodes 24-bit PCM to s32
PathLike = str | os.PathLike[str]


def require_file(path: PathLike, error: type[Exception]) -> Path:
    """``path`` as a Path, or ``error`` naming it when it is not an existing file."""
    if not Path(path).is_file():
        raise error(f"{path}: file does not exist")
    return Path(path)


def decoded_samples(frame: av.AudioFrame) -> np.ndarray:
    """Decoded audio frame -> float32 (S, C) in [-1, 1], whatever the sample format."""
    data = frame.to_ndarray()  # planar: (C, S); packed: (1, S * C)
    data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
    name = frame.format.name.rstrip("p")
    if name == "u8":
        return ((data - 128.0) / 128.0).astype(np.float32)
    return (data / _INT_SCALE.get(name, 1.0)).astype(np.float32)


def read_audio(
    path: PathLike,
    *,
    mono: bool = True,
    sample_rate: int | None = None,
    max_seconds: float | None = None,
    limit_key: str = "max_audio_seconds",
) -> tuple[np.ndarray, int]:
    """Read the first audio stream of any file FFmpeg decodes (wav, flac, mp3, ogg, m4a, mp4).

    Args:
        path: Audio (or video) file; PCM may be 8/16/24/32-bit int or 32/64-bit float.
        mono: Average the channels to (S,); over 2 channels are always averaged, to (S, 1).
        sample_rate: Resample to this rate in Hz; None keeps the file's rate.
        max_seconds: Refuse audio longer than this: checked from the file's headers before
            decoding, and again while decoding (headers can be missing or wrong). None: no limit.
        limit_key: The setting that holds ``max_seconds``, named in the error.

    Returns:
        (audio, rate): float32 in [-1, 1], (S,) if mono else (S, C); rate in Hz.

    Raises:
        AudioFormatError: Missing file, undecodable, no audio stream, no samples, a rate
            outside [8000, 192000] Hz, or longer than ``max_seconds``.
    """
    path = require_file(path, AudioFormatError)
    if max_seconds is not None:
        check_audio_duration(path, max_seconds=max_seconds, config_key=limit_key)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFormatError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            check_rate(rate, path)
            budget = None if max_seconds is None else int(max_seconds * rate) + rate
            chunks, decoded = [], 0
            for frame in container.decode(stream):
                chunks.append(decoded_samples(frame))
                decoded += len(chunks[-1])
                if budget is not None and decoded > budget:
                    raise AudioFormatError(
                        f"{path}: more than {max_seconds:g} s of audio (its headers did not say "
                        f"so); the limit is config key {limit_key}: cut the recording or raise it"
                    )
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
        check_rate(sample_rate, f"{path} (requested rate)")
        audio, rate = resample(audio, rate, sample_rate), sample_rate
    return np.clip(audio, -1.0, 1.0).astype(np.float32), rate


def load_audio(path: PathLike, *, max_seconds: float | None = None) -> Audio:
    """Read any common audio file as :class:`~avatar.audio.Audio`, keeping its rate and up to
    two channels ((S,) when mono); ``max_seconds`` as for :func:`read_audio`."""
    samples, rate = read_audio(path, mono=False, max_seconds=max_seconds)
    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples[:, 0]
    return Audio(samples, rate)


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float (S,) or (S, C) audio in [-1, 1] (clipped) as 16-bit PCM WAV, atomically.

    Parent directories are created; the data goes to a temp file that replaces ``path`` at the end.

    Raises:
        AudioFormatError: ``audio`` is not (S,) or (S, C), or the rate is not positive.
        OutputPathError: the OS refused the write (disk full, read-only, no permission); no
            partial file is left.
    """
    path, audio = Path(path), np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or sample_rate <= 0:
        raise AudioFormatError(f"{path}: need (S,) or (S, C) audio and a positive rate")
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    try:
        tmp = temp_beside(path, ".part.wav")
    except OSError as exc:
        raise start_error(path, exc, what="WAV") from exc
    try:
        with wave.open(str(tmp), "wb") as out:
            out.setparams((1 if audio.ndim == 1 else audio.shape[1], 2, sample_rate, 0, "NONE", ""))
            out.writeframes(pcm.tobytes())
        commit_temp(tmp, path)
    except BaseException as exc:
        discard_temp(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc, what="WAV") from exc
        raise
    return path
