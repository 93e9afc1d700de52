"""Causal log-mel features (the X of the audio-to-motion model), computed with ``torch.stft``.

Frame ``k`` covers the ``win_length`` samples that *end* at sample ``(k + 1) * hop_length``
(left zero padding of ``win_length - hop_length``), so it is available as soon as its last hop
of audio has arrived: nothing peeks into the future.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
) -> torch.Tensor:
    """Triangular HTK-mel filters, ``(n_mels, n_fft // 2 + 1)`` float32, each peaking at 1.

    >>> mel_filterbank(sample_rate=16000, n_fft=400, n_mels=64, f_min=50.0, f_max=8000.0).shape
    torch.Size([64, 201])
    """
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got {f_min}, {f_max}")

    def to_mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    mels = torch.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # (n_mels + 2,) band edges
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (freqs[None] - lo) / (mid - lo)
    falling = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Causal log-mel spectrogram: mono audio ``(B, S)`` -> ``(B, n_mels, S // hop_length)``.

    Args:
        sample_rate: audio rate in Hz (16000).
        win_length: analysis window (Hann) and FFT size in samples (400 = 25 ms at 16 kHz).
        hop_length: samples between frames (160 = 10 ms).
        n_mels: mel bands.
        f_min: lowest band edge, Hz.
        f_max: highest band edge, Hz (at most ``sample_rate / 2``).
        eps: floor added to the mel power before the log (digital silence -> ``log(eps)``).

    >>> fe = LogMel(sample_rate=16000, win_length=400, hop_length=160, n_mels=64,
    ...             f_min=50.0, f_max=8000.0)
    >>> fe(torch.zeros(2, 1600)).shape
    torch.Size([2, 64, 10])
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        win_length: int,
        hop_length: int,
        n_mels: int,
        f_min: float,
        f_max: float,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if not 0 < hop_length <= win_length:
            raise ValueError(f"need 0 < hop_length <= win_length, got {hop_length}, {win_length}")
        self.sample_rate, self.win_length, self.hop_length = sample_rate, win_length, hop_length
        self.n_mels, self.eps = n_mels, eps
        fb = mel_filterbank(
            sample_rate=sample_rate, n_fft=win_length, n_mels=n_mels, f_min=f_min, f_max=f_max
        )
        # derived from the constructor arguments, so not saved in checkpoints
        self.register_buffer("filterbank", fb, persistent=False)  # (n_mels, F)
        window = torch.hann_window(win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)  # (win_length,)

    @property
    def context(self) -> int:
        """Samples of history each frame needs besides its own hop: ``win_length - hop_length``."""
        return self.win_length - self.hop_length

    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """Log-mel of audio that already starts with its ``context`` samples of history.

        Args:
            audio: ``(B, context + n * hop_length)`` float32 in [-1, 1].

        Returns:
            ``(B, n_mels, n)`` natural-log mel power.
        """
        spec = torch.stft(
            audio,
            n_fft=self.win_length,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (B, F, n)
        power = spec.real.square() + spec.imag.square()
        return torch.log(torch.matmul(self.filterbank, power) + self.eps)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` audio at ``sample_rate`` -> ``(B, n_mels, S // hop_length)`` log-mel."""
        n = audio.shape[-1] // self.hop_length
        padded = nn.functional.pad(audio[..., : n * self.hop_length], (self.context, 0))
        return self.frames(padded)
