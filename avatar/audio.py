"""Audio in memory: the :class:`Audio` value, resampling (whole signals and streams) and the
audio-time to video-frame rule. Files and codecs live in :mod:`avatar.media`.

Samples are float32 in [-1, 1], ``(S,)`` mono or ``(S, C)``; rates are in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from avatar.errors import AudioFormatError

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "Audio",
    "StreamResampler",
    "check_rate",
    "frame_count",
    "resample",
    "resample_stream",
]

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000


def check_rate(rate: int, what: object) -> None:
    """Raise :class:`AudioFormatError` naming ``what`` unless 8000 <= ``rate`` <= 192000 Hz."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(f"{what}: sample rate {rate} Hz is outside [8000, 192000]")


@dataclass(frozen=True)
class Audio:
    """Audio as given: ``samples`` (S,) mono or (S, C) float32 in [-1, 1] at ``sample_rate`` Hz.

    >>> Audio(np.zeros((4800, 2), np.float32), 48000).duration
    0.1
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def mono(self) -> np.ndarray:
        """(S,) float32 mono mix."""
        s = np.asarray(self.samples, np.float32)
        return s.mean(axis=1) if s.ndim == 2 else s

    @property
    def channels(self) -> int:
        """1 for (S,) samples, else C."""
        return 1 if np.ndim(self.samples) == 1 else int(np.shape(self.samples)[1])

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.samples) / self.sample_rate


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
    from scipy.signal import resample_poly  # 0.7 s to import: only when a rate changes

    g = math.gcd(src_rate, dst_rate)
    return resample_poly(audio, dst_rate // g, src_rate // g, axis=0).astype(np.float32)


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
        check_rate(src_rate, "stream")
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


def frame_count(audio_seconds: float, fps: float) -> int:
    """Video frames covering ``audio_seconds``: seconds * fps rounded half up, >= 1 if non-empty.

    >>> frame_count(2.0, 25), frame_count(1.02, 25), frame_count(1.01, 25), frame_count(0.001, 25)
    (50, 26, 25, 1)
    """
    if audio_seconds < 0 or fps <= 0:
        raise ValueError(f"need audio_seconds >= 0 and fps > 0, got {audio_seconds}, {fps}")
    return max(math.floor(audio_seconds * fps + 0.5), 1) if audio_seconds > 0 else 0
