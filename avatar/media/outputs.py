"""Output paths checked before any work, and write failures turned into clear errors.

:func:`check_output_path` is what an entry point (the CLI, a server route) calls on a requested
output path before it synthesizes or renders anything; :func:`write_error` is what a writer
raises when the disk fills up or the file system refuses a write halfway.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from avatar.errors import OutputPathError
from avatar.media.files import discard_temp, temp_beside

__all__ = ["check_output_path", "start_error", "write_error"]

PathLike = str | os.PathLike[str]

_FIXES = {
    errno.ENOSPC: "free some disk space or write elsewhere",
    errno.EDQUOT: "free some of your disk quota or write elsewhere",
    errno.EFBIG: "the file system or a limit (ulimit -f) caps the file size; write elsewhere",
    errno.EROFS: "the file system is read-only; choose a writable directory",
    errno.EACCES: "no permission to write there; choose a writable directory",
    errno.EPERM: "the operation is not permitted there; choose a writable directory",
}


def _os_error(problem: str, exc: OSError) -> OutputPathError:
    """``problem: <OS reason> (<ERRNO>); <fix>``, keeping ``exc.errno``."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    fix = _FIXES.get(exc.errno or 0, "choose another output path")
    error = OutputPathError(f"{problem}: {reason}{f' ({name})' if name else ''}; {fix}")
    error.errno = exc.errno
    return error


def write_error(path: PathLike, exc: OSError, *, what: str = "file") -> OutputPathError:
    """An :class:`OutputPathError` for an OS error met while writing ``path`` (raise it
    ``from exc``); it names the path, the OS reason and a fix, and keeps ``exc.errno``.

    >>> err = write_error("o.mp4", OSError(errno.ENOSPC, "No space left on device"), what="MP4")
    >>> err.errno == errno.ENOSPC, str(err).split("; ")[0]
    (True, 'o.mp4: cannot write the MP4: No space left on device (ENOSPC)')
    """
    return _os_error(f"{path}: cannot write the {what}", exc)


def check_output_path(
    path: PathLike | None, *, suffix: str = ".mp4", key: str | None = "out"
) -> Path:
    """Check that a file can be written at ``path``, before any work is done.

    Refuses: an empty path, a name not ending in ``suffix``, an existing directory or other
    non-regular file (a device, a pipe), a parent that is a file, and a directory (or, for a
    missing parent, the nearest existing ancestor, where it would be made) that cannot be
    written: probed by creating and deleting a hidden file there, so read-only file systems
    and permission rules are seen as the real write would see them. Nothing is created.

    Args:
        path: the requested output file (``~`` is expanded).
        suffix: the ending the file must have (case-insensitive), e.g. ``".mp4"`` or ``".wav"``.
        key: the config key or field that gave ``path``, named in the messages as
            ``key=path`` (None: the path alone).

    Returns:
        The path to write, with ``~`` expanded.

    Raises:
        OutputPathError: the path cannot be written; the message names it, why, and the fix.

    >>> check_output_path("", key="out")
    Traceback (most recent call last):
    ...
    avatar.errors.OutputPathError: out is empty: give the file to write, e.g. out=out/render.mp4
    """
    if path is None or not str(path).strip():
        raise OutputPathError(
            f"{key or 'the output path'} is empty: give the file to write, "
            f"e.g. {key or 'path'}=out/render{suffix}"
        )
    named = f"{key}={path}" if key else str(path)
    try:
        return _check(Path(path).expanduser(), named, suffix)
    except OutputPathError:
        raise
    except OSError as exc:  # stat refused: a name too long, a directory we may not search
        raise _os_error(named, exc) from exc


def _check(target: Path, named: str, suffix: str) -> Path:
    if target.is_dir():
        raise OutputPathError(
            f"{named} is a directory; give a file inside it, e.g. {target / 'render'}{suffix}"
        )
    if target.exists() and not target.is_file():
        raise OutputPathError(f"{named} exists and is not a regular file; give a file path")
    if target.suffix.lower() != suffix.lower():
        raise OutputPathError(f"{named} must end in {suffix} (the file written is {suffix})")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{named}: {ancestor} is a file, so no directory can be made there; choose another path"
        )
    try:  # a real write, as the writer will make it (access() ignores what root may not do)
        discard_temp(temp_beside(ancestor / target.name, ".probe"))
    except OSError as exc:
        raise _os_error(f"{named}: cannot write in {ancestor}", exc) from exc
    return target


def start_error(path: Path, exc: OSError, *, what: str) -> OutputPathError:
    """The error for a writer that could not even create its temporary file beside ``path``:
    :func:`check_output_path`'s clear reason (a parent that is a file, ...) when it finds one,
    else :func:`write_error`."""
    try:
        check_output_path(path, suffix=path.suffix, key=None)
    except OutputPathError as clear:
        return clear
    return write_error(path, exc, what=what)
