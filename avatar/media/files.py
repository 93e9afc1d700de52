"""Output files written in one piece: a hidden temporary file beside the target, then a rename.

Every temporary file made here is registered until it is renamed into place
(:func:`commit_temp`) or deleted (:func:`discard_temp`); whatever is still registered when the
interpreter exits (a render stopped by a signal between two steps) is deleted then, so no
``.name.mp4.*.part.mp4`` is left behind. A process killed outright (SIGKILL) cannot clean up.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
from pathlib import Path

__all__ = ["commit_temp", "discard_temp", "live_temps", "remove_leftovers", "temp_beside"]

log = logging.getLogger(__name__)

_LIVE: set[Path] = set()  # temp files made and neither committed nor discarded yet
_LIVE_LOCK = threading.Lock()


def temp_beside(path: Path, suffix: str) -> Path:
    """Create a new, empty hidden file next to ``path`` and return its path (registered).

    Beside ``path`` means on the same file system, so ``os.replace`` onto ``path`` is atomic.
    The file is opened with mode 0666 and ``O_EXCL``: the kernel applies the process umask,
    as for any new file, without this code reading or changing the (process-wide) umask, so it
    is safe in threads.

    Args:
        path: the final output path; missing parent directories are created.
        suffix: the temporary name's ending (e.g. ``".part.mp4"``).

    Raises:
        OSError: the directory cannot be made or written (callers turn it into
            :class:`~avatar.errors.OutputPathError`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        with _LIVE_LOCK:  # registered before it exists: a signal cannot slip in between
            _LIVE.add(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            _forget(tmp)
            continue
        except BaseException:
            _forget(tmp)
            raise
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")


def _forget(tmp: Path) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(tmp)


def commit_temp(tmp: Path, path: Path) -> None:
    """Move the finished temporary file ``tmp`` onto ``path`` (atomic) and unregister it."""
    os.replace(tmp, path)
    _forget(tmp)


def discard_temp(tmp: Path) -> None:
    """Delete the temporary file ``tmp`` (if it is there) and unregister it."""
    try:
        tmp.unlink(missing_ok=True)
    finally:
        _forget(tmp)


def live_temps() -> list[Path]:
    """The temporary files made and not yet committed or discarded (sorted)."""
    with _LIVE_LOCK:
        return sorted(_LIVE)


def remove_leftovers() -> list[Path]:
    """Delete every registered temporary file (run at interpreter exit); returns those deleted."""
    removed = []
    for tmp in live_temps():
        try:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        except OSError as exc:  # nothing else to do at exit: say which file stays
            log.warning("could not remove the partial file %s: %s", tmp, exc)
        _forget(tmp)
    return removed


atexit.register(remove_leftovers)
