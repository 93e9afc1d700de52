"""Cached generated data: a directory is built under a temporary name and renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["build_dir"]


@contextmanager
def build_dir(final: Path) -> Iterator[Path]:
    """Yields an empty directory beside ``final`` that becomes ``final`` when the block succeeds.

    A crash or an exception never leaves half a directory at ``final`` (the temporary one is
    removed); when another process has finished ``final`` first, its copy is kept.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with build_dir(root / "corpus") as tmp:
        ...     _ = (tmp / "index.json").write_text("{}")
        >>> sorted(p.name for p in root.iterdir()), (root / "corpus" / "index.json").is_file()
        (['corpus'], True)
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        yield tmp
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first: keep its copy
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
