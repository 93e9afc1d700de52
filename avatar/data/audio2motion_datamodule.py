"""Audio2MotionDataModule: speech corpus -> (audio crop, mouth targets, viseme targets) batches.

Splits: the held-out voices are the *test* split (never seen in training or validation); a
seeded ``val_fraction`` of each remaining voice's utterances is the *val* split. Training items
are augmented on the fly (:class:`avatar.data.augment.AudioAugment`); targets are computed after
the speed change, from the scaled timeline, so they always match the audio.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from avatar.data.augment import AudioAugment
from avatar.data.speech_corpus import MotionTargets, SpeechCorpus, Utterance

log = logging.getLogger(__name__)


class Audio2MotionDataset(Dataset):
    """Fixed-length crops of utterances with their frame targets.

    Args:
        utterances: corpus items (audio at ``sample_rate``).
        targets: timeline -> (viseme weights, mouth channels) per video frame.
        sample_rate: audio rate, Hz; ``sample_rate / targets.fps`` must be whole.
        crop_s: crop length, seconds (a whole number of frames); shorter utterances are
            padded with silence, whose targets are a closed mouth.
        augment: augmentations, or None for clean audio.
        random_crop: random frame-aligned start in long utterances; else start at 0.
        seed: base seed; item ``i``'s draw ``k`` uses ``default_rng([seed, i, k])``.
    """

    def __init__(
        self,
        utterances: list[Utterance],
        *,
        targets: MotionTargets,
        sample_rate: int,
        crop_s: float,
        augment: AudioAugment | None,
        random_crop: bool,
        seed: int,
    ) -> None:
        spf = sample_rate / targets.fps
        if spf != int(spf):
            raise ValueError(f"{sample_rate} Hz is not a whole number of samples per frame")
        self.utterances, self.targets, self.sample_rate = utterances, targets, sample_rate
        self.spf, self.n_frames = int(spf), int(round(crop_s * targets.fps))
        self.augment, self.random_crop, self.seed = augment, random_crop, seed
        self._draws = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """``audio`` (S,) float32, ``mouth`` (T, 7), ``visemes`` (T, 14) with S = T * 640."""
        u = self.utterances[index]
        rng = np.random.default_rng([self.seed, index, self._draws])
        self._draws += 1
        audio, timeline = u.audio, u.timeline
        if self.augment is not None:
            audio, timeline = self.augment.speed(audio, timeline, rng)
        total = math.ceil(len(audio) / self.spf)
        start = 0
        if self.random_crop and total > self.n_frames:
            start = int(rng.integers(0, total - self.n_frames + 1))
        stop = start + self.n_frames
        weights, mouth = self.targets(timeline, max(total, stop))
        crop = audio[start * self.spf : stop * self.spf]
        crop = np.pad(crop, (0, self.n_frames * self.spf - len(crop)))
        if self.augment is not None:
            crop = self.augment.acoustic(crop, rng)
        return {
            "audio": torch.from_numpy(np.ascontiguousarray(crop, np.float32)),
            "mouth": torch.from_numpy(mouth[start:stop]),
            "visemes": torch.from_numpy(weights[start:stop]),
        }


def split_utterances(
    utterances: list[Utterance], *, heldout_voices: list[str], val_fraction: float, seed: int
) -> dict[str, list[Utterance]]:
    """``{"train", "val", "test"}``: test = held-out voices; val = a seeded share of each other
    voice (at least one utterance when ``val_fraction > 0``)."""
    splits: dict[str, list[Utterance]] = {"train": [], "val": [], "test": []}
    by_voice: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_voice.setdefault(u.voice, []).append(u)
    rng = np.random.default_rng(seed)
    for voice, items in by_voice.items():
        if voice in heldout_voices:
            splits["test"].extend(items)
            continue
        order = rng.permutation(len(items))
        n_val = max(int(round(val_fraction * len(items))), int(val_fraction > 0))
        n_val = min(n_val, len(items) - 1)
        splits["val"].extend(items[i] for i in order[:n_val])
        splits["train"].extend(items[i] for i in order[n_val:])
    return splits


class Audio2MotionDataModule(LightningDataModule):
    """Batches of ``audio`` (B, S), ``mouth`` (B, T, 7), ``visemes`` (B, T, 14).

    Args:
        corpus: the speech corpus (generated in ``prepare_data``, cached on disk).
        targets: the coarticulation that makes the frame targets.
        augment: training augmentations (None: clean training audio).
        crop_s: seconds per training/validation/test crop.
        val_fraction: share of each training voice's utterances used for validation.
        batch_size: items per batch.
        num_workers: DataLoader worker processes (0: in the main process).
        seed: split and augmentation seed.
    """

    def __init__(
        self,
        *,
        corpus: SpeechCorpus,
        targets: MotionTargets,
        augment: AudioAugment | None,
        crop_s: float,
        val_fraction: float,
        batch_size: int,
        num_workers: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.corpus, self.targets, self.augment = corpus, targets, augment
        self.crop_s, self.val_fraction, self.seed = crop_s, val_fraction, seed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.splits: dict[str, list[Utterance]] = {}

    def prepare_data(self) -> None:
        self.corpus.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        utterances = self.corpus.load()
        self.splits = split_utterances(
            utterances,
            heldout_voices=self.corpus.heldout_voices,
            val_fraction=self.val_fraction,
            seed=self.seed,
        )
        log.info(
            "audio2motion data: %s; split sizes %s",
            self.corpus.summary(utterances),
            {k: len(v) for k, v in self.splits.items()},
        )

    def dataset(self, split: str) -> Audio2MotionDataset:
        """The dataset of ``split`` (augmented and randomly cropped only for ``train``)."""
        train = split == "train"
        return Audio2MotionDataset(
            self.splits[split],
            targets=self.targets,
            sample_rate=self.corpus.sample_rate,
            crop_s=self.crop_s,
            augment=self.augment if train else None,
            random_crop=train,
            seed=self.seed,
        )

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=split == "train",
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
