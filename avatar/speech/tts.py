"""Speech (audio + PhonemeTimeline) and the TextToSpeech protocol every TTS backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline


@dataclass
class Speech:
    """Synthesized speech with the phoneme timings that produced it.

    Attributes:
        audio: mono waveform, float32, shape ``(S,)``, nominally in ``[-1, 1]``.
        sample_rate: samples per second of ``audio`` (Hz).
        timeline: phones (and words where known) covering ``[0, duration]`` seconds.
        text: the text that was spoken, after validation (stripped).

    >>> timeline = PhonemeTimeline.from_durations(["_"], [0.5])
    >>> s = Speech(np.zeros(12000, np.float32), 24000, timeline, "")
    >>> s.duration
    0.5
    """

    audio: np.ndarray
    sample_rate: int
    timeline: PhonemeTimeline
    text: str

    @property
    def duration(self) -> float:
        """Length of ``audio`` in seconds."""
        return len(self.audio) / self.sample_rate


@runtime_checkable
class TextToSpeech(Protocol):
    """A TTS backend: text in, :class:`Speech` with a phoneme timeline out.

    Every voice implements it (:class:`avatar.speech.hibari_tts.HibariTTS`,
    :class:`avatar.speech.flite_tts.FliteTTS`): the pipeline speaks with it, the training corpora
    generate with it, :class:`avatar.speech.voices.Voices` selects among them by name.
    Implementations take their settings as keyword-only constructor arguments (from YAML), load
    models lazily (construction is cheap) and let many threads call :meth:`synthesize` on one
    object at once, each call giving the same audio for the same text.

    Attributes:
        name: voice id (``hibari-heart``, ``flite-slt``): labels corpus utterances.
        sample_rate: rate of the audio ``synthesize`` returns (Hz).
    """

    name: str
    sample_rate: int

    def settings(self) -> dict[str, Any]:
        """Everything the audio depends on, JSON-serialisable (hashed into corpus cache keys)."""
        ...

    def synthesize(self, text: str) -> Speech:
        """Speak ``text``.

        Args:
            text: the text to speak.

        Returns:
            Mono float32 audio at ``sample_rate`` and its timeline.

        Raises:
            avatar.errors.TextInputError: the text is empty, too long or unspeakable.
        """
        ...


def silence_speech(seconds: float, sample_rate: int = 24000) -> Speech:
    """Speech that says nothing for ``seconds`` (an idle or listening clip).

    >>> silence_speech(0.5, 16000).timeline.phones[0].phoneme, silence_speech(0.5).duration
    ('_', 0.5)
    """
    n = int(round(seconds * sample_rate))
    timeline = PhonemeTimeline([Phone(SILENCE, 0.0, n / sample_rate)], duration=n / sample_rate)
    return Speech(np.zeros(n, np.float32), sample_rate, timeline, "")
