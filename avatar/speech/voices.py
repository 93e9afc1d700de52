"""Voices: the named TTS voices a companion can speak with (``configs/voices/``), and the default.

Built by Hydra from ``configs/voices/default.yaml``; a companion's ``voice:`` names one of its
keys. Construction is cheap (each backend loads its model on first use), and the voices it hands
out are shared: every :class:`~avatar.speech.tts.TextToSpeech` here may be called from many
threads at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from avatar.errors import ConfigValueError
from avatar.speech.tts import TextToSpeech

__all__ = ["Voices"]


class Voices:
    """A registry of voices by name, with a default.

    Args:
        voices: voice name (the key a companion's ``voice:`` uses) -> backend.
        default: the name used when none is given; one of ``voices``.

    Raises:
        ConfigValueError: no voices, ``default`` is not among them, or an entry is not a
            :class:`~avatar.speech.tts.TextToSpeech`.

    >>> class Silent:
    ...     name, sample_rate = "silent", 16000
    ...     def settings(self): return {}
    ...     def synthesize(self, text): raise NotImplementedError
    >>> voices = Voices(voices={"a": Silent(), "b": Silent()}, default="b")
    >>> voices.names, voices.get(None) is voices.get("b")
    (['a', 'b'], True)
    """

    def __init__(self, *, voices: Mapping[str, TextToSpeech], default: str) -> None:
        # Hydra passes a DictConfig holding the built objects; keep a plain dict in config order.
        self._voices: dict[str, TextToSpeech] = {str(k): v for k, v in voices.items()}
        if not self._voices:
            raise ConfigValueError("voices: need at least one voice")
        for key, tts in self._voices.items():
            if not isinstance(tts, TextToSpeech):
                raise ConfigValueError(
                    f"voices.{key}: {type(tts).__name__} is not a TextToSpeech "
                    "(needs name, sample_rate, settings() and synthesize())"
                )
        if default not in self._voices:
            raise ConfigValueError(
                f"voices.default: {default!r} is not a voice; known: {', '.join(self._voices)}"
            )
        self.default = default

    @property
    def names(self) -> list[str]:
        """The voice names, in config order."""
        return list(self._voices)

    def get(self, name: str | None) -> TextToSpeech:
        """The voice called ``name``; None gives :attr:`default`.

        Raises:
            ConfigValueError: ``name`` is not a known voice (the message lists the known ones).
        """
        key = self.default if name is None else name
        try:
            return self._voices[key]
        except KeyError:
            raise ConfigValueError(
                f"unknown voice {name!r}; known voices: {', '.join(self._voices)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._voices

    def __len__(self) -> int:
        return len(self._voices)

    def __repr__(self) -> str:
        return f"Voices({', '.join(self._voices)}; default={self.default!r})"
