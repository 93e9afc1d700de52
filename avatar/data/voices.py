"""Corpus voices: text -> (audio, rate, PhonemeTimeline with exact phone timings).

* :class:`HibariVoice`: the bundled hibari voice (misaki phonemes from its duration tensor),
  at a chosen speed and noise seed.
* :class:`FliteVoice`: Debian's ``flite`` voices (kal, awb, rms, slt). ``-psdur`` prints every
  phone's end time in seconds; flite's CMU phone set is mapped to ARPAbet codes that
  :mod:`avatar.motion.visemes` covers.

espeak-ng is not used: its phone timings come only through the C callback of libespeak-ng
(``--pho`` needs MBROLA voices, which Debian's main archive does not ship here).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.media import read_audio
from avatar.speech.loudness import normalize_loudness
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline

log = logging.getLogger(__name__)

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


class HibariVoice:
    """hibari's bundled voice at one speed and seed (see :class:`avatar.speech.HibariTTS`).

    Args:
        name: voice id in the corpus (e.g. ``hibari-1.10``).
        voice: hibari voice (``heart``: the only bundled one).
        speed: speaking rate (1.0 natural).
        seed: noise seed of the vocoder.
        target_dbfs: loudness of the active speech, dBFS.
        sentence_pause_s: silence between sentences, seconds.
        max_chars: longest text, characters.
        threads: onnxruntime threads.
        timeline_shift_s: move hibari's timeline by this much, seconds (``HibariTTS``'s: -0.035
            puts it on the audio; 0, the audio-to-motion corpus's setting, keeps it as it comes).
    """

    def __init__(
        self,
        *,
        name: str,
        voice: str,
        speed: float,
        seed: int,
        target_dbfs: float,
        sentence_pause_s: float,
        max_chars: int,
        threads: int,
        timeline_shift_s: float = 0.0,
    ) -> None:
        self.name = name
        self.timeline_shift_s = float(timeline_shift_s)
        self._kwargs = dict(
            voice=voice,
            speed=speed,
            seed=seed,
            target_dbfs=target_dbfs,
            sentence_pause_s=sentence_pause_s,
            max_chars=max_chars,
            threads=threads,
        )
        self._tts = None

    def settings(self) -> dict:
        """What the audio depends on (hashed into the corpus cache key)."""
        out = {"kind": "hibari", "name": self.name, **self._kwargs, "threads": None}
        if self.timeline_shift_s:  # absent when 0: earlier corpora keep their keys
            out["timeline_shift_s"] = self.timeline_shift_s
        return out

    def speak(self, text: str) -> tuple[np.ndarray, int, PhonemeTimeline]:
        """``text`` -> float32 ``(S,)`` audio, its rate (24 kHz) and exact timeline (misaki)."""
        if self._tts is None:
            from avatar.speech.hibari_tts import HibariTTS

            self._tts = HibariTTS(**self._kwargs, timeline_shift_s=self.timeline_shift_s)
        speech = self._tts.synthesize(text)
        return speech.audio, speech.sample_rate, speech.timeline


def parse_psdur(text: str, duration: float) -> PhonemeTimeline:
    """flite ``-psdur`` output (``"pau:0.220 dh:0.254 ..."``, phone end times in s) -> timeline.

    Phones are contiguous from 0; the last one is stretched or cut to ``duration`` (flite's
    final pause can differ from the wave length by a few ms), zero-length phones are dropped.

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


class FliteVoice:
    """One Debian flite voice (``apt-get install flite``).

    Args:
        name: voice id in the corpus (e.g. ``flite-slt``).
        voice: flite voice (``kal`` 8 kHz; ``awb``, ``rms``, ``slt``, ``kal16`` 16 kHz).
        target_dbfs: loudness of the active speech after normalisation, dBFS.
    """

    def __init__(self, *, name: str, voice: str, target_dbfs: float) -> None:
        self.name, self.voice, self.target_dbfs = name, voice, target_dbfs

    def settings(self) -> dict:
        """What the audio depends on (hashed into the corpus cache key)."""
        return {"kind": "flite", "name": self.name, "voice": self.voice, "dbfs": self.target_dbfs}

    def speak(self, text: str) -> tuple[np.ndarray, int, PhonemeTimeline]:
        """``text`` -> float32 ``(S,)`` audio, its rate and the flite timeline (ARPAbet)."""
        exe = shutil.which("flite")
        if exe is None:
            raise AvatarError("flite is not installed (Debian: apt-get install flite)")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "out.wav"
            run = subprocess.run(
                [exe, "-voice", self.voice, "-t", text, "-o", str(wav), "-psdur"],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if run.returncode != 0 or not wav.is_file():
                raise AvatarError(f"flite -voice {self.voice} failed: {run.stderr.strip()[:200]}")
            audio, rate = read_audio(wav)
        timeline = parse_psdur(run.stdout, len(audio) / rate)
        audio = normalize_loudness(audio, rate, target_dbfs=self.target_dbfs)
        return audio.astype(np.float32), rate, timeline
