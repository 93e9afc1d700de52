"""Audio2Motion: causal audio -> mouth channels and viseme logits, with bounded look-ahead.

The network maps speech to the 7 mouth channels (:data:`avatar.motion.track.MOUTH_CHANNELS`)
and the 14 viseme classes (:data:`avatar.motion.visemes.VISEMES`) at the video rate:

    X = LogMel(audio)                         (B, n_mels, N)  at 100 Hz, causal frames
    h = GRU(ResidualCausalConv^K(X))          (B, N, H)       strictly causal in X
    h_t is read as the state of hop t - L     (look-ahead L hops, by *delaying* the output)
    z_j = mean(h over the 4 hops of frame j)  (B, T, H)       at 25 fps
    mouth_j, logits_j = heads(z_j)            (B, T, 7), (B, T, 14)

Everything before the delay is causal, so the prediction for video frame ``j`` depends only on
audio up to ``(hops_per_frame * (j + 1) + L) * hop_length`` samples: ``L * hop_length /
sample_rate`` seconds after the frame ends. :meth:`Audio2Motion.hidden` carries its state
(convolution history and GRU state), so the offline forward and the chunked streaming form
(:mod:`avatar.motion.learned`) run the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from avatar.modules.features import LogMel

N_MOUTH = 7
"""Mouth channels predicted (``len(avatar.motion.track.MOUTH_CHANNELS)``)."""
N_VISEMES = 14
"""Viseme classes predicted (``len(avatar.motion.visemes.VISEMES)``)."""
MAX_LOOKAHEAD_S = 0.1
"""The look-ahead is capped at 100 ms so that the model stays usable in conversation."""


@dataclass
class NetState:
    """Recurrent state between calls of :meth:`Audio2Motion.hidden`.

    Attributes:
        conv: per causal convolution, its last ``(kernel_size - 1) * dilation`` inputs,
            each ``(B, C, k)``.
        gru: GRU hidden state ``(1, B, H)``.
    """

    conv: list[torch.Tensor]
    gru: torch.Tensor


class CausalBlock(nn.Module):
    """Pre-norm residual block: LayerNorm -> dilated causal conv -> GELU -> 1x1 conv."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.history = (kernel_size - 1) * dilation  # past frames the conv looks at
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, C, n) and the past ``cache`` (B, C, history) -> output and new cache."""
        y = self.norm(x.transpose(1, 2)).transpose(1, 2)  # per frame: causal
        y = torch.cat([cache, y], dim=2)  # (B, C, history + n)
        new_cache = y[:, :, y.shape[2] - self.history :]
        y = self.drop(self.act(self.conv(y)))  # (B, C, n)
        return x + self.mix(y), new_cache


class Audio2Motion(nn.Module):
    """Causal audio-to-motion network (see the module docstring for the symbols).

    Args:
        sample_rate: input audio rate, Hz.
        win_length: log-mel window, samples.
        hop_length: log-mel hop, samples (one network step).
        n_mels: log-mel bands.
        f_min: lowest mel edge, Hz.
        f_max: highest mel edge, Hz.
        hops_per_frame: network steps per video frame (4 at 100 Hz -> 25 fps).
        lookahead: L, hops the output is delayed by (its look-ahead); ``L * hop_length /
            sample_rate`` must be at most 0.1 s.
        channels: C, width of the convolution stack.
        kernel_size: causal convolution kernel, frames.
        dilations: one residual block per dilation.
        gru_hidden: H, GRU state size.
        dropout: dropout inside the blocks (training only).

    >>> net = Audio2Motion(sample_rate=16000, win_length=400, hop_length=160, n_mels=16,
    ...     f_min=50.0, f_max=8000.0, hops_per_frame=4, lookahead=6, channels=8,
    ...     kernel_size=3, dilations=[1, 2], gru_hidden=8, dropout=0.0)
    >>> mouth, logits = net(torch.zeros(2, 16000))
    >>> tuple(mouth.shape), tuple(logits.shape)
    ((2, 25, 7), (2, 25, 14))
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
        hops_per_frame: int,
        lookahead: int,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        gru_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if lookahead < 0 or lookahead * hop_length / sample_rate > MAX_LOOKAHEAD_S + 1e-9:
            raise ValueError(
                f"lookahead {lookahead} hops of {hop_length} samples at {sample_rate} Hz is "
                f"outside [0, {MAX_LOOKAHEAD_S * 1000:.0f} ms]"
            )
        if hops_per_frame < 1:
            raise ValueError(f"hops_per_frame must be >= 1, got {hops_per_frame}")
        self.config: dict = dict(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            hops_per_frame=hops_per_frame,
            lookahead=lookahead,
            channels=channels,
            kernel_size=kernel_size,
            dilations=[int(d) for d in dilations],
            gru_hidden=gru_hidden,
            dropout=dropout,
        )
        self.hops_per_frame, self.lookahead = hops_per_frame, lookahead
        self.features = LogMel(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
        )
        self.in_norm = nn.BatchNorm1d(n_mels)  # running stats at inference: per frame, causal
        self.in_proj = nn.Conv1d(n_mels, channels, 1)
        self.blocks = nn.ModuleList(
            CausalBlock(channels, kernel_size, int(d), dropout) for d in dilations
        )
        self.gru = nn.GRU(channels, gru_hidden, batch_first=True)
        self.post = nn.Sequential(nn.Linear(gru_hidden, gru_hidden), nn.GELU())
        self.mouth_head = nn.Linear(gru_hidden, N_MOUTH)
        self.viseme_head = nn.Linear(gru_hidden, N_VISEMES)

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per video frame (640 at 16 kHz, 25 fps)."""
        return self.hops_per_frame * self.features.hop_length

    @property
    def lookahead_s(self) -> float:
        """Audio needed after the end of a frame before it can be emitted, seconds."""
        return self.lookahead * self.features.hop_length / self.features.sample_rate

    def initial_state(self, batch: int, device: torch.device | None = None) -> NetState:
        """Zero state: silence-free history, as at the start of a stream."""
        conv = [
            torch.zeros(batch, blk.conv.in_channels, blk.history, device=device)
            for blk in self.blocks
        ]
        return NetState(conv, torch.zeros(1, batch, self.gru.hidden_size, device=device))

    def hidden(
        self, feats: torch.Tensor, state: NetState | None = None
    ) -> tuple[torch.Tensor, NetState]:
        """Causal part: log-mel ``(B, n_mels, n)`` -> per-hop states ``(B, n, H)`` and state."""
        if state is None:
            state = self.initial_state(feats.shape[0], feats.device)
        x = self.in_proj(self.in_norm(feats))  # (B, C, n)
        caches = []
        for blk, cache in zip(self.blocks, state.conv, strict=True):
            x, cache = blk(x, cache)
            caches.append(cache)
        h, gru = self.gru(x.transpose(1, 2), state.gru)  # (B, n, H)
        return h, NetState(caches, gru)

    def heads(self, frame_hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame states ``(B, T, H)`` -> mouth ``(B, T, 7)`` and viseme logits ``(B, T, 14)``."""
        z = self.post(frame_hidden)
        return self.mouth_head(z), self.viseme_head(z)

    def pool(self, hop_hidden: torch.Tensor) -> torch.Tensor:
        """Average ``(B, hops_per_frame * T, H)`` delayed hop states to ``(B, T, H)`` frames."""
        b, n, h = hop_hidden.shape
        return hop_hidden.reshape(b, n // self.hops_per_frame, self.hops_per_frame, h).mean(2)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offline prediction over whole clips.

        Args:
            audio: ``(B, S)`` float32 mono at ``sample_rate``, in [-1, 1].

        Returns:
            ``(mouth, logits)``: ``(B, T, 7)`` mouth channels and ``(B, T, 14)`` viseme logits
            for ``T = ceil(S / samples_per_frame)`` frames; the audio is zero-padded at the
            end to cover the last frame and its look-ahead, as a stream's flush does.
        """
        spf, hop = self.samples_per_frame, self.features.hop_length
        n_frames = -(-audio.shape[-1] // spf)
        total = n_frames * spf + self.lookahead * hop
        audio = nn.functional.pad(audio, (0, total - audio.shape[-1]))
        h, _ = self.hidden(self.features(audio))  # (B, 4T + L, H)
        return self.heads(self.pool(h[:, self.lookahead :]))
