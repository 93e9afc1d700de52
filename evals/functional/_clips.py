"""Input plumbing shared by the batch metric functions: tensors, arrays or lists -> per-clip arrays.

Every batch function accepts a batch of clips in one of three forms: a ``(B, *item)`` tensor or
array, a sequence of ``B`` arrays of shape ``item`` (clips of different lengths), or one clip of
shape ``item``. :func:`as_clips` turns each into a list of NumPy arrays, one per clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["as_clips", "as_numpy", "per_clip_scalars", "to_rgb8"]


def as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A tensor (any device) or array-like as a NumPy array (``dtype=None`` keeps the dtype)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)


def as_clips(x: Any, item_ndim: int, name: str, dtype: Any = np.float64) -> list[np.ndarray]:
    """Splits a batch into per-clip arrays of ``item_ndim`` dimensions.

    Args:
        x: ``(B, *item)`` tensor/array, a sequence of ``B`` item-shaped arrays, or one item.
        item_ndim: number of dimensions of one clip (e.g. 1 for a ``(T,)`` aperture curve).
        name: argument name, for error messages.
        dtype: NumPy dtype of the result (None keeps the input's).

    Returns:
        One array per clip.

    Raises:
        ValueError: a clip has the wrong number of dimensions.
    """
    if isinstance(x, Sequence) and not isinstance(x, str | bytes):
        clips = [as_numpy(c, dtype) for c in x]
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
