"""What an entry point prints where: native library chatter dropped, log levels split by stream.

MediaPipe (absl), TensorFlow Lite and the like write straight to file descriptor 2 from C++,
past Python's ``logging``: about eight lines a run (``W0000 ... inference_feedback_manager.cc``,
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, ``WARNING: Logging before
InitGoogle() is written to STDERR``). No environment variable silences them in MediaPipe 1.2.2
(``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL`` and ``ABSL_MIN_LOG_LEVEL`` were tried), so
:func:`quiet_native_logs` puts a pipe on descriptor 2 for the duration of a command and forwards
every line except those INFO/WARNING lines; native errors, Python tracebacks and our own logs
pass. Entry points (``avatar-render``; the evals CLIs may do the same) wrap their work in it.

The logging filter :class:`MaxLevelFilter` lets Hydra's ``job_logging`` send progress (INFO) to
stdout and warnings and errors to stderr (``configs/render.yaml``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["NOISE", "MaxLevelFilter", "NativeStderrFilter", "quiet_native_logs"]

NOISE = re.compile(
    rb"[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] "  # absl/glog INFO and WARNING
    rb"|WARNING: Logging before InitGoogle\(\)"  # absl, before its first line
    rb"|INFO: "  # TensorFlow Lite's minimal logger ("Created TensorFlow Lite XNNPACK ...")
)
"""The start of a native log line that is dropped unless verbose (ERROR and FATAL lines pass)."""


class MaxLevelFilter(logging.Filter):
    """Pass records below ``level`` only (so a stdout handler leaves warnings to stderr).

    Args:
        level: the first level not passed, a name (``"WARNING"``) or a number.
    """

    def __init__(self, level: str | int) -> None:
        super().__init__()
        self.level = logging.getLevelName(level) if isinstance(level, str) else int(level)

    def filter(self, record: logging.LogRecord) -> bool:
        """True for records below the level."""
        return record.levelno < self.level


class NativeStderrFilter:
    """Descriptor 2 through a pipe, whose lines a thread forwards to the real stderr unless they
    match :data:`NOISE` (set ``verbose`` to forward everything).

    Lines are judged by their start: a native logger writes each line in one ``write``, so its
    prefix arrives whole, and text without a newline yet (a progress bar) is forwarded at once.
    """

    def __init__(self, *, verbose: bool = False) -> None:
        self.verbose = verbose
        self.dropped = 0
        self._saved: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None
        self._faulthandler = False

    def start(self) -> None:
        """Redirect descriptor 2 into the pipe and start forwarding."""
        sys.stderr.flush()
        try:
            self._saved = os.dup(2)
        except OSError:  # no stderr at all (a daemon): nothing to filter
            return
        self._read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        if not faulthandler.is_enabled():  # a crash's traceback goes to the real stderr
            faulthandler.enable(file=self._saved)
            self._faulthandler = True
        self._thread = threading.Thread(target=self._forward, name="stderr-filter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Put the real stderr back on descriptor 2, after forwarding what is in the pipe."""
        if self._saved is None:
            return
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        if self._faulthandler:
            faulthandler.disable()
            self._faulthandler = False
        os.dup2(self._saved, 2)  # the pipe's last writer is gone: the thread reads to its end
        assert self._thread is not None and self._read is not None
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():  # else a child process holds the pipe: leave both
            os.close(self._read)  # descriptors to the daemon thread rather than have it write
            os.close(self._saved)  # into whatever file reuses the number
        self._saved = self._read = self._thread = None

    def _forward(self) -> None:
        assert self._read is not None and self._saved is not None
        read, out = self._read, self._saved
        at_line_start, dropping = True, False
        while chunk := _read(read):
            keep = bytearray()
            for piece in chunk.splitlines(keepends=True):
                if at_line_start:
                    dropping = not self.verbose and NOISE.match(piece) is not None
                    self.dropped += int(dropping)
                if not dropping:
                    keep += piece
                at_line_start = piece.endswith(b"\n")
            _write_all(out, bytes(keep))


def _read(fd: int) -> bytes:
    """The next bytes from the pipe; empty at its end (or if it broke)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` whole; a closed or broken stderr drops it (nothing else to do)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError:
            return


@contextlib.contextmanager
def quiet_native_logs(*, verbose: bool = False) -> Iterator[NativeStderrFilter]:
    """Drop native INFO/WARNING log lines from stderr inside the block (see the module).

    Args:
        verbose: forward every line (can also be switched on the yielded filter later, once a
            config has been read).

    Yields:
        The filter; its ``dropped`` counts the lines dropped.
    """
    native = NativeStderrFilter(verbose=verbose)
    native.start()
    try:
        yield native
    finally:
        native.stop()
