"""On-disk identity cache keyed by content: the same images and settings give the same avatar.

An entry is the folder ``<root>/identity/<key>/`` holding ``arrays.npz`` (portrait, landmarks,
triangles, masks) and ``meta.json`` (everything else). It is written into a temporary folder beside
it and renamed into place, so readers never see half an entry; an unreadable entry is a miss,
and a cache that cannot be written is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from avatar.identity.types import AvatarIdentity

log = logging.getLogger(__name__)

CACHE_VERSION = 3
"""Bump when derivation changes so old entries stop matching."""
_ARRAYS, _META = "arrays.npz", "meta.json"
_MASK_PREFIX = "mask_"


def cache_key(image_blobs: Iterable[bytes], settings: dict[str, Any]) -> str:
    """sha256 hex digest of the cache version, the settings and every image's bytes, in order.

    Args:
        image_blobs: each image's identifying bytes (see ``avatar.companion.image_bytes``).
        settings: JSON-serialisable derivation settings (sizes, thresholds, model hash ...).
    """
    digest = hashlib.sha256()
    digest.update(f"avatar-identity/{CACHE_VERSION}\n".encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode() + b"\n")
    for blob in image_blobs:
        digest.update(len(blob).to_bytes(8, "little"))  # lengths keep concatenations distinct
        digest.update(blob)
    return digest.hexdigest()


def entry_dir(root: Path, key: str) -> Path:
    """Folder of the entry for ``key`` under a cache root."""
    return root / "identity" / key


def load_identity(root: Path, key: str) -> AvatarIdentity | None:
    """Reads a cached identity.

    Returns:
        The identity, or None when there is no entry or it is unreadable (logged as a warning;
        the caller then derives and overwrites it).
    """
    entry = entry_dir(root, key)
    try:
        if not entry.is_dir():
            return None
        return _read_entry(entry, key)
    except Exception as exc:  # any failure to parse means a broken entry, never a crash
        log.warning("identity cache entry %s is unreadable (%s); deriving it again", entry, exc)
        return None


def _read_entry(entry: Path, key: str) -> AvatarIdentity:
    meta = json.loads((entry / _META).read_text(encoding="utf-8"))
    if meta.get("key") != key or meta.get("cache_version") != CACHE_VERSION:
        raise ValueError("key or version mismatch")
    with np.load(entry / _ARRAYS, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    masks = {name: arrays[_MASK_PREFIX + name] for name in meta["masks"]}
    portrait, landmarks = arrays["portrait"], arrays["landmarks"]
    size = portrait.shape[0]
    if portrait.shape != (size, size, 3) or landmarks.shape != (478, 3):
        raise ValueError(f"bad shapes {portrait.shape} {landmarks.shape}")
    if any(m.shape != (size, size) for m in masks.values()):
        raise ValueError("mask shape does not match the portrait")
    return AvatarIdentity(
        portrait=portrait,
        landmarks=landmarks,
        triangles=arrays["triangles"],
        masks=masks,
        blendshapes={str(k): float(v) for k, v in meta["blendshapes"].items()},
        head_pose=tuple(float(a) for a in meta["head_pose"]),
        source_index=int(meta["source_index"]),
        source_path=str(meta["source_path"]),
        selection=list(meta["selection"]),
        key=key,
    )


def save_identity(root: Path, identity: AvatarIdentity) -> Path | None:
    """Writes an identity under its ``key`` atomically, replacing any (broken) old entry.

    A cache that cannot be written (a read-only folder, a file where a folder should be, a full
    disk) is not an error: a warning names the path and the error, nothing half-written is
    left, and the caller carries on uncached.

    Returns:
        The entry folder, or None when it could not be written.
    """
    if not identity.key:
        raise ValueError("identity has no cache key")
    final = entry_dir(root, identity.key)
    try:
        _write_entry(final, identity)
    except OSError as exc:
        log.warning(
            "identity cache %s cannot be written (%s: %s); carrying on without caching "
            "(set identity.cache_dir to a writable folder, or identity.use_cache=false)",
            root,
            type(exc).__name__,
            exc,
        )
        return None
    log.info("identity cached at %s", final)
    return final


def _write_entry(final: Path, identity: AvatarIdentity) -> None:
    """Writes the entry into a temporary sibling folder, then renames it to ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name[:16]}-", dir=final.parent))
    try:
        arrays = {
            "portrait": identity.portrait,
            "landmarks": identity.landmarks,
            "triangles": identity.triangles,
            **{_MASK_PREFIX + k: v for k, v in identity.masks.items()},
        }
        np.savez(tmp / _ARRAYS, **arrays)
        meta = {
            "key": identity.key,
            "cache_version": CACHE_VERSION,
            "masks": list(identity.masks),
            "blendshapes": identity.blendshapes,
            "head_pose": list(identity.head_pose),
            "source_index": identity.source_index,
            "source_path": identity.source_path,
            "selection": identity.selection,
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if final.exists():  # a broken entry (a valid one would have been a hit)
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / _META).is_file():
                raise
            log.debug("identity cache entry %s was written concurrently; keeping it", final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _extra_path(root: Path, key: str, name: str) -> Path:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bad cache file name {name!r}")
    return entry_dir(root, key) / f"{name}.npz"


def load_extra(root: Path, key: str, name: str) -> dict[str, np.ndarray] | None:
    """Arrays stored beside the identity ``key`` under ``name`` (a renderer's prepared state).

    Returns:
        name -> array, or None when there is no such file or it is unreadable (logged; the
        caller then makes the state again and overwrites it).
    """
    path = _extra_path(root, key, name)
    try:
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:  # a broken file means "make it again", never a crash
        log.warning("cache file %s is unreadable (%s); making it again", path, exc)
        return None


def save_extra(root: Path, key: str, name: str, arrays: dict[str, np.ndarray]) -> bool:
    """Stores ``arrays`` beside the identity ``key`` atomically (temp file, then rename).

    Only beside an identity entry that exists; a cache that cannot be written is a warning,
    not an error (as for :func:`save_identity`). Returns whether the file was written.
    """
    path = _extra_path(root, key, name)
    if not path.parent.is_dir():
        return False
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("cache file %s cannot be written (%s); carrying on without it", path, exc)
        return False
    return True
