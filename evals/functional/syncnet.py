"""SyncNet LSE-D / LSE-C / offset with the public ``syncnet_v2`` weights (Chung & Zisserman 2016).

:class:`SyncNetModel` is the 'S' network of ``syncnet_python`` (``SyncNetModel.py``), with the
same module names, so the released ``syncnet_v2.model`` (a ``torch.save`` of a state dict with
keys ``netcnnaud.*``, ``netfcaud.*``, ``netcnnlip.*``, ``netfclip.*``) loads strictly:

- audio: 13 MFCCs x 20 steps (0.2 s at 100 Hz), (N, 1, 13, 20) -> 2-D conv stack -> 1024-D;
- video: 5 frames of a 224x224 face crop, BGR 0-255 as cv2 reads them, (N, 3, 5, 224, 224) ->
  3-D conv stack -> 1024-D (the original feeds colour crops, so the first conv has 3 inputs).

As in ``SyncNetInstance.evaluate``: video at 25 fps, audio at 16 kHz as int16 values, MFCCs as
``python_speech_features.mfcc`` (reimplemented in :func:`mfcc`); the distance of each 5-frame
window to the audio windows at offsets -15..15 is averaged over the clip; LSE-D is the minimum
mean distance, LSE-C the median minus the minimum, the offset ``vshift - argmin`` (their sign:
> 0 when audio leads the video), and the distance at offset 0 is reported as well.
Crops follow ``run_pipeline.py``'s face crop (box half-size ``bs``, 40 % margin, shifted down)
from MediaPipe landmarks instead of S3FD boxes, so values are close to, not identical with, the
reference pipeline. Crops are made and embedded a batch of windows at a time
(:func:`iter_face_crops`, :func:`lse` on an iterator), so memory does not grow with the clip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from scipy.fft import dct
from torch import nn

from avatar.data.mouth_crops import nearest_true
from avatar.errors import WeightsMissingError
from evals.errors import MetricNotApplicable

if TYPE_CHECKING:
    from evals.weights import WeightsRegistry

log = logging.getLogger(__name__)

__all__ = [
    "FPS",
    "SAMPLE_RATE",
    "SyncNetModel",
    "face_crops",
    "iter_face_crops",
    "load_syncnet",
    "lse",
    "mfcc",
]

FPS, SAMPLE_RATE, VSHIFT = 25.0, 16000, 15
_MFCC_CHUNK = 8192  # MFCC frames (10 ms each) computed at once


def _bn_relu(conv: nn.Module, ch: int, dims: int) -> list[nn.Module]:
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    return [conv, bn(ch), nn.ReLU(inplace=True)]


class SyncNetModel(nn.Module):
    """SyncNet 'S' (``syncnet_python``): audio and lip streams embedded into 1024-D.

    Example:
        >>> net = SyncNetModel().eval()
        >>> net.forward_aud(torch.zeros(2, 1, 13, 20)).shape
        torch.Size([2, 1024])
    """

    def __init__(self, embed_dim: int = 1024) -> None:
        super().__init__()
        c2, c3 = nn.Conv2d, nn.Conv3d
        self.netcnnaud = nn.Sequential(
            *_bn_relu(c2(1, 64, (3, 3), (1, 1), (1, 1)), 64, 2),
            nn.MaxPool2d((1, 1), (1, 1)),
            *_bn_relu(c2(64, 192, (3, 3), (1, 1), (1, 1)), 192, 2),
            nn.MaxPool2d((3, 3), (1, 2)),
            *_bn_relu(c2(192, 384, (3, 3), padding=(1, 1)), 384, 2),
            *_bn_relu(c2(384, 256, (3, 3), padding=(1, 1)), 256, 2),
            *_bn_relu(c2(256, 256, (3, 3), padding=(1, 1)), 256, 2),
            nn.MaxPool2d((3, 3), (2, 2)),
            *_bn_relu(c2(256, 512, (5, 4), padding=(0, 0)), 512, 2),
        )
        self.netfcaud = nn.Sequential(
            *_bn_relu(nn.Linear(512, 512), 512, 1), nn.Linear(512, embed_dim)
        )
        self.netfclip = nn.Sequential(
            *_bn_relu(nn.Linear(512, 512), 512, 1), nn.Linear(512, embed_dim)
        )
        self.netcnnlip = nn.Sequential(
            *_bn_relu(c3(3, 96, (5, 7, 7), (1, 2, 2), 0), 96, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu(c3(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            *_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            *_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu(c3(256, 512, (1, 6, 6), padding=0), 512, 3),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR 0-255 crops -> (N, 1024)."""
        return self.netfclip(self.netcnnlip(x).flatten(1))


def load_syncnet(
    path: str | Path | None = None, *, registry: WeightsRegistry | None = None
) -> SyncNetModel:
    """SyncNet with ``syncnet_v2.model`` (given, or resolved as registry ``syncnet_v2``).

    Raises:
        WeightsMissingError: absent (the registry's reason) or not a SyncNet state dict.
    """
    if path is None:
        if registry is None:
            from evals.weights import active_registry

            registry = active_registry()
        path = registry.resolve("syncnet_v2", required=False)
        if path is None:
            raise WeightsMissingError(str(registry.reason("syncnet_v2")).removeprefix("skipped: "))
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = SyncNetModel()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise WeightsMissingError(f"{path} is not a syncnet_v2 state dict: {exc}") from exc
    log.info("SyncNet weights: %s", path)
    return model.eval()


def _mel(hz: np.ndarray | float) -> Any:
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)


def mfcc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(13, N) MFCCs at 100 Hz as ``python_speech_features.mfcc`` defaults compute them.

    25 ms rectangular windows every 10 ms, pre-emphasis 0.97, 512-point FFT, 26 mel filters,
    DCT-II (ortho), lifter 22, c0 replaced by the log frame energy.

    Args:
        audio: (S,) mono samples (``syncnet_python`` passes int16 values: scale [-1, 1] floats
            by 32768 to match it).
        sample_rate: Hz.
    """
    x = np.asarray(audio, np.float64)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1]) if len(x) else np.zeros(1)
    win, step, nfft = round(0.025 * sample_rate), round(0.01 * sample_rate), 512
    n = 1 if len(x) <= win else 1 + int(np.ceil((len(x) - win) / step))
    x = np.concatenate([x, np.zeros((n - 1) * step + win - len(x))])
    mels = np.linspace(_mel(0), _mel(sample_rate / 2), 28)
    bins = np.floor((nfft + 1) * (700 * (10 ** (mels / 2595) - 1)) / sample_rate).astype(int)
    fb = np.zeros((26, nfft // 2 + 1))
    for j in range(26):
        a, b, c = bins[j : j + 3]
        fb[j, a:b] = (np.arange(a, b) - a) / max(b - a, 1)
        fb[j, b:c] = (c - np.arange(b, c)) / max(c - b, 1)
    eps = np.finfo(float).eps
    lifter = 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)
    out = np.empty((13, n))
    for s0 in range(0, n, _MFCC_CHUNK):  # frames are independent: bounded memory on long audio
        s1 = min(n, s0 + _MFCC_CHUNK)
        idx = np.arange(win)[None] + step * np.arange(s0, s1)[:, None]
        pspec = np.abs(np.fft.rfft(x[idx], nfft)) ** 2 / nfft  # (N, 257)
        energy = np.where(pspec.sum(1) == 0, eps, pspec.sum(1))
        feat = pspec @ fb.T
        feat = np.log(np.where(feat == 0, eps, feat))
        cep = dct(feat, type=2, axis=1, norm="ortho")[:, :13]
        cep *= lifter
        cep[:, 0] = np.log(energy)
        out[:, s0:s1] = cep.T
    return out


def iter_face_crops(
    frames: Iterable[np.ndarray], landmarks: np.ndarray, size: int = 224
) -> Iterator[np.ndarray] | None:
    """(size, size, 3) float32 BGR 0-255 face crops as ``syncnet_python`` makes them, one a frame.

    Args:
        frames: T (H, W, 3) uint8 RGB frames in order (an array or any iterable).
        landmarks: (T, P, 2|3) pixels (NaN rows: no face; filled from the nearest face frame).

    Returns:
        An iterator of T crops, or None when no frame has a face.
    """
    lm = np.asarray(landmarks)[..., :2]
    ok = np.isfinite(lm).all(axis=(1, 2))
    if not ok.any():
        return None
    # per frame, the box of its landmarks: min and max are exact in any float type
    boxes = np.concatenate([lm.min(1), lm.max(1)], axis=1).astype(np.float64)  # (T, 4)
    return _face_crops(frames, boxes[nearest_true(ok)], size)


def _face_crops(frames: Iterable[np.ndarray], boxes: np.ndarray, size: int) -> Iterator[np.ndarray]:
    cs = 0.4
    for i, frame in enumerate(frames):
        x0, y0, x1, y1 = boxes[i]
        bs, mx, my = max(x1 - x0, y1 - y0) / 2, (x0 + x1) / 2, (y0 + y1) / 2
        pad = int(bs * cs) + 1
        img = np.pad(frame[..., ::-1], ((pad, pad), (pad, pad), (0, 0)), constant_values=110)
        mx, my, bsi = mx + pad, my + pad, bs * (1 + cs)
        crop = img[int(my - bs) : int(my + bs * (1 + 2 * cs)), int(mx - bsi) : int(mx + bsi)]
        yield cv2.resize(np.ascontiguousarray(crop), (size, size)).astype(np.float32)


def face_crops(frames: np.ndarray, landmarks: np.ndarray, size: int = 224) -> np.ndarray | None:
    """(T, size, size, 3) float32 BGR 0-255 face crops as ``syncnet_python`` makes them.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        landmarks: (T, P, 2|3) pixels (NaN rows: no face; filled from the nearest face frame).

    Returns:
        The crops (:func:`iter_face_crops`, stacked), or None when no frame has a face.
    """
    crops = iter_face_crops(frames, landmarks, size)
    return None if crops is None else np.stack(list(crops))


@torch.no_grad()
def lse(
    crops: np.ndarray | Iterable[np.ndarray],
    audio: np.ndarray,
    model: SyncNetModel,
    *,
    vshift: int = VSHIFT,
    batch: int = 20,
    n_frames: int | None = None,
) -> dict[str, float]:
    """LSE of one clip: ``syncnet_python``'s ``evaluate`` on prepared inputs.

    Args:
        crops: T (224, 224, 3) BGR 0-255 face crops at 25 fps (:func:`face_crops`), or an
            iterator of them (:func:`iter_face_crops`: read a batch of windows at a time).
        audio: (S,) 16 kHz mono in [-1, 1].
        model: a :class:`SyncNetModel`.
        vshift: offsets searched, frames (-vshift..vshift).
        batch: windows per forward pass.
        n_frames: T when ``crops`` is an iterator (else ``len(crops)``).

    Returns:
        ``lse_d`` (min mean distance, lower is better), ``lse_c`` (median - min, higher is
        better), ``offset`` (frames), ``dist_at_0`` (mean distance at offset 0).

    Raises:
        MetricNotApplicable: under 6 frames (or 0.24 s of audio).
    """
    cc = torch.from_numpy(mfcc(np.asarray(audio, np.float64) * 32768.0)).float()[None, None]
    t = len(crops) if n_frames is None else n_frames  # type: ignore[arg-type]
    n = min(t, cc.shape[-1] // 4) - 5
    if n < 1:
        raise MetricNotApplicable(f"clip too short for SyncNet: {t} frames (needs 6)")
    device = next(model.parameters()).device
    frames = iter(crops)
    held: list[torch.Tensor] = []  # (3, H, W) crops from the batch's first window on
    vf, af = [], []
    for s in range(0, n, batch):
        ks = range(s, min(n, s + batch))
        while len(held) < len(ks) + 4:
            held.append(torch.from_numpy(np.ascontiguousarray(next(frames))).permute(2, 0, 1))
        windows = torch.stack([torch.stack(held[k - s : k - s + 5], dim=1) for k in ks])
        vf.append(model.forward_lip(windows.to(device)).cpu())  # (B, 3, 5, H, W) in
        af.append(
            model.forward_aud(torch.cat([cc[..., 4 * k : 4 * k + 20] for k in ks]).to(device)).cpu()
        )
        held = held[len(ks) :]
    v, a = torch.cat(vf), torch.cat(af)
    ap = nn.functional.pad(a, (0, 0, vshift, vshift))
    win = 2 * vshift + 1
    dists = torch.stack(
        [
            nn.functional.pairwise_distance(v[[i]].repeat(win, 1), ap[i : i + win])
            for i in range(len(v))
        ]
    )  # (n, win)
    mdist = dists.mean(0)
    minval, minidx = torch.min(mdist, 0)
    return {
        "lse_d": float(minval),
        "lse_c": float(torch.median(mdist) - minval),
        "offset": float(vshift - int(minidx)),
        "dist_at_0": float(mdist[vshift]),
    }
