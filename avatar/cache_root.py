"""Where the workbench keeps what it derives once and reuses (identities, a renderer's prepared
state, the face topology, the voice's patched model): one root for all of them."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "AVATAR_CACHE_DIR"
"""Environment variable naming the cache root."""
DEFAULT_ROOT = Path("~/.cache/companion-avatar")


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache root: the argument, else ``$AVATAR_CACHE_DIR``, else :data:`DEFAULT_ROOT`."""
    chosen = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser()
