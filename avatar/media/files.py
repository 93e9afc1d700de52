"""Output files written in one piece: a hidden temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["temp_beside"]


def temp_beside(path: Path, suffix: str) -> Path:
    """Create a new, empty hidden file next to ``path`` and return its path.

    Beside ``path`` means on the same file system, so ``os.replace`` onto ``path`` is atomic.
    The file is opened with mode 0666 and ``O_EXCL``: the kernel applies the process umask,
    as for any new file, without this code reading or changing the (process-wide) umask, so it
    is safe in threads.

    Args:
        path: the final output path; missing parent directories are created.
        suffix: the temporary name's ending (e.g. ``".part.mp4"``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")
