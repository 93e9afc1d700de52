"""The workbench's sync expert as a metric: A/V offset, distance and confidence of any clip.

The expert (:class:`avatar.modules.sync_expert.SyncExpert`, trained by ``python -m avatar.train
experiment=sync_expert`` on clips the project renders, its own seed and data) embeds every
5-frame window of grey lower-face crops (:func:`avatar.data.mouth_crops.mouth_crops`, placed by
the eyes from MediaPipe landmarks) and of 16 kHz audio. As SyncNet's evaluation does, the mean
cosine distance of video window ``i`` to audio window ``i + o`` is taken over the clip for
``o = -K..K``; then:

- ``offset``: the shift with the lowest mean distance, frames (> 0: the video lags the audio);
- ``distance``: that lowest mean distance (lower is better, like LSE-D; in [0, 2]);
- ``confidence``: the median minus the lowest (higher is better, like LSE-C);
- ``dist_at_0``: the mean distance with no shift, where a constant A/V shift cannot hide.

Values are on this expert's own scale: compare them across systems and runs, not with
published LSE figures (those are ``syncnet_v2``'s, :mod:`evals.functional.syncnet`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from avatar.audio import resample
from avatar.checkpoint import load_network
from avatar.data.mouth_crops import center_crop, mouth_crops
from avatar.errors import WeightsMissingError
from avatar.modules.sync_expert import SyncExpert, offset_scores

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CKPT",
    "FPS",
    "audio_embeddings",
    "expert_scores",
    "load_sync_expert",
    "offset_scores",
    "video_embeddings",
]

FPS = 25.0
DEFAULT_CKPT = Path(__file__).resolve().parents[2] / "checkpoints" / "sync_expert.ckpt"
"""The committed expert (``checkpoints/sync_expert.ckpt``, with its run config beside it)."""


def load_sync_expert(path: str | Path | None = None) -> SyncExpert:
    """The trained expert from an exported or Lightning checkpoint (CPU, eval mode).

    Args:
        path: the checkpoint (:mod:`avatar.checkpoint` format); None: :data:`DEFAULT_CKPT`.

    Raises:
        WeightsMissingError: the file is absent, is not a network checkpoint, holds another
            network than :class:`SyncExpert`, or weights that do not fit its stored config.
    """
    path = Path(path) if path is not None else DEFAULT_CKPT
    if not path.is_file():
        hint = "train it: python -m avatar.train experiment=sync_expert"
        raise WeightsMissingError(f"sync expert checkpoint {path} is absent ({hint})")
    net = load_network(path, expected=SyncExpert)
    log.info("sync expert: %s", path)
    return net


@torch.no_grad()
def video_embeddings(
    frames: np.ndarray, landmarks: np.ndarray, model: SyncExpert
) -> torch.Tensor | None:
    """(T - 4, D) window embeddings of a clip's lower-face crops; None when no face.

    Args:
        frames: (T, H, W, 3) uint8 RGB at 25 fps.
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        model: the expert.
    """
    crops = mouth_crops(frames, landmarks)
    if crops is None:
        return None
    video = torch.from_numpy(center_crop(crops, model.crop_shape).astype(np.float32) / 255.0)
    return model.embed_video(video[None])[0]


@torch.no_grad()
def audio_embeddings(
    audio: np.ndarray, sample_rate: int, n_frames: int, model: SyncExpert
) -> torch.Tensor:
    """(n_frames - 4, D) window embeddings of (S,) mono audio starting with frame 0."""
    spf = model.samples_per_frame
    wav = resample(np.asarray(audio, np.float32), int(sample_rate), model.features.sample_rate)
    wav = np.pad(wav, (0, max(0, n_frames * spf - len(wav))))[: n_frames * spf]
    return model.embed_audio(torch.from_numpy(wav)[None])[0]


def expert_scores(
    frames: np.ndarray,
    landmarks: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    model: SyncExpert,
    *,
    max_offset: int = 15,
) -> dict[str, float] | None:
    """The expert's offset, distance, confidence and distance at offset 0 for one clip.

    Args:
        frames: (T, H, W, 3) uint8 RGB at 25 fps.
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        audio: (S,) mono in [-1, 1] starting with frame 0.
        sample_rate: Hz of ``audio`` (resampled to the expert's rate).
        model: the expert (:func:`load_sync_expert`).
        max_offset: K, frames searched each way (fewer when the clip is short).

    Returns:
        The four values (see the module docstring) and ``max_offset`` used, or None when no
        frame has a face.

    Raises:
        ValueError: the clip is shorter than 7 frames.
    """
    v = video_embeddings(frames, landmarks, model)
    if v is None:
        return None
    return offset_scores(v, audio_embeddings(audio, sample_rate, len(frames), model), max_offset)
