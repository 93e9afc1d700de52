"""Exceptions the workbench raises for bad input: each names the problem and the thing at fault."""

from __future__ import annotations


class AvatarError(Exception):
    """Base class of every error the workbench raises on purpose."""


class CompanionSpecError(AvatarError, ValueError):
    """A companion spec (YAML or arguments) is malformed: missing field, no images, bad path."""


class ImageReadError(AvatarError, ValueError):
    """An image file cannot be read or decoded."""


class FaceNotFoundError(AvatarError, ValueError):
    """No usable face was found in any of a companion's images."""


class FaceTooSmallError(FaceNotFoundError):
    """A face was found but is too small to animate at the requested render size."""


class TextInputError(AvatarError, ValueError):
    """Text for speech is empty, too long or has nothing speakable."""


class AudioFormatError(AvatarError, ValueError):
    """Audio cannot be read, has an unsupported layout or rate, or is silent where speech is due."""


class MotionTrackError(AvatarError, ValueError):
    """A motion track is inconsistent (unknown channel, wrong shape, bad fps)."""


class WeightsMissingError(AvatarError, FileNotFoundError):
    """A model file the workbench needs is not installed or not in the weights directory."""


class VideoFormatError(AvatarError, ValueError):
    """A video frame or file is malformed: bad frame shape or dtype, no video stream, unreadable."""


class ConfigValueError(AvatarError, ValueError):
    """A configuration or API value is out of range or unknown (names the key and the value)."""


class Cancelled(Exception):
    """A long call was stopped through its :class:`~avatar.cancel.CancelToken` (the client left).

    Not an :class:`AvatarError`: nothing was wrong with the input.
    """


class OutputPathError(AvatarError, OSError):
    """An output file cannot be written there: empty or wrong path, a directory, an unwritable or
    read-only place, or the disk filled up while writing (the message names the path and why)."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM, SIGINT) during a long call; partial outputs are
    removed as the exception unwinds. Not an :class:`AvatarError`: nothing was wrong with the input.

    Attributes:
        signum: the signal received.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")
