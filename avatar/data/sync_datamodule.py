"""SyncDataModule: windows of rendered clips (mouth crops + audio) for the sync expert.

Sampling draws from torch's RNG (seeded by the run's ``seed``, per worker by Lightning).
Training items are ``window`` consecutive frames of a clip with some speech in them, their
audio, and which 5-frame sub-windows hold speech; crops are augmented (shift, scale, flip,
brightness, contrast, gamma, blur, noise) and so is the audio (gain, noise). Validation and test
items are whole clips, unaugmented and centre-cropped as the metric crops them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avatar.data.mouth_crops import CROP_SHAPE, center_crop
from avatar.data.sync_clips import SAMPLES_PER_FRAME, SyncClip, SyncClipCorpus

log = logging.getLogger(__name__)

__all__ = ["SyncDataModule", "SyncWindows", "window_speaking"]

SUB_WINDOW = 5  # frames per compared window (the expert's)


def window_speaking(speaking: np.ndarray, window: int = SUB_WINDOW) -> np.ndarray:
    """(T - window + 1,) bool: window ``i`` (frames i..i+window-1) holds a speaking frame.

    Example:
        >>> window_speaking(np.array([0, 0, 0, 0, 0, 1, 0], bool), 3).astype(int).tolist()
        [0, 0, 0, 1, 1]
    """
    s = np.asarray(speaking, bool).astype(np.int32)
    c = np.concatenate([[0], np.cumsum(s)])
    return (c[window:] - c[:-window]) > 0


def augment_crops(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 56, 112) uint8 stored crops -> (T, 48, 96) float32 in [0, 1], randomly varied.

    One shift (+-5 px across, +-3 px down), scale (0.9-1.1) and flip per item, sub-pixel jitter
    per frame, then brightness, contrast and gamma, sometimes blur and noise.
    """
    h, w = crops.shape[1:]
    oh, ow = CROP_SHAPE
    s = rng.uniform(0.9, 1.1)
    cx = w / 2 + rng.uniform(-5, 5)
    cy = h / 2 + rng.uniform(-3, 3)
    out = np.empty((len(crops), oh, ow), np.float32)
    for i, crop in enumerate(crops):
        jx, jy = rng.normal(0, 0.4, 2)
        # output (x, y) -> source (cx + jx + (x - ow/2) * s, cy + jy + (y - oh/2) * s)
        m = np.array([[s, 0, cx + jx - s * ow / 2], [0, s, cy + jy - s * oh / 2]])
        out[i] = cv2.warpAffine(
            crop,
            m,
            (ow, oh),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    out /= 255.0
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    out = np.clip((out - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15), 0, 1)
    out = out ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        sigma = rng.uniform(0.5, 1.2)
        out = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in out])
    if rng.random() < 0.3:
        out = out + rng.normal(0, rng.uniform(0.01, 0.04), out.shape)
    return np.ascontiguousarray(np.clip(out, 0, 1), dtype=np.float32)


def augment_audio(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain (-10..+6 dB) and, half the time, white noise at 10-40 dB SNR."""
    out = audio * 10 ** (rng.uniform(-10, 6) / 20)
    if rng.random() < 0.5:
        power = float(np.mean(out**2)) + 1e-10
        out = out + rng.normal(0, np.sqrt(power / 10 ** (rng.uniform(10, 40) / 10)), out.shape)
    return np.clip(out, -1, 1).astype(np.float32)


class SyncWindows(Dataset):
    """Random windows of training clips (each item draws afresh: an epoch is ``length`` draws).

    Items: ``video`` (window, 48, 96) float32 in [0, 1], ``audio`` (window * 640,) float32,
    ``speaking`` (window - 4,) bool.
    """

    def __init__(
        self, clips: Sequence[SyncClip], *, window: int, length: int, augment: bool
    ) -> None:
        self.clips = [c for c in clips if len(c.crops) >= window and c.speaking.any()]
        if not self.clips:
            raise ValueError(f"no clip has {window} frames with speech")
        if window < SUB_WINDOW + 1:
            raise ValueError(f"window must be > {SUB_WINDOW} frames, got {window}")
        self.window, self.length, self.augment = window, length, augment
        starts = np.array([len(c.crops) - window + 1 for c in self.clips], np.float64)
        self.p = starts / starts.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        w = self.window
        for _ in range(20):  # a window with speech in it (the clips all have some)
            clip = self.clips[rng.choice(len(self.clips), p=self.p)]
            s = int(rng.integers(len(clip.crops) - w + 1))
            speaking = window_speaking(clip.speaking[s : s + w])
            if speaking.sum() >= 3:
                break
        crops = clip.crops[s : s + w]
        audio = clip.audio[s * SAMPLES_PER_FRAME : (s + w) * SAMPLES_PER_FRAME]
        if self.augment:
            video, audio = augment_crops(crops, rng), augment_audio(audio, rng)
        else:
            video = center_crop(crops).astype(np.float32) / 255.0
        return {
            "video": torch.from_numpy(np.ascontiguousarray(video)),
            "audio": torch.from_numpy(np.ascontiguousarray(audio, np.float32)),
            "speaking": torch.from_numpy(speaking),
        }


class WholeClips(Dataset):
    """Whole clips, centre-cropped: ``video`` (T, 48, 96), ``audio`` (T * 640,), ``speaking``."""

    def __init__(self, clips: Sequence[SyncClip]) -> None:
        self.clips = list(clips)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        c = self.clips[index]
        video = center_crop(c.crops).astype(np.float32) / 255.0
        return {
            "video": torch.from_numpy(np.ascontiguousarray(video)),
            "audio": torch.from_numpy(np.asarray(c.audio, np.float32)),
            "speaking": torch.from_numpy(window_speaking(c.speaking)),
        }


class SyncDataModule(L.LightningDataModule):
    """Train windows, validation clips and held-out test clips of a :class:`SyncClipCorpus`.

    Args:
        corpus: the rendered clips (generated on first use, then cached).
        window: frames per training item (> 5).
        batch_size: training items per batch (validation and test: one clip per batch).
        items_per_epoch: training draws per epoch.
        num_workers: DataLoader worker processes.
        augment: vary the training crops and audio.
    """

    def __init__(
        self,
        *,
        corpus: SyncClipCorpus,
        window: int,
        batch_size: int,
        items_per_epoch: int,
        num_workers: int,
        augment: bool,
    ) -> None:
        super().__init__()
        self.corpus, self.window, self.batch_size = corpus, window, batch_size
        self.items_per_epoch, self.num_workers = items_per_epoch, num_workers
        self.augment = augment
        self.splits: dict[str, list[SyncClip]] = {}

    def prepare_data(self) -> None:
        self.corpus.prepare()

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            clips = self.corpus.load()
            self.splits = {s: [c for c in clips if c.split == s] for s in ("train", "val", "test")}
            log.info("sync clips: %s", {s: len(v) for s, v in self.splits.items()})

    def train_dataloader(self) -> DataLoader:
        data = SyncWindows(
            self.splits["train"],
            window=self.window,
            length=self.items_per_epoch,
            augment=self.augment,
        )
        return DataLoader(
            data,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(WholeClips(self.splits["val"]), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(WholeClips(self.splits["test"]), batch_size=1)

    def state_dict(self) -> dict[str, Any]:
        return {}
