"""Seeded on-the-fly audio augmentations for audio-to-motion training.

Order: speed (resample; the timeline is scaled with it) -> synthetic reverb -> additive noise
-> codec round trip (PyAV, opus or AAC) -> gain. Each is applied with its own probability.
Only speed changes timing; the others keep sample ``i`` at time ``i / rate`` (the codecs'
priming is removed by the containers' pre-skip / edit list, checked in the tests).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
from scipy.signal import fftconvolve

from avatar.audio import resample
from avatar.speech.timeline import Phone, PhonemeTimeline, WordSpan

_CONTAINER = {"libopus": "ogg", "aac": "mp4"}


def scale_timeline(timeline: PhonemeTimeline, factor: float) -> PhonemeTimeline:
    """A copy with every time multiplied by ``factor`` (``> 1`` is slower speech)."""
    return PhonemeTimeline(
        phones=[Phone(p.phoneme, p.start * factor, p.end * factor) for p in timeline.phones],
        words=[WordSpan(w.word, w.start * factor, w.end * factor) for w in timeline.words],
        duration=timeline.duration * factor,
        alphabet=timeline.alphabet,
    )


def change_speed(audio: np.ndarray, rate: int, speed: float) -> tuple[np.ndarray, float]:
    """Play ``(S,)`` audio ``speed`` times faster (pitch moves with it, as tape would).

    Returns:
        The audio and the exact time factor applied (new duration / old duration); the
        speed is rounded so that the resampling ratio has a denominator of ``rate / 100``.
    """
    src = int(round(rate * speed / 100.0)) * 100
    out = resample(audio, src, rate)
    return out, rate / src


def reverb(audio: np.ndarray, rate: int, rt60_s: float, wet: float, rng: np.random.Generator):
    """Convolve with an exponentially decaying noise impulse response (``rt60_s`` to -60 dB).

    The direct path stays at sample 0, so the sound does not move in time; the output keeps
    the input's RMS and length.
    """
    n = max(int(rt60_s * rate), 2)
    t = np.arange(n) / rate
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)  # -60 dB at rt60
    ir[0] = 0.0
    ir = wet * ir / (np.linalg.norm(ir) + 1e-9)
    ir[0] = 1.0
    out = fftconvolve(audio, ir)[: len(audio)]
    rms_in, rms_out = np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(out**2)) + 1e-12
    return (out * (rms_in / rms_out)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, color: str, rng: np.random.Generator):
    """Add white, pink or brown noise at ``snr_db`` below the audio's RMS."""
    noise = rng.standard_normal(len(audio))
    if color != "white":
        spec = np.fft.rfft(noise)
        f = np.maximum(np.arange(len(spec)), 1.0)
        spec /= np.sqrt(f) if color == "pink" else f
        noise = np.fft.irfft(spec, len(audio))
    power = np.mean(audio**2) + 1e-12
    noise *= np.sqrt(power / (np.mean(noise**2) + 1e-20) / 10.0 ** (snr_db / 10.0))
    return (audio + noise).astype(np.float32)


def codec_roundtrip(audio: np.ndarray, rate: int, codec: str, bitrate: int) -> np.ndarray:
    """Encode ``(S,)`` audio with ``libopus`` (ogg) or ``aac`` (mp4) in memory and decode it.

    Returns:
        float32 ``(S,)`` at ``rate``, time-aligned with the input (priming removed by the
        container), cut or zero-padded to the input length.
    """
    buf = io.BytesIO()
    with av.open(buf, "w", format=_CONTAINER[codec]) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout, stream.bit_rate = "mono", bitrate
        out.start_encoding()
        size = stream.codec_context.frame_size or 1024
        fmt = stream.codec_context.format.name
        x = np.clip(audio, -1.0, 1.0)
        for i in range(0, len(x), size):
            chunk = np.pad(x[i : i + size], (0, max(0, size - len(x[i : i + size]))))
            data = (chunk * 32767).astype(np.int16) if fmt == "s16" else chunk.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data[None], format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    parts, dec_rate = [], rate
    with av.open(buf) as inp:
        for frame in inp.decode(audio=0):
            data = frame.to_ndarray().reshape(-1)
            scale = 32768.0 if data.dtype == np.int16 else 1.0
            parts.append(data.astype(np.float32) / scale)
            dec_rate = frame.sample_rate
    y = resample(np.concatenate(parts), dec_rate, rate)[: len(audio)]
    return np.pad(y, (0, len(audio) - len(y))).astype(np.float32)


class AudioAugment:
    """Random augmentation of (audio, timeline) pairs; every draw comes from the given rng.

    Args:
        sample_rate: rate of the audio, Hz.
        p_speed: probability of a speed change.
        speed_range: (min, max) speed factor, drawn uniformly.
        p_reverb: probability of synthetic reverb.
        rt60_range: (min, max) reverberation time, seconds.
        wet_range: (min, max) energy of the reverberant tail relative to the direct sound.
        p_noise: probability of additive noise.
        snr_db_range: (min, max) signal-to-noise ratio, dB.
        noise_colors: colours to draw from (``white``, ``pink``, ``brown``).
        p_codec: probability of a codec round trip.
        codecs: codecs to draw from (``libopus``, ``aac``).
        bitrates: bit rates to draw from, bit/s.
        p_gain: probability of a gain change.
        gain_db_range: (min, max) gain, dB; the result is clipped to [-1, 1].
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        p_speed: float,
        speed_range: Sequence[float],
        p_reverb: float,
        rt60_range: Sequence[float],
        wet_range: Sequence[float],
        p_noise: float,
        snr_db_range: Sequence[float],
        noise_colors: Sequence[str],
        p_codec: float,
        codecs: Sequence[str],
        bitrates: Sequence[int],
        p_gain: float,
        gain_db_range: Sequence[float],
    ) -> None:
        bad = set(codecs) - set(_CONTAINER)
        if bad:
            raise ValueError(f"unknown codecs {sorted(bad)}; use {sorted(_CONTAINER)}")
        self.sample_rate = sample_rate
        self.p_speed, self.speed_range = p_speed, tuple(speed_range)
        self.p_reverb, self.rt60_range = p_reverb, tuple(rt60_range)
        self.wet_range = tuple(wet_range)
        self.p_noise, self.snr_db_range = p_noise, tuple(snr_db_range)
        self.noise_colors = tuple(noise_colors)
        self.p_codec, self.codecs, self.bitrates = p_codec, tuple(codecs), tuple(bitrates)
        self.p_gain, self.gain_db_range = p_gain, tuple(gain_db_range)

    def speed(
        self, audio: np.ndarray, timeline: PhonemeTimeline, rng: np.random.Generator
    ) -> tuple[np.ndarray, PhonemeTimeline]:
        """The timing-changing part (before cropping): speed perturbation."""
        if rng.random() < self.p_speed:
            audio, factor = change_speed(audio, self.sample_rate, rng.uniform(*self.speed_range))
            timeline = scale_timeline(timeline, factor)
            timeline.duration = len(audio) / self.sample_rate
        return audio, timeline

    def acoustic(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The timing-preserving part: reverb, noise, codec, gain; ``(S,)`` -> ``(S,)``."""
        if rng.random() < self.p_reverb:
            rt60, wet = rng.uniform(*self.rt60_range), rng.uniform(*self.wet_range)
            audio = reverb(audio, self.sample_rate, rt60, wet, rng)
        if rng.random() < self.p_noise:
            color = self.noise_colors[rng.integers(len(self.noise_colors))]
            audio = add_noise(audio, rng.uniform(*self.snr_db_range), color, rng)
        if rng.random() < self.p_codec:
            codec = self.codecs[rng.integers(len(self.codecs))]
            bitrate = int(self.bitrates[rng.integers(len(self.bitrates))])
            audio = codec_roundtrip(audio, self.sample_rate, codec, bitrate)
        if rng.random() < self.p_gain:
            audio = audio * math.pow(10.0, rng.uniform(*self.gain_db_range) / 20.0)
        return np.clip(audio, -1.0, 1.0).astype(np.float32)
