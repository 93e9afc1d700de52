"""How entry points report errors: one shape, one set of exit codes.

Every command-line entry point (``avatar-render``, ``python -m evals.score``, ``evals.run``,
``evals.check_clip``) and the service report a failure the same way:

- bad input or configuration (:func:`anticipated`): one line ``error: <Class>: <message>`` on
  stderr, exit code 2;
- a bug: the traceback, exit code 1;
- a stop by SIGTERM / SIGINT (:class:`~avatar.errors.Terminated`, ``KeyboardInterrupt``):
  ``error: stopped by SIGTERM; partial output removed``, exit code 128 + the signal number.
"""

from __future__ import annotations

import signal
import sys
import traceback

from hydra.errors import HydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

from avatar.errors import AvatarError, Terminated

__all__ = ["anticipated", "one_line", "report"]


def anticipated(error: BaseException) -> BaseException | None:
    """The error to report in one line if ``error`` is bad input or configuration, else None.

    Anticipated: :class:`AvatarError`; Hydra composition and override errors; OmegaConf errors
    (a missing key, a failed interpolation); an instantiation error caused by an AvatarError
    (which is reported itself), a wrong argument (TypeError) or a target that does not exist.
    Anything else is a bug.
    """
    if isinstance(error, AvatarError):
        return error
    if isinstance(error, InstantiationException):
        cause = error.__cause__
        if isinstance(cause, AvatarError):
            return cause
        ok = cause is None or isinstance(cause, TypeError | ImportError | OmegaConfBaseException)
        return error if ok else None
    if isinstance(error, HydraException | OmegaConfBaseException):
        return error
    return None


def one_line(error: BaseException) -> str:
    """``<Class>: <message>`` on one line; Hydra's errors get their cause's first line."""
    text = " ".join(str(error).split())
    cause = error.__cause__
    if isinstance(error, HydraException) and isinstance(cause, OmegaConfBaseException):
        text += f" ({str(cause).strip().splitlines()[0]})"
    return f"{type(error).__name__}: {text}"


def report(error: BaseException | None) -> int:
    """Print ``error`` on stderr as the exit codes of this module say; return the exit code."""
    if error is None:
        return 0
    if isinstance(error, Terminated | KeyboardInterrupt):
        signum = error.signum if isinstance(error, Terminated) else int(signal.SIGINT)
        name = signal.Signals(signum).name
        sys.stderr.write(f"error: stopped by {name}; partial output removed\n")
        return 128 + signum
    shown = anticipated(error)
    if shown is not None:
        sys.stderr.write(f"error: {one_line(shown)}\n")
        return 2
    traceback.print_exception(error)
    return 1
