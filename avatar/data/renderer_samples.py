"""Per-video training samples of the neural renderer: a shard's frames beside the network
inputs the renderer makes for them (prior, region mask, audio features), cached on disk.

One shard of :mod:`avatar.data.video_folder` becomes one folder of ``.npy`` arrays, read
memory-mapped (a large video folder does not have to fit in memory)::

    target.npy   (T, S, S, 3) uint8  the shard's frames (what the renderer should output)
    prior.npy    (T, S, S, 3) uint8  plain mesh-warp of the identity with motion row k
    region.npy   (T, S, S)    uint8  region mask x 255 (mouth and eyes, warped landmarks)
    motion.npy   (T, C)       float32 motion rows, CHANNELS order
    audio.npy    (T, A)       float32 audio features under each frame (A may be 0)
    source.npy   (S, S, 3)    uint8  the identity's portrait (made from the reference frame)
    centres.npy  (T, 3, 2)    float32 mouth, right eye, left eye centres, crop pixels (NaN: none)

:class:`RendererFrames` serves items ``{prior, source, region, motion, audio, target}`` as
float tensors (C, H, W) in [0, 1], optionally cropped around the mouth or an eye (the network
has no normalisation layers, so crops train what full frames render).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avatar.audio import Audio
from avatar.renderers.base import CHANNELS

log = logging.getLogger(__name__)

__all__ = ["ARRAYS", "RendererFrames", "ShardSamples", "write_samples"]

ARRAYS = ("target", "prior", "region", "motion", "audio", "source", "centres")
_MOUTH = (13, 14, 61, 291)  # lip centres and corners (MediaPipe face mesh)
_EYES = ((33, 133), (263, 362))  # right and left eye corners
CHUNK = 16  # frames per renderer.inputs call


def _centres(landmarks: np.ndarray) -> np.ndarray:
    """(T, 478, 2) landmarks -> (T, 3, 2) mouth, right-eye and left-eye centres."""
    parts = [list(_MOUTH), list(_EYES[0]), list(_EYES[1])]
    return np.stack([landmarks[:, p].mean(axis=1) for p in parts], axis=1).astype(np.float32)


def write_samples(
    folder: Path,
    renderer: object,
    prepared: object,
    portrait: np.ndarray,
    shard: dict[str, np.ndarray],
    motion: np.ndarray,
    sample_rate: int,
) -> Path:
    """Write one shard's sample arrays to ``folder`` (whole or not at all; reused when there).

    Args:
        folder: the sample folder (see the module docstring).
        renderer: a :class:`~avatar.renderers.neural.NeuralRenderer` (its ``inputs``).
        prepared: the renderer's prepared identity of the shard's reference frame.
        portrait: (S, S, 3) uint8 that identity's portrait.
        shard: the shard's arrays (``frames``, ``landmarks``, ``audio``).
        motion: (T, C) float32 motion rows the priors are rendered with.
        sample_rate: Hz of ``shard["audio"]`` (T * sample_rate / 25 samples).
    """
    if (folder / "done").is_file():
        return folder
    frames = shard["frames"]
    n = len(frames)
    if motion.shape != (n, len(CHANNELS)):
        raise ValueError(f"{folder.name}: motion {motion.shape} for {n} frames")
    audio = np.asarray(shard["audio"], np.float32)
    per_frame = len(audio) // n
    priors, regions, feats = [], [], []
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        sound = Audio(audio[a * per_frame : b * per_frame], sample_rate)
        got = renderer.inputs(prepared, motion[a:b], sound)  # type: ignore[attr-defined]
        priors.append((got.prior.permute(0, 2, 3, 1) * 255).round().byte().cpu().numpy())
        regions.append((got.region[:, 0] * 255).round().byte().cpu().numpy())
        none = np.zeros((b - a, 0), np.float32)
        feats.append(none if got.audio is None else got.audio.cpu().numpy())
    arrays = {
        "target": frames,
        "prior": np.concatenate(priors),
        "region": np.concatenate(regions),
        "motion": motion.astype(np.float32),
        "audio": np.concatenate(feats),
        "source": portrait,
        "centres": _centres(np.asarray(shard["landmarks"], np.float32)),
    }
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, value in arrays.items():
        np.save(tmp / f"{name}.npy", value)
    (tmp / "done").write_text("")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


@dataclass(frozen=True)
class ShardSamples:
    """One shard's sample arrays (memory-mapped), see the module docstring."""

    name: str
    arrays: dict[str, np.ndarray]

    @classmethod
    def load(cls, folder: Path) -> ShardSamples:
        if not (folder / "done").is_file():
            raise FileNotFoundError(f"{folder}: no finished sample arrays")
        arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in ARRAYS}
        return cls(folder.name, arrays)

    def __len__(self) -> int:
        return len(self.arrays["target"])


def _image(x: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (H, W) uint8 -> (3 or 1, H, W) float32 in [0, 1]."""
    t = torch.from_numpy(np.array(x)).float().div_(255.0)  # a copy: the arrays are read-only maps
    return t.permute(2, 0, 1) if t.ndim == 3 else t[None]


class RendererFrames(Dataset):
    """Frames of several shards as network items.

    Args:
        shards: the shards' sample arrays.
        crop: side of a random crop around the mouth (half the draws) or an eye, pixels
            (divisible by ``2 ** depth`` of the net), or None for whole frames.
        jitter: the crop centre moves by up to this share of ``crop`` each way.
        frames: keep only the first ``frames`` frames of each shard (None: all).
        seed: the crops' random stream (each item draws from ``seed`` and its index, so
            validation crops are the same every epoch).
        fixed: draw the same crop for an index every time (validation); else a new one.

    Items: ``prior``, ``target``, ``source`` (3, s, s), ``region`` (1, s, s) in [0, 1],
    ``motion`` (C,), ``audio`` (A,) float32.
    """

    def __init__(
        self,
        shards: Sequence[ShardSamples],
        *,
        crop: int | None = None,
        jitter: float = 0.15,
        frames: int | None = None,
        seed: int = 0,
        fixed: bool = False,
    ) -> None:
        self.shards = list(shards)
        if not self.shards:
            raise ValueError("RendererFrames: no shards (an empty split?)")
        self.index = [
            (s, k) for s, shard in enumerate(self.shards) for k in range(len(shard))[:frames]
        ]
        size = self.shards[0].arrays["target"].shape[1]
        if crop is not None and not 8 <= crop <= size:
            raise ValueError(f"crop must be between 8 and the frame side {size}, got {crop}")
        self.crop, self.jitter, self.seed, self.fixed = crop, jitter, seed, fixed
        self._draws = 0

    def __len__(self) -> int:
        return len(self.index)

    def _window(self, shard: ShardSamples, k: int, i: int) -> tuple[int, int] | None:
        if self.crop is None:
            return None
        self._draws += 1
        rng = np.random.default_rng([self.seed, i] if self.fixed else [self.seed, i, self._draws])
        centres = np.asarray(shard.arrays["centres"][k])
        part = 0 if rng.random() < 0.5 else int(rng.integers(1, 3))
        size = shard.arrays["target"].shape[1]
        centre = centres[part] if np.isfinite(centres[part]).all() else np.full(2, size / 2)
        centre = centre + rng.uniform(-self.jitter, self.jitter, 2) * self.crop
        x0, y0 = (np.clip(np.round(centre - self.crop / 2), 0, size - self.crop)).astype(int)
        return int(x0), int(y0)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s, k = self.index[i]
        shard = self.shards[s]
        a = shard.arrays
        win = self._window(shard, k, i)

        def cut(x: np.ndarray) -> np.ndarray:
            if win is None:
                return x
            x0, y0 = win
            return x[y0 : y0 + self.crop, x0 : x0 + self.crop]

        return {
            "prior": _image(cut(a["prior"][k])),
            "target": _image(cut(a["target"][k])),
            "source": _image(cut(a["source"])),
            "region": _image(cut(a["region"][k])),
            "motion": torch.from_numpy(np.array(a["motion"][k], np.float32)),
            "audio": torch.from_numpy(np.array(a["audio"][k], np.float32)),
        }
