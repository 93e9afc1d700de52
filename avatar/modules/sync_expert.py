"""SyncExpert: a SyncNet-style two-stream network embedding 0.2 s of mouth motion and of speech.

Both streams produce one unit vector per 5-frame window (0.2 s at 25 fps), so window ``i`` of
the video and window ``i`` of the audio cover the same time and their cosine similarity says
how well they match. Shapes (T video frames, 25 fps; S = T * 640 audio samples at 16 kHz):

- video: ``(B, T, 48, 96)`` grey lower-face crops in [0, 1]
  (:func:`avatar.data.mouth_crops.mouth_crops`) -> a 2-D conv encoder per frame -> ``(B, F, T)``
  -> a temporal conv over ``window`` frames -> ``(B, T - window + 1, D)``;
- audio: ``(B, S)`` -> causal log-mel, 100 Hz (:class:`avatar.modules.features.LogMel`) ->
  conv stack down to 25 Hz ``(B, C, T)`` -> the same temporal conv shape -> ``(B, T - window + 1,
  D)``.

Encoding each frame once and comparing windows of frames makes a whole clip one forward pass
per stream, and every shift of the audio against the video a matrix product of the embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from avatar.modules.features import LogMel

__all__ = ["SyncExpert", "offset_distances", "offset_scores"]


def _conv_bn(cin: int, cout: int, stride: int, dims: int = 2) -> list[nn.Module]:
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return [conv(cin, cout, 3, stride, 1, bias=False), bn(cout), nn.ReLU(inplace=True)]


class SyncExpert(nn.Module):
    """Mouth-crop windows and speech windows -> unit ``embed_dim`` vectors in one space.

    Args:
        sample_rate: audio rate, Hz (16000).
        win_length: log-mel analysis window, samples.
        hop_length: log-mel hop, samples (160 = 10 ms).
        n_mels: log-mel bands.
        f_min: lowest mel band edge, Hz.
        f_max: highest mel band edge, Hz.
        hops_per_frame: log-mel frames per video frame (4 at 25 fps and 10 ms hops).
        window: video frames per compared window (5 = 0.2 s, as SyncNet).
        video_channels: widths of the per-frame conv encoder (each stage halves the size).
        crop_shape: (H, W) crops the video encoder takes.
        audio_channels: width of the audio conv stack.
        hidden: width of both temporal convs' hidden layer.
        embed_dim: D, the embedding size.

    Every argument is a config value (``configs/model/sync_expert.yaml`` documents each one).

    Example:
        >>> net = SyncExpert(
        ...     sample_rate=16000, win_length=400, hop_length=160, n_mels=64, f_min=50.0,
        ...     f_max=8000.0, hops_per_frame=4, window=5, video_channels=(4, 8),
        ...     crop_shape=(48, 96), audio_channels=8, hidden=8, embed_dim=4,
        ... )
        >>> v = net.embed_video(torch.rand(2, 10, 48, 96))
        >>> a = net.embed_audio(torch.zeros(2, 10 * 640))
        >>> v.shape, a.shape
        (torch.Size([2, 6, 4]), torch.Size([2, 6, 4]))
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
        window: int,
        video_channels: tuple[int, ...],
        crop_shape: tuple[int, int],
        audio_channels: int,
        hidden: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        if hops_per_frame != 4:
            raise ValueError(
                "the audio stack reaches 25 fps with two stride-2 convs: "
                f"hops_per_frame must be 4, got {hops_per_frame}"
            )
        if window < 1 or not video_channels:
            raise ValueError(f"need window >= 1 and video_channels, got {window}, {video_channels}")
        self.config: dict[str, Any] = dict(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            hops_per_frame=hops_per_frame,
            window=window,
            video_channels=list(video_channels),
            crop_shape=list(crop_shape),
            audio_channels=audio_channels,
            hidden=hidden,
            embed_dim=embed_dim,
        )
        self.window, self.hops_per_frame = window, hops_per_frame
        self.samples_per_frame = hop_length * hops_per_frame
        self.crop_shape = tuple(crop_shape)
        self.features = LogMel(
            sample_rate=sample_rate,
            win_length=win_length,
            n_mels=n_mels,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
        )
        layers: list[nn.Module] = []
        cin = 1
        for c in video_channels:
            layers += _conv_bn(cin, c, 2)
            cin = c
        self.frame_encoder = nn.Sequential(*layers)
        h, w = crop_shape
        for _ in video_channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.frame_fc = nn.Linear(cin * h * w, hidden)
        self.audio_encoder = nn.Sequential(
            *_conv_bn(n_mels, audio_channels, 1, 1),
            *_conv_bn(audio_channels, audio_channels, 2, 1),
            *_conv_bn(audio_channels, audio_channels, 2, 1),
            nn.Conv1d(audio_channels, hidden, 1),
        )
        self.video_head = self._head(hidden, embed_dim, window)
        self.audio_head = self._head(hidden, embed_dim, window)

    @staticmethod
    def _head(hidden: int, embed_dim: int, window: int) -> nn.Sequential:
        """(B, hidden, T) per-frame features -> (B, D, T - window + 1) window embeddings."""
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, window),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Conv1d(hidden, embed_dim, 1),
        )

    def embed_video(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) crops in [0, 1] -> (B, T - window + 1, D) unit vectors."""
        b, t, h, w = crops.shape
        if (h, w) != self.crop_shape:
            raise ValueError(f"crops must be {self.crop_shape}, got {(h, w)}")
        if t < self.window:
            raise ValueError(f"need at least {self.window} frames, got {t}")
        x = self.frame_encoder((crops.reshape(b * t, 1, h, w) - 0.5) / 0.25)
        x = self.frame_fc(x.flatten(1)).reshape(b, t, -1).transpose(1, 2)  # (B, hidden, T)
        return F.normalize(self.video_head(x).transpose(1, 2), dim=-1)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T * samples_per_frame) audio in [-1, 1] -> (B, T - window + 1, D) unit vectors."""
        t = audio.shape[-1] // self.samples_per_frame
        if t < self.window:
            raise ValueError(f"need audio for at least {self.window} frames, got {t}")
        mel = self.features(audio[..., : t * self.samples_per_frame])  # (B, n_mels, 4T)
        mel = (mel + 6.0) / 4.0  # natural-log mel power to roughly zero mean, unit spread
        x = self.audio_encoder(mel)  # (B, hidden, T)
        return F.normalize(self.audio_head(x).transpose(1, 2), dim=-1)


def offset_distances(video: torch.Tensor, audio: torch.Tensor, max_offset: int) -> torch.Tensor:
    """Mean cosine distance of video window ``i`` to audio window ``i + o``, o = -K..K.

    Args:
        video: (N, D) unit window embeddings of one clip.
        audio: (N, D) unit window embeddings of its audio.
        max_offset: K, frames (0 <= K < N).

    Returns:
        (2K + 1,) distances in [0, 2], index ``K + o``; each averages the windows that have a
        partner at that shift. A video that lags its audio by k frames has its minimum at
        ``o = -k``.

    Example:
        >>> e = F.normalize(torch.randn(40, 8), dim=-1)
        >>> int(offset_distances(e[:-3], e[3:], 5).argmin()) - 5  # video lags by 3 frames
        -3
    """
    n = len(video)
    if len(audio) != n or not 0 <= max_offset < n:
        raise ValueError(
            f"need equal lengths and 0 <= max_offset < {n}, got {len(audio)}, {max_offset}"
        )
    sim = video @ audio.T  # (N, N): sim[i, j] = cos(video i, audio j)
    return torch.stack(
        [1.0 - torch.diagonal(sim, o).mean() for o in range(-max_offset, max_offset + 1)]
    )


def offset_scores(video: torch.Tensor, audio: torch.Tensor, max_offset: int) -> dict[str, float]:
    """Offset, distance, confidence and distance at offset 0 from (N, D) window embeddings.

    Raises:
        ValueError: fewer than 3 windows.
    """
    if len(video) < 3:
        raise ValueError(f"clip too short for the sync expert: {len(video) + 4} frames")
    k = min(max_offset, len(video) // 2)
    return scores_from_distances(offset_distances(video, audio, k))


def scores_from_distances(d: torch.Tensor) -> dict[str, float]:
    """SyncNet's read-out of (2K + 1,) mean distances at offsets -K..K: the offset of the
    lowest (> 0: the video lags), that distance, the confidence (median minus lowest), the
    distance at offset 0 and K."""
    k = (len(d) - 1) // 2
    best = int(d.argmin())
    return {
        "offset": float(k - best),
        "distance": float(d[best]),
        "confidence": float(d.median() - d[best]),
        "dist_at_0": float(d[k]),
        "max_offset": float(k),
    }
