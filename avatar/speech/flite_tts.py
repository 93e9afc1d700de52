"""FliteTTS: Debian's ``flite`` voices (kal, awb, rms, slt) with exact phone timings (``-psdur``).

``flite -psdur`` prints every phone's end time in seconds next to the wave it writes; flite's CMU
phone set is mapped to ARPAbet codes that :mod:`avatar.motion.visemes` covers, so the timeline is
the synthesiser's own (no forced alignment). Each call runs the ``flite`` binary in its own
temporary directory, so one object serves many threads at once.

espeak-ng is not used: its phone timings come only through the C callback of libespeak-ng
(``--pho`` needs MBROLA voices, which Debian's main archive does not ship here).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import unicodedata
import wave
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import AvatarError, ConfigValueError, TextInputError, WeightsMissingError
from avatar.speech.loudness import normalize_loudness
from avatar.speech.text import check_scripts, script_of, validate_text
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline
from avatar.speech.tts import Speech

__all__ = ["FLITE_TO_ARPABET", "FLITE_VOICES", "FliteTTS", "parse_psdur"]

log = logging.getLogger(__name__)

FLITE_VOICES: dict[str, int] = {
    "kal": 8000,
    "kal16": 16000,
    "awb": 16000,
    "awb_time": 16000,
    "rms": 16000,
    "slt": 16000,
}
"""The voices built into Debian's flite 2.2 (``flite -lv``) and the rate (Hz) each one writes.
flite silently falls back to its default voice for an unknown name, so names are checked here."""
_TIMEOUT_S = 120  # one call of the binary; the longest accepted text takes a few seconds
# Latin letters that do not decompose into an ASCII letter and accents, and the typographic
# punctuation flite reads like its ASCII form (a dash as a pause, 1⁄2 as "a half").
_TO_ASCII = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l"}
    | {"Ł": "L", "đ": "d", "Đ": "D", "ð": "th", "Ð": "Th", "þ": "th", "Þ": "Th", "ı": "i"}
    | dict.fromkeys("‘’‚‛′", "'")
    | dict.fromkeys("“”„‟″«»", '"')
    | dict.fromkeys("–—―", " -- ")
    | {"⁄": "/"}
)

FLITE_TO_ARPABET: dict[str, str] = {
    **{
        p: p.upper()
        for p in (
            "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th "
            "uh uw v w y z zh"
        ).split()
    },
    "ax": "AH",  # schwa
    "axr": "ER",
    "ix": "IH",
    "el": "L",
    "em": "M",
    "en": "N",
    "nx": "N",
    "dx": "DX",
    "pau": SILENCE,
    "h#": SILENCE,
    "brth": SILENCE,
    "ssil": SILENCE,
}
"""flite (CMU lexicon) phone -> ARPAbet code (or SILENCE); every value is viseme-covered."""


def parse_psdur(text: str, duration: float) -> PhonemeTimeline:
    """flite ``-psdur`` output (``"pau:0.220 dh:0.254 ..."``, phone end times in s) -> timeline.

    Phones are contiguous from 0; the last one is stretched or cut to ``duration`` (flite's
    final pause can differ from the wave length by a few ms), zero-length phones are dropped.

    Args:
        text: what ``flite -psdur`` printed on stdout.
        duration: length of the wave flite wrote, seconds.

    Returns:
        An ``"arpabet"`` timeline covering ``[0, duration]``.

    Raises:
        AvatarError: a phone has no ARPAbet mapping.

    >>> tl = parse_psdur("pau:0.2 hh:0.3 ax:0.35 pau:0.5", 0.52)
    >>> [(p.phoneme, round(p.end, 2)) for p in tl.phones]
    [('_', 0.2), ('HH', 0.3), ('AH', 0.35), ('_', 0.52)]
    """
    phones: list[Phone] = []
    start = 0.0
    items = [tok.rsplit(":", 1) for tok in text.split() if ":" in tok]
    for i, (name, end_s) in enumerate(items):
        if name not in FLITE_TO_ARPABET:
            raise AvatarError(f"flite phone {name!r} has no ARPAbet mapping")
        end = duration if i == len(items) - 1 else min(float(end_s), duration)
        if end <= start + 1e-6:
            continue
        code = FLITE_TO_ARPABET[name]
        if phones and code == SILENCE and phones[-1].phoneme == SILENCE:
            phones[-1] = Phone(SILENCE, phones[-1].start, end)
        else:
            phones.append(Phone(code, start, end))
        start = end
    if start < duration - 1e-6:
        phones.append(Phone(SILENCE, start, duration))
    return PhonemeTimeline(phones=phones, duration=duration, alphabet="arpabet")


def ascii_text(text: str) -> str:
    """Text as flite can read it: ASCII only.

    flite reads bytes, not Unicode: ``"café"`` becomes ``"caf"`` and ``"señor"`` something
    else entirely. Compatibility forms become ASCII (NFKC: ``ﬁ``, full-width letters,
    ``…``), Latin letters lose their accents (``é`` -> ``e``, ``ß`` -> ``ss``), typographic
    quotes and dashes become ASCII ones, and every other non-ASCII character becomes a space
    (see :func:`check_scripts` for the warning).

    >>> ascii_text("Café naïve, señor Øre… don’t — ½ 你好")
    "Cafe naive, senor Ore... don't  --  1/2   "
    """
    out = []
    for ch in unicodedata.normalize("NFKC", text).translate(_TO_ASCII):
        if script_of(ch) == "Latin":
            ch = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii()) or " "
        out.append(ch if ch.isascii() else " ")
    return "".join(out)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """flite's output (mono 16-bit PCM WAV) -> float32 ``(S,)`` in [-1, 1) and its rate.

    The standard library reads it (the speech stage does not depend on :mod:`avatar.media`);
    the samples equal :func:`avatar.media.read_audio`'s (``int16 / 2**15``).
    """
    with wave.open(str(path), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        frames = f.readframes(f.getnframes())
    if channels != 1 or width != 2:
        raise AvatarError(f"flite wrote {channels} channels of {8 * width}-bit audio, not mono s16")
    return (np.frombuffer(frames, "<i2") / 32768.0).astype(np.float32), rate


class FliteTTS:
    """Text to :class:`Speech` with one of flite's built-in voices (``apt-get install flite``).

    Text is validated (:func:`avatar.speech.text.validate_text`), made ASCII (:func:`ascii_text`:
    accents dropped; other scripts and emoji dropped with a warning naming them), spoken by the
    ``flite`` binary and loudness-normalised. Audio: float32 ``(S,)`` at :attr:`sample_rate`
    (8 kHz for ``kal``, 16 kHz for the others); the timeline (alphabet ``"arpabet"``, no
    words) is flite's own.

    Args:
        name: voice id (e.g. ``flite-slt``): a corpus's voice label, part of :meth:`settings`.
        voice: flite voice, one of :data:`FLITE_VOICES` (``kal``, ``awb``, ``rms``, ``slt``, ...).
        target_dbfs: RMS level of the active speech frames after normalisation, dBFS.
        max_chars: longest accepted text in characters.

    Raises:
        ConfigValueError: ``voice`` is not one of flite's built-in voices, or ``max_chars < 1``.
    """

    def __init__(self, *, name: str, voice: str, target_dbfs: float, max_chars: int) -> None:
        if voice not in FLITE_VOICES:
            raise ConfigValueError(
                f"flite voice {voice!r} is not built into flite; known: {', '.join(FLITE_VOICES)}"
            )
        if max_chars < 1:
            raise ConfigValueError(f"FliteTTS {name!r}: need max_chars >= 1, got {max_chars}")
        self.name, self.voice = name, voice
        self.target_dbfs, self.max_chars = target_dbfs, max_chars
        self.sample_rate: int = FLITE_VOICES[voice]

    def __repr__(self) -> str:
        return f"FliteTTS(name={self.name!r}, voice={self.voice!r})"

    def settings(self) -> dict[str, Any]:
        """What the audio depends on (hashed into corpus cache keys); ``max_chars`` only rejects."""
        return {"kind": "flite", "name": self.name, "voice": self.voice, "dbfs": self.target_dbfs}

    def synthesize(self, text: str) -> Speech:
        """Speak ``text``; see the class docstring.

        Raises:
            TextInputError: empty, too long, or nothing speakable (no Latin letter or digit,
                or flite says no phone).
            WeightsMissingError: the ``flite`` binary is not installed.
            AvatarError: flite failed or wrote audio at an unexpected rate.
        """
        text = validate_text(text, max_chars=self.max_chars)
        check_scripts(text, voice=self.name, speaks=lambda ch: not ascii_text(ch).isspace())
        audio, rate, timeline = self._run(ascii_text(text))
        if all(p.phoneme == SILENCE for p in timeline.phones):
            raise TextInputError(f"flite spoke no phone for the text: {text[:40]!r}")
        audio = normalize_loudness(audio, rate, target_dbfs=self.target_dbfs).astype(np.float32)
        log.debug("flite %s: %.2f s of audio", self.voice, timeline.duration)
        return Speech(audio=audio, sample_rate=rate, timeline=timeline, text=text)

    def _run(self, text: str) -> tuple[np.ndarray, int, PhonemeTimeline]:
        """One call of the binary: raw float32 audio, its rate and the parsed timeline."""
        exe = shutil.which("flite")
        if exe is None:
            raise WeightsMissingError(
                "the flite binary is not installed (it is the engine of the flite-* voices); "
                "install it with `apt-get install flite` (Debian/Ubuntu) or from cmuflite.org"
            )
        with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
            wav = Path(tmp) / "out.wav"
            run = subprocess.run(
                [exe, "-voice", self.voice, "-t", text, "-o", str(wav), "-psdur"],
                capture_output=True,
                text=True,
                check=False,
                timeout=_TIMEOUT_S,
            )
            if run.returncode != 0 or not wav.is_file():
                raise AvatarError(f"flite -voice {self.voice} failed: {run.stderr.strip()[:200]}")
            audio, rate = _read_wav(wav)
        if rate != self.sample_rate:
            raise AvatarError(f"flite -voice {self.voice} wrote {rate} Hz, not {self.sample_rate}")
        return audio, rate, parse_psdur(run.stdout, len(audio) / rate)
