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

Frames are read one at a time (:func:`iter_mouth_crops`), crops are embedded in chunks and the
offset search works on a band of the similarity matrix, so memory does not grow with the clip
beyond its (T, D) embeddings; clips up to a chunk (a block) long are computed exactly as in one
piece.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from avatar.audio import resample
from avatar.checkpoint import load_network
from avatar.data.mouth_crops import LEFT_EYE, RIGHT_EYE, center_crop, mouth_crops, nearest_true
from avatar.errors import WeightsMissingError
from avatar.modules.sync_expert import SyncExpert, offset_scores, scores_from_distances
from evals.errors import MetricNotApplicable

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CKPT",
    "FPS",
    "audio_embeddings",
    "expert_scores",
    "iter_mouth_crops",
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


CHUNK = 256
"""Frames whose crops are embedded in one forward pass (plus the 4 the next window shares)."""
AUDIO_CHUNK = 2048
"""Audio windows embedded in one forward pass (one chunk: the exact form)."""
AUDIO_MARGIN = 8
"""Frames of audio on each side of a chunk: more than the audio windows' receptive field (the
causal log-mel's 2.5 hops, three 3-tap convolutions at 4 mel frames a video frame, 5 frames)."""
BLOCK = 2048
"""Windows per block of the similarity band in the offset search (one block: the exact form)."""


def iter_mouth_crops(
    frames: Iterable[np.ndarray], landmarks: np.ndarray, *, smooth: int = 3
) -> Iterator[np.ndarray] | None:
    """:func:`~avatar.data.mouth_crops.mouth_crops` of a clip, one (56, 112) uint8 crop at a time.

    The eye positions are filled and smoothed over the whole track first (landmarks are small),
    then each frame is cropped as it arrives: the same crops as ``mouth_crops(frames,
    landmarks)`` without holding the frames.

    Args:
        frames: T (H, W, 3) uint8 RGB frames in order (an array or any iterable).
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        smooth: frames of the moving average over eye positions (1: none).

    Returns:
        An iterator of T crops, or None when no frame has a face.
    """
    corners = list(RIGHT_EYE) + list(LEFT_EYE)
    lm = np.asarray(landmarks)[:, corners, :2].astype(np.float64)  # (T, 4, 2): all it needs
    ok = np.isfinite(lm).all(axis=(1, 2))
    if not ok.any():
        return None
    eyes = np.stack([lm[:, :2].mean(1), lm[:, 2:].mean(1)], 1)
    eyes = eyes[nearest_true(ok)]  # frames without a face take the nearest face's eyes
    if smooth > 1:
        eyes = uniform_filter1d(eyes, size=smooth, axis=0, mode="nearest")
    return _crops(frames, eyes)


def _crops(frames: Iterable[np.ndarray], eyes: np.ndarray) -> Iterator[np.ndarray]:
    # mouth_crops of one frame whose two corners per eye both sit at the smoothed eye centre:
    # their mean is that centre exactly, so the crop is the whole-clip one (avatar.data keeps
    # the per-frame warp inside mouth_crops)
    one = np.full((1, max(*RIGHT_EYE, *LEFT_EYE) + 1, 2), np.nan)
    n = 0
    for i, frame in enumerate(frames):
        if i >= len(eyes):
            raise ValueError(f"more frames than the {len(eyes)} landmark rows")
        one[0, list(RIGHT_EYE)], one[0, list(LEFT_EYE)] = eyes[i, 0], eyes[i, 1]
        crop = mouth_crops(np.asarray(frame)[None], one, smooth=1)
        assert crop is not None  # the eyes are finite
        n += 1
        yield crop[0]
    if n != len(eyes):
        raise ValueError(f"{n} frames but {len(eyes)} landmark rows")


@torch.no_grad()
def video_embeddings(
    frames: Iterable[np.ndarray], landmarks: np.ndarray, model: SyncExpert, *, chunk: int = CHUNK
) -> torch.Tensor | None:
    """(T - 4, D) window embeddings of a clip's lower-face crops; None when no face.

    Crops are embedded ``chunk`` frames at a time, each chunk with the 4 frames before it
    (a window spans 5 frames), so the windows are those of the whole clip in one pass.

    Args:
        frames: T (H, W, 3) uint8 RGB frames at 25 fps, in order (an array or any iterable).
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        model: the expert.
        chunk: frames per forward pass (memory), >= 1.
    """
    crops = iter_mouth_crops(frames, landmarks)
    if crops is None:
        return None
    overlap = model.window - 1

    def embed(part: list[np.ndarray]) -> torch.Tensor:
        batch = center_crop(np.stack(part), model.crop_shape).astype(np.float32) / 255.0
        return model.embed_video(torch.from_numpy(batch)[None])[0]

    out: list[torch.Tensor] = []
    part: list[np.ndarray] = []
    for crop in crops:
        part.append(crop)
        if len(part) == chunk + overlap:
            out.append(embed(part))
            part = part[-overlap:] if overlap else []
    if len(part) > overlap or not out:  # windows left (or a clip too short: embed says so)
        out.append(embed(part))
    return torch.cat(out)


@torch.no_grad()
def audio_embeddings(
    audio: np.ndarray,
    sample_rate: int,
    n_frames: int,
    model: SyncExpert,
    *,
    chunk: int = AUDIO_CHUNK,
) -> torch.Tensor:
    """(n_frames - 4, D) window embeddings of (S,) mono audio starting with frame 0.

    Clips longer than ``chunk`` frames are embedded ``chunk`` windows at a time, each with
    :data:`AUDIO_MARGIN` frames of audio on either side that its windows' receptive field
    reaches into (the margins' own windows are dropped): the same windows up to float rounding.
    """
    spf = model.samples_per_frame
    wav = resample(np.asarray(audio, np.float32), int(sample_rate), model.features.sample_rate)
    need = n_frames * spf
    wav = wav[:need] if len(wav) >= need else np.pad(wav, (0, need - len(wav)))
    n_win = n_frames - model.window + 1
    if n_win <= chunk:
        return model.embed_audio(torch.from_numpy(wav)[None])[0]
    out = []
    for s in range(0, n_win, chunk):
        e = min(n_win, s + chunk)
        f0, f1 = max(0, s - AUDIO_MARGIN), min(n_frames, e + model.window - 1 + AUDIO_MARGIN)
        part = model.embed_audio(torch.from_numpy(wav[f0 * spf : f1 * spf])[None])[0]
        out.append(part[s - f0 : e - f0])  # window i of the part is window f0 + i of the clip
    return torch.cat(out)


def band_offset_scores(
    video: torch.Tensor, audio: torch.Tensor, max_offset: int, *, block: int = BLOCK
) -> dict[str, float]:
    """:func:`~avatar.modules.sync_expert.offset_scores` of long clips in bounded memory.

    Up to ``block`` windows this is ``offset_scores`` itself; longer clips take each shift's
    diagonal from ``block``-row bands of the similarity matrix instead of the whole (N, N)
    matrix (the same values up to float rounding).

    Args:
        video: (N, D) unit window embeddings of one clip.
        audio: (N, D) unit window embeddings of its audio.
        max_offset: K, frames searched each way (at most N // 2 are).
        block: rows of the similarity matrix held at once.

    Raises:
        MetricNotApplicable: fewer than 3 windows (a clip under 7 frames).
    """
    n = len(video)
    if n < 3:
        raise MetricNotApplicable(f"clip too short for the sync expert: {n + 4} frames")
    if n <= block:
        return offset_scores(video, audio, max_offset)
    if len(audio) != n:
        raise ValueError(f"need equal lengths, got {n} and {len(audio)}")
    k = min(max_offset, n // 2)
    diagonals: list[list[torch.Tensor]] = [[] for _ in range(2 * k + 1)]
    for a in range(0, n, block):
        b = min(n, a + block)
        c0, c1 = max(0, a - k), min(n, b + k)
        sim = video[a:b] @ audio[c0:c1].T  # sim[r, c] = cos(video a + r, audio c0 + c)
        for j, o in enumerate(range(-k, k + 1)):
            diagonals[j].append(torch.diagonal(sim, o + a - c0))
    d = torch.stack([1.0 - torch.cat(parts).mean() for parts in diagonals])
    return scores_from_distances(d)


def expert_scores(
    frames: Iterable[np.ndarray],
    landmarks: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    model: SyncExpert,
    *,
    max_offset: int = 15,
) -> dict[str, float] | None:
    """The expert's offset, distance, confidence and distance at offset 0 for one clip.

    Args:
        frames: T (H, W, 3) uint8 RGB frames at 25 fps, in order (an array or any iterable:
            each is read once).
        landmarks: (T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        audio: (S,) mono in [-1, 1] starting with frame 0.
        sample_rate: Hz of ``audio`` (resampled to the expert's rate).
        model: the expert (:func:`load_sync_expert`).
        max_offset: K, frames searched each way (fewer when the clip is short).

    Returns:
        The four values (see the module docstring) and ``max_offset`` used, or None when no
        frame has a face.

    Raises:
        MetricNotApplicable: the clip is shorter than 7 frames (a ``ValueError``).
    """
    if len(landmarks) < model.window + 2:
        raise MetricNotApplicable(
            f"clip too short for the sync expert: {len(landmarks)} frames (needs 7)"
        )
    v = video_embeddings(frames, landmarks, model)
    if v is None:
        return None
    a = audio_embeddings(audio, sample_rate, len(landmarks), model)
    return band_offset_scores(v, a, max_offset)
