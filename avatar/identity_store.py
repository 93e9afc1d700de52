"""IdentityStore: companion -> (identity, renderer-prepared state), resolved once, kept in memory.

A served pipeline renders the same few companions over and over, from many threads. The store
makes each companion cost one derivation (or one disk-cache read) and one ``prepare`` (or one
read of the prepared state cached beside the identity, for renderers that name it):

- entries are keyed by the identity's content key (image bytes + settings, see
  :func:`~avatar.identity.derive.identity_key`); a companion's key is remembered per file
  state (path, size, mtime, inode), so an unchanged image is not re-read or re-hashed, and an
  edited one is;
- at most ``capacity`` entries are kept, least recently used first out;
- a lock guards the maps and a per-key lock makes concurrent requests for one companion wait
  for a single derivation instead of each doing it (failures are not cached: the next request
  tries again).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from avatar.background import parse_background
from avatar.cache_root import cache_root
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.companion import CompanionSpec
from avatar.errors import ConfigValueError
from avatar.identity.cache import load_extra, save_extra
from avatar.identity.derive import IdentitySettings, derive_identity, identity_key
from avatar.identity.types import AvatarIdentity
from avatar.renderers.base import Prepared, Renderer

log = logging.getLogger(__name__)

__all__ = ["IdentityStore", "Resolved"]

_MAX_REMEMBERED_KEYS = 1024


@dataclass(frozen=True)
class Resolved:
    """A companion ready to render: its identity and the renderer's prepared state."""

    identity: AvatarIdentity
    prepared: Prepared


def _file_state(ref: str) -> Hashable:
    """What identifies an image ref's current content without reading it."""
    if ref.startswith("embedded:"):
        return ref
    try:
        st = os.stat(os.path.expanduser(ref))
    except OSError as exc:
        return (ref, "unreadable", exc.errno)
    return (os.path.abspath(os.path.expanduser(ref)), st.st_size, st.st_mtime_ns, st.st_ino)


class IdentityStore:
    """Resolves companions for one renderer, thread-safe (see the module docstring).

    Args:
        renderer: prepares each identity (its ``size`` is the identities' size).
        settings: derivation and disk-cache settings.
        capacity: identities kept in memory (>= 1).
    """

    def __init__(self, *, renderer: Renderer, settings: IdentitySettings, capacity: int) -> None:
        if capacity < 1:
            raise ConfigValueError(f"memory.identities must be at least 1, got {capacity}")
        self.renderer, self.settings, self.capacity = renderer, settings, int(capacity)
        self._background = parse_background(settings.background)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Resolved] = OrderedDict()
        self._keys: OrderedDict[Hashable, str] = OrderedDict()
        self._pending: dict[str, threading.Lock] = {}
        self.derivations = 0  # identities derived or loaded from disk by this store

    def key_of(self, spec: CompanionSpec) -> str:
        """The content key of ``spec``'s identity (hashes the images only when they changed)."""
        under = self._background  # an image: keyed by its file state, as the images are
        under_state = _file_state(str(under)) if isinstance(under, Path) else under
        state = (tuple(_file_state(r) for r in spec.images), self.renderer.size, under_state)
        with self._lock:
            key = self._keys.get(state)
            if key is not None:
                self._keys.move_to_end(state)
                return key
        key = identity_key(spec, size=self.renderer.size, settings=self.settings)
        with self._lock:
            self._keys[state] = key
            while len(self._keys) > _MAX_REMEMBERED_KEYS:
                self._keys.popitem(last=False)
        return key

    def _cached(self, key: str) -> Resolved | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def resolve(self, spec: CompanionSpec, *, cancel: CancelToken | None = None) -> Resolved:
        """The companion's identity and prepared state, derived at most once at a time."""
        key = self.key_of(spec)
        if (hit := self._cached(key)) is not None:
            return hit
        with self._lock:
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            if (hit := self._cached(key)) is not None:
                return hit
            try:
                check_cancel(cancel)
                identity = derive_identity(
                    spec, size=self.renderer.size, settings=self.settings, key=key, cancel=cancel
                )
                resolved = Resolved(identity, self._prepare(identity))
                with self._lock:
                    self.derivations += 1
                    self._entries[key] = resolved
                    while len(self._entries) > self.capacity:
                        old, _ = self._entries.popitem(last=False)
                        log.debug("identity %s left the in-memory store", old[:12])
            finally:
                with self._lock:
                    self._pending.pop(key, None)
        return resolved

    def _prepare(self, identity: AvatarIdentity) -> Prepared:
        """The renderer's prepared state: read from beside the cached identity when it was
        made before (renderers with a ``cache_name``), else made and stored there."""
        name = self.renderer.cache_name
        if not (name and self.settings.use_cache and identity.key):
            return self.renderer.prepare(identity)
        root = cache_root(self.settings.cache_dir)
        arrays = load_extra(root, identity.key, name)
        if arrays is not None:
            try:
                return self.renderer.restore_prepared(identity, arrays)
            except (KeyError, ValueError) as exc:
                log.warning(
                    "cached %s of identity %s does not fit (%s); preparing it again",
                    name,
                    identity.key[:12],
                    exc,
                )
        prepared = self.renderer.prepare(identity)
        save_extra(root, identity.key, name, self.renderer.prepared_arrays(prepared))
        return prepared

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
