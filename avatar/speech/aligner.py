"""PocketsphinxAligner: any speech audio -> ARPAbet PhonemeTimeline, offline (pocketsphinx 5).

Two modes on pocketsphinx's bundled en-US model (16 kHz, 10 ms frames): forced alignment of a
known transcript (words from CMUdict, then a second pass for phone durations) and phone
recognition with the bundled phonetic language model (``allphone``) when no transcript exists.
pocketsphinx 5 has no letter-to-sound rules, so transcript words missing from CMUdict are an
error that names them.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import TYPE_CHECKING

import numpy as np

from avatar.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, resample
from avatar.errors import AudioFormatError, AvatarError, TextInputError
from avatar.speech.loudness import active_rms_dbfs, normalize_loudness
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan

if TYPE_CHECKING:
    from pocketsphinx import Decoder

log = logging.getLogger(__name__)

MODEL_RATE = 16000
"""Sample rate of pocketsphinx's bundled en-US acoustic model, Hz."""
FRAME_S = 0.01
"""pocketsphinx frame step (``-frate 100``), seconds: every boundary is a multiple of it."""
MIN_SECONDS = 0.05
"""Shorter audio holds too few frames to decode."""
DECODE_DBFS = -20.0
"""Active-speech level the audio is normalised to before its conversion to int16 PCM."""
ARPABET_PHONES: frozenset[str] = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
    "Y Z ZH".split()
)
"""The model's 39 speech phones (CMUdict, no stress): a timeline holds these and SILENCE."""
PHONE_LM_WEIGHT = 2.0
"""Phone-LM weight of recognition; measured on hibari speech, phone error rate against the forced
alignment: 0.52 at pocketsphinx's 6.5, 0.44 at 4, 0.39 at 2 and at 1."""
LOUD_DB = 15.0
"""Recognised silence within this many dB of the speech level for >= 50 ms is relabelled."""
_EDGE = '"“”‘()[]{}<>,;:!?…*_—–'  # stripped from both ends of a transcript token
_TOKEN_SPLIT = re.compile(r"[\s—–/]+")
_NON_PHONES = ("<", "[", "+")  # <sil>, <s>, </s>, [NOISE], +SPN+: silence or noise, no mouth shape
_LOCK = threading.Lock()


# Feature state: pocketsphinx carries its cepstral-mean estimate from one utterance to the
# next, so the same audio would align differently depending on what was decoded before
# (measured: pause edges 50 ms apart). Every decode re-initialises the features first, and
# the mean is computed over the whole utterance ("batch"), which offline audio allows.


@functools.lru_cache(maxsize=1)
def _align_decoder() -> Decoder:
    """Decoder with the acoustic model and CMUdict, no language model (alignment only)."""
    from pocketsphinx import Decoder

    return Decoder(lm=None, samprate=MODEL_RATE, cmn="batch", loglevel="FATAL")


@functools.lru_cache(maxsize=1)
def _phone_decoder() -> Decoder:
    """Decoder searching context-independent phones under the bundled phone trigram model."""
    from pocketsphinx import Decoder, get_model_path

    lm = get_model_path("en-us/en-us-phone.lm.bin")
    decoder = Decoder(
        allphone=lm, lw=PHONE_LM_WEIGHT, lm=None, samprate=MODEL_RATE, cmn="batch", loglevel="FATAL"
    )
    return decoder


def _phoneme(name: str) -> str:
    """pocketsphinx phone or filler name -> ARPAbet without stress digit, or SILENCE."""
    return SILENCE if name.upper() == "SIL" or name.startswith(_NON_PHONES) else name.rstrip("012")


def build_timeline(
    phones: list[tuple[str, float, float]], duration: float, words: list[WordSpan] | None = None
) -> PhonemeTimeline:
    """Contiguous ARPAbet timeline over ``[0, duration]`` from decoder phones.

    Times are clamped to the audio, gaps and the edges become SILENCE (a gap under one frame
    widens the phone before it instead), adjacent silences merge and empty phones go.

    Args:
        phones: ``(phoneme, start, end)`` in time order, seconds; SILENCE for pauses.
        duration: length of the input audio, seconds.
        words: word spans (clamped to the audio like the phones).

    >>> t = build_timeline([("HH", 0.1, 0.2), ("_", 0.2, 0.3), ("AY", 0.3, 0.595)], 0.6)
    >>> [(p.phoneme, p.start, p.end) for p in t.phones]
    [('_', 0.0, 0.1), ('HH', 0.1, 0.2), ('_', 0.2, 0.3), ('AY', 0.3, 0.6)]
    """
    out: list[list] = []
    cursor = 0.0
    for ph, start, end in [*phones, (SILENCE, duration, duration)]:
        start, end = min(max(start, cursor), duration), min(end, duration)
        if start - cursor > 1e-9:  # a gap: silence, unless under a frame after a phone
            if out and (out[-1][0] == SILENCE or start - cursor < FRAME_S - 1e-9):
                out[-1][2] = start
            else:
                out.append([SILENCE, cursor, start])
        if out and out[-1][0] == SILENCE and ph == SILENCE:
            out[-1][2] = max(out[-1][2], end)
        elif end - start > 1e-9:
            out.append([ph, start, end])
        cursor = max(cursor, out[-1][2]) if out else cursor
    spans = [WordSpan(w.word, min(w.start, duration), min(w.end, duration)) for w in words or []]
    phones_out = [Phone(ph, a, b) for ph, a, b in out]
    return PhonemeTimeline(phones_out, spans, duration=duration, alphabet="arpabet")


class PocketsphinxAligner:
    """Phoneme timelines (ARPAbet) for speech audio, with or without its transcript.

    Input audio is float (full scale 1.0) or int16, mono ``(S,)`` or ``(S, C)`` with C <= 2, at
    8..192 kHz; it is downmixed, resampled to 16 kHz, normalised and decoded in one utterance.
    Output timelines cover ``[0, len(audio) / sample_rate]`` seconds with contiguous phones,
    pauses and noise as :data:`SILENCE`, boundaries on 10 ms frames; alphabet ``"arpabet"``
    (the 39 CMUdict phones, stress digits stripped).

    Accuracy, measured on hibari speech: forced-alignment boundaries sit a median 14 ms before
    acoustic voicing landmarks; at pauses, speech spans reach ~35 ms further out than the
    waveform's -45 dBFS edges (the features' +-3 frame context). Recognition finds the same
    pauses (median edge error 25 ms) with about 0.8 phones per true phone.

    Thread safety: pocketsphinx decoders are not thread-safe. The two decoders (alignment and
    phone recognition) are created once per process and shared by every instance, and all
    decoding is serialised by one process-wide lock, so concurrent calls are safe but do not run
    in parallel; use processes for parallel alignment.

    Args:
        max_seconds: longest accepted audio, seconds (decoding is one utterance in memory).
        min_rms_db: audio whose active-speech RMS level (:func:`active_rms_dbfs`) is below this,
            dBFS, counts as silence and is refused.
        sample_rate: rate the decoder runs at, Hz; the bundled model needs 16000.

    Raises:
        ValueError: ``max_seconds`` not positive or ``sample_rate`` not the model's rate.
    """

    def __init__(self, *, max_seconds: float, min_rms_db: float, sample_rate: int) -> None:
        if not max_seconds > MIN_SECONDS or sample_rate != MODEL_RATE:
            raise ValueError(
                f"PocketsphinxAligner: need max_seconds > {MIN_SECONDS} and sample_rate == "
                f"{MODEL_RATE} (the bundled model's rate); got {max_seconds=}, {sample_rate=}"
            )
        self.max_seconds, self.min_rms_db, self.sample_rate = max_seconds, min_rms_db, sample_rate

    def timeline(
        self, audio: np.ndarray, sample_rate: int, transcript: str | None = None
    ) -> PhonemeTimeline:
        """:meth:`align` when a non-blank transcript is given, else :meth:`recognize`."""
        if transcript is None or not transcript.strip():
            return self.recognize(audio, sample_rate)
        return self.align(audio, sample_rate, transcript)

    def align(self, audio: np.ndarray, sample_rate: int, transcript: str) -> PhonemeTimeline:
        """Force-align ``transcript`` to ``audio``: word spans and their ARPAbet phones.

        Word spans keep each token as written (split at spaces, dashes, slashes; hyphenated
        words not in CMUdict part by part); the decoder picks among alternative pronunciations
        and puts pauses between words where it hears them.

        Args:
            audio: ``(S,)`` or ``(S, C)``, C <= 2, float or int16.
            sample_rate: rate of ``audio``, Hz.
            transcript: the words spoken, plain English text (numbers spelled out).

        Returns:
            Timeline with phones and words over the audio's whole duration.

        Raises:
            AudioFormatError: see :meth:`recognize`.
            TextInputError: no words, or words missing from the dictionary (named).
            AvatarError: the decoder could not fit the transcript to the audio.
        """
        pcm, duration = self._prepare(audio, sample_rate)
        with _LOCK:
            decoder = _align_decoder()
            written, entries = _lookup(decoder, transcript)
            decoder.set_align_text(" ".join(entries))
            self._decode(decoder, pcm)
            if decoder.hyp() is None:
                raise AvatarError(
                    f"forced alignment failed: {len(entries)} words do not fit {duration:.2f} s "
                    "of audio (wrong transcript, or not speech)"
                )
            decoder.set_alignment()
            self._decode(decoder, pcm)
            aligned = [
                (w.name, w.start, w.duration, [(p.name, p.start, p.duration) for p in w])
                for w in decoder.get_alignment()
            ]
        phones, words = [], []
        spoken = [a for a in aligned if not a[0].startswith(_NON_PHONES)]
        heard = [a[0].split("(")[0] for a in spoken]
        if heard != entries:  # the search ended early: a partial path through the words
            first = written[min(len(heard), len(written) - 1)]
            raise AvatarError(
                f"forced alignment failed: only {len(heard)} of {len(entries)} words fit the "
                f"audio, missing from {first!r} on (audio cut short, or wrong transcript)"
            )
        by_name = iter(written)
        for name, start, length, word_phones in aligned:
            if not name.startswith(_NON_PHONES):
                words.append(WordSpan(next(by_name), start * FRAME_S, (start + length) * FRAME_S))
            for ph, a, n in word_phones:
                phones.append((_phoneme(ph), a * FRAME_S, (a + n) * FRAME_S))
        log.debug("aligned %d words, %d phones in %.2f s", len(words), len(phones), duration)
        return build_timeline(phones, duration, words)

    def recognize(self, audio: np.ndarray, sample_rate: int) -> PhonemeTimeline:
        """Phone recognition without a transcript: ARPAbet phones and pauses, no words.

        Args:
            audio: ``(S,)`` or ``(S, C)``, C <= 2, float or int16.
            sample_rate: rate of ``audio``, Hz.

        Returns:
            Timeline over the audio's whole duration; ``words`` is empty.

        Raises:
            AudioFormatError: empty, shorter than 50 ms, longer than ``max_seconds``, more than
                2 channels, not float/int16, NaN or infinite samples, rate outside
                8000..192000 Hz, or silent (below ``min_rms_db``).
        """
        pcm, duration = self._prepare(audio, sample_rate)
        with _LOCK:
            decoder = _phone_decoder()
            self._decode(decoder, pcm)
            segments = [(s.word, s.start_frame, s.end_frame) for s in decoder.seg() or []]
        # seg() frames are inclusive: a phone ends where the next frame starts.
        phones = [(_phoneme(w), a * FRAME_S, (b + 1) * FRAME_S) for w, a, b in segments]
        phones = _fill_loud_silences(phones, pcm)
        log.debug("recognised %d phones in %.2f s", len(phones), duration)
        return build_timeline(phones, duration)

    def _prepare(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
        """Validate, downmix, resample to 16 kHz, normalise: (int16 PCM (S,), duration s)."""
        audio, problem = np.asarray(audio), None
        seconds = audio.shape[0] / sample_rate if audio.ndim and sample_rate > 0 else 0.0
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            problem = f"sample rate {sample_rate} Hz is outside [8000, 192000]"
        elif audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[1] > 2):
            problem = f"need (S,) or (S, C) audio, time first, C <= 2 channels; got {audio.shape}"
        elif audio.dtype != np.int16 and not np.issubdtype(audio.dtype, np.floating):
            problem = f"audio must be float or int16, not {audio.dtype}"
        elif audio.shape[0] == 0:
            problem = "audio is empty"
        elif seconds < MIN_SECONDS:
            problem = f"{seconds * 1000:.0f} ms of audio is too short"
        elif seconds > self.max_seconds:
            problem = f"{seconds:.1f} s of audio is longer than max_seconds={self.max_seconds:g}"
        elif audio.dtype != np.int16 and not np.all(np.isfinite(audio)):
            problem = "audio holds NaN or infinite samples"
        if problem:
            raise AudioFormatError(f"aligner: {problem}")
        scale = 1 / 32768 if audio.dtype == np.int16 else 1.0
        mono = (audio.mean(axis=1) if audio.ndim == 2 else audio).astype(np.float32) * scale
        mono = resample(mono, sample_rate, self.sample_rate)
        level = active_rms_dbfs(mono, self.sample_rate)
        if level is None or level < self.min_rms_db:
            shown = "below -70" if level is None else f"{level:.1f}"
            raise AudioFormatError(
                f"aligner: audio is silent (speech at {shown} dBFS < min_rms_db={self.min_rms_db})"
            )
        mono = normalize_loudness(mono, self.sample_rate, target_dbfs=DECODE_DBFS)
        return np.round(np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2"), seconds

    @staticmethod
    def _decode(decoder: Decoder, pcm: np.ndarray) -> None:
        decoder.reinit_feat()
        try:
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
        except RuntimeError as e:  # pocketsphinx found no path (e.g. transcript vs audio)
            raise AvatarError(f"pocketsphinx could not decode this audio: {e}") from None


def _lookup(decoder: Decoder, transcript: str) -> tuple[list[str], list[str]]:
    """Transcript -> (words as written, CMUdict entries), one to one.

    Each token is tried with its apostrophes and final period (``"a.m."``, ``"'em"``), then
    bare, then (hyphenated) part by part.
    """
    written, entries, missing = [], [], []
    for token in _TOKEN_SPLIT.split(transcript.replace("’", "'")):
        token = token.strip(_EDGE)
        word = token.strip("'").rstrip(".") or token
        if not word.strip(".'-"):
            continue  # punctuation only
        found = next(
            (c.lower() for c in (token, token.rstrip("."), word) if decoder.lookup_word(c.lower())),
            None,
        )
        parts = [p for p in word.split("-") if p.strip("'")]
        if found is not None:
            written.append(word)
            entries.append(found)
        elif len(parts) > 1 and all(decoder.lookup_word(p.lower()) for p in parts):
            written.extend(parts)
            entries.extend(p.lower() for p in parts)
        else:
            missing.append(word)
    if missing:
        raise TextInputError(
            "words not in the pocketsphinx dictionary (CMUdict; pocketsphinx 5 has no letter-to-"
            f"sound fallback): {', '.join(map(repr, dict.fromkeys(missing)))}; spell them out"
        )
    if not entries:
        raise TextInputError(f"transcript has no words to align: {transcript[:40]!r}")
    return written, entries


def _fill_loud_silences(
    phones: list[tuple[str, float, float]], pcm: np.ndarray
) -> list[tuple[str, float, float]]:
    """Relabel voiced stretches of recognised silence as AH, the neutral vowel.

    The CI phone loop sometimes takes a weak phrase-final vowel for silence (measured: the
    schwa of "sofa," 150 ms at -20..-29 dBFS); a closed mouth over audible voice looks wrong.
    ``phones``: ``(phoneme, start, end)`` seconds; ``pcm``: the decoded int16 ``(S,)`` at 16 kHz.
    """
    n = MODEL_RATE // 100  # samples per 10 ms frame; rfft bins are 100 Hz apart
    frames = pcm[: len(pcm) // n * n].reshape(-1, n).astype(np.float64) / 32768.0
    # voiced energy only (100-1000 Hz): a fricative's hiss is not a dropped vowel
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)[:, 1:11]) ** 2
    voiced = spectrum.sum(axis=1) * 2 / (n * n * 0.375)  # mean square of the band, Hann-scaled
    loud = 10 * np.log10(voiced + 1e-12) > DECODE_DBFS - LOUD_DB
    out: list[tuple[str, float, float]] = []
    for ph, start, end in phones:
        fa, fb = round(start / FRAME_S), round(end / FRAME_S)
        runs = np.flatnonzero(np.diff(np.concatenate([[0], loud[fa:fb], [0]]).astype(int))) + fa
        for a, b in zip(runs[::2], runs[1::2], strict=True) if ph == SILENCE else ():
            if b - a >= 5:  # 50 ms
                out += [(SILENCE, start, a * FRAME_S), ("AH", a * FRAME_S, b * FRAME_S)]
                start = b * FRAME_S
        out.append((ph, start, end))
    return out
