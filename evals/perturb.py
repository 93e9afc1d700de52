"""Known perturbations of a clip's audio, for validating sync metrics (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

__all__ = ["shift_audio", "shuffle_blocks"]


def shift_audio(audio: np.ndarray, sample_rate: int, fps: float, k: int) -> np.ndarray:
    """``audio`` delayed by ``k`` video frames (advanced when k < 0), zero-filled, same length.

    Example:
        >>> shift_audio(np.arange(1.0, 5.0), 2, 2.0, 1).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    s = round(k * sample_rate / fps)
    out = np.zeros_like(audio)
    if s >= 0:
        out[s:] = audio[: len(audio) - s]
    else:
        out[:s] = audio[-s:]
    return out


def shuffle_blocks(audio: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` cut into ``block``-sample pieces put back in a random order (the tail stays).

    Example:
        >>> out = shuffle_blocks(np.arange(7.0), 2, np.random.default_rng(0))
        >>> sorted(out.tolist()) == list(range(7)) and bool(out[-1] == 6.0)
        True
    """
    n = len(audio) // block
    pieces = [audio[i * block : (i + 1) * block] for i in rng.permutation(n)]
    return np.concatenate([*pieces, audio[n * block :]])
