"""Input plumbing shared by the batch metric functions: tensors, arrays or lists -> per-clip arrays.

Every batch function accepts a batch of clips in one of three forms: a ``(B, *item)`` tensor or
array, a sequence of ``B`` arrays of shape ``item`` (clips of different lengths), or one clip of
shape ``item``. :func:`as_clips` turns each into a list of NumPy arrays, one per clip.

A video clip may also be a :class:`StreamedVideo`: its file, decoded again on every pass, so
that metrics reading pixels (flicker, identity, the sync experts) see one frame at a time and
memory does not grow with the clip. Such metrics iterate clips with :func:`iter_rgb8` or
:func:`sampled` instead of indexing them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from avatar.media import iter_video_frames

__all__ = [
    "StreamedVideo",
    "as_clips",
    "as_numpy",
    "iter_rgb8",
    "per_clip_scalars",
    "sampled",
    "to_rgb8",
]


class StreamedVideo:
    """A (T, 3, H, W) uint8 clip read from its video file frame by frame on every pass.

    Iterating decodes the file (:func:`avatar.media.iter_video_frames`) and yields (3, H, W)
    views of its first T frames; :meth:`rgb_frames` yields them as (H, W, 3). Indexing and
    conversion to an array are refused: they would hold the whole clip.

    Args:
        path: the video file.
        n_frames: T, the frames a first pass decoded.
        height: H, pixels.
        width: W, pixels.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, path: str | os.PathLike[str], *, n_frames: int, height: int, width: int):
        self.path, self.n_frames = path, int(n_frames)
        self.height, self.width = int(height), int(width)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, 3, H, W)."""
        return (self.n_frames, 3, self.height, self.width)

    def __len__(self) -> int:
        return self.n_frames

    def rgb_frames(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames, decoded one at a time."""
        if self.n_frames == 0:
            return
        for i, (frame, _) in enumerate(iter_video_frames(self.path)):
            yield frame
            if i + 1 == self.n_frames:
                return

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame.transpose(2, 0, 1) for frame in self.rgb_frames())

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(f"{self!r} is streamed: iterate its frames instead of converting it")

    def __repr__(self) -> str:
        return f"StreamedVideo({str(self.path)!r}, {self.n_frames} frames)"


def as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A tensor (any device) or array-like as a NumPy array (``dtype=None`` keeps the dtype)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)


def as_clips(x: Any, item_ndim: int, name: str, dtype: Any = np.float64) -> list[np.ndarray]:
    """Splits a batch into per-clip arrays of ``item_ndim`` dimensions.

    Args:
        x: ``(B, *item)`` tensor/array, a sequence of ``B`` item-shaped arrays (or
            :class:`StreamedVideo` clips, passed through), or one item.
        item_ndim: number of dimensions of one clip (e.g. 1 for a ``(T,)`` aperture curve).
        name: argument name, for error messages.
        dtype: NumPy dtype of the result (None keeps the input's).

    Returns:
        One array (or :class:`StreamedVideo`) per clip.

    Raises:
        ValueError: a clip has the wrong number of dimensions.
    """
    if isinstance(x, StreamedVideo):
        clips = [x]
    elif isinstance(x, Sequence) and not isinstance(x, str | bytes):
        clips = [c if isinstance(c, StreamedVideo) else as_numpy(c, dtype) for c in x]
    else:
        arr = as_numpy(x, dtype)
        if arr.ndim == item_ndim:
            clips = [arr]
        elif arr.ndim == item_ndim + 1:
            clips = list(arr)
        else:
            raise ValueError(
                f"{name} must be (B, ...) with {item_ndim + 1} dims or one clip with {item_ndim}, "
                f"got shape {arr.shape}"
            )
    for i, c in enumerate(clips):
        if c.ndim != item_ndim:
            raise ValueError(f"{name}[{i}] must have {item_ndim} dims, got shape {c.shape}")
    return clips


def per_clip_scalars(x: Any, n: int, name: str) -> np.ndarray:
    """A scalar or ``(B,)`` batch of per-clip values as a float64 ``(n,)`` array."""
    arr = np.atleast_1d(as_numpy(x))
    if arr.ndim != 1 or arr.size not in (1, n):
        raise ValueError(f"{name} must be a scalar or ({n},), got shape {arr.shape}")
    return np.broadcast_to(arr, (n,)).astype(np.float64)


def to_rgb8(frame: np.ndarray) -> np.ndarray:
    """(3, H, W) or (H, W, 3), uint8 or float in [0, 1] -> (H, W, 3) uint8."""
    f = np.asarray(frame)
    if f.ndim != 3 or 3 not in (f.shape[0], f.shape[-1]):
        raise ValueError(f"expected a (3, H, W) or (H, W, 3) image, got {f.shape}")
    if f.shape[-1] != 3:
        f = np.moveaxis(f, 0, -1)
    if f.dtype != np.uint8:
        f = np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(f)


def iter_rgb8(clip: Any) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames of one (T, 3, H, W) clip, uint8 or float in [0, 1], one at a time.

    Example:
        >>> [f.shape for f in iter_rgb8(np.zeros((2, 3, 4, 5)))]
        [(4, 5, 3), (4, 5, 3)]
    """
    if isinstance(clip, StreamedVideo):
        yield from clip.rgb_frames()
        return
    for frame in as_numpy(clip, None):
        f = np.moveaxis(frame, 0, -1)
        yield f if f.dtype == np.uint8 else np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8)


def sampled(clip: Any, every: int) -> Iterator[tuple[int, Any]]:
    """(i, frame) for frames 0, k, 2k, ... of one clip (an array, tensor or StreamedVideo).

    Example:
        >>> [i for i, _ in sampled(np.zeros((5, 3, 2, 2)), 2)]
        [0, 2, 4]
    """
    if isinstance(clip, StreamedVideo):
        for i, frame in enumerate(clip):
            if i % every == 0:
                yield i, frame
        return
    for i in range(0, len(clip), every):
        yield i, clip[i]
