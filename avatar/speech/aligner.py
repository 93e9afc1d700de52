"""PocketsphinxAligner: any speech audio -> ARPAbet PhonemeTimeline, offline (pocketsphinx 5).

Two modes on pocketsphinx's bundled en-US model (16 kHz, 10 ms frames): forced alignment of a
known transcript (words from CMUdict, then a second pass for phone durations) and phone
recognition with the bundled phonetic language model (``allphone``) when no transcript exists.
pocketsphinx 5 has no letter-to-sound rules, so transcript words missing from CMUdict are an
error that names them. :meth:`PocketsphinxAligner.timeline` judges how well a transcript fits
(:mod:`avatar.speech.alignment_fit`) and falls back to recognition, with a warning, when it
does not.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
from typing import TYPE_CHECKING

import numpy as np

from avatar.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, resample
from avatar.errors import AudioFormatError, AvatarError, ConfigValueError, TextInputError
from avatar.speech.alignment_fit import (
    AlignmentFit,
    fill_voiced_silences,
    measure_fit,
    voiced_frames,
)
from avatar.speech.loudness import active_rms_dbfs, normalize_loudness
from avatar.speech.phone_segments import FRAME_S, NON_PHONES, build_timeline, phoneme_of
from avatar.speech.timeline import SILENCE, PhonemeTimeline, WordSpan
from avatar.speech.transcript import lookup_words

if TYPE_CHECKING:
    from pocketsphinx import Decoder

log = logging.getLogger(__name__)

MODEL_RATE = 16000
"""Sample rate of pocketsphinx's bundled en-US acoustic model, Hz."""
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
"""Voiced: 100-1000 Hz energy within this many dB of the speech level (recognised silence that
is voiced for >= 50 ms is relabelled; the fit figures count voiced frames)."""
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


def _voiced(pcm: np.ndarray) -> np.ndarray:
    """Voiced 10 ms frames of the decoded int16 PCM ``(S,)``: bool ``(S // 160,)``."""
    return voiced_frames(pcm, level_dbfs=DECODE_DBFS - LOUD_DB)


class PocketsphinxAligner:
    """Phoneme timelines (ARPAbet) for speech audio, with or without its transcript.

    Input audio is float (full scale 1.0) or int16, mono ``(S,)`` or ``(S, C)`` with C <= 2, at
    8..192 kHz; it is downmixed, resampled to 16 kHz, normalised and decoded in one utterance.
    Output timelines cover ``[0, len(audio) / sample_rate]`` seconds with contiguous phones,
    pauses and noise as :data:`SILENCE`, boundaries on 10 ms frames; alphabet ``"arpabet"``
    (the 39 CMUdict phones, stress digits stripped); :attr:`PhonemeTimeline.source` says
    whether forced alignment or phone recognition made them.

    Accuracy, measured on hibari speech: forced-alignment boundaries sit a median 14 ms before
    acoustic voicing landmarks; at pauses, speech spans reach ~35 ms further out than the
    waveform's -45 dBFS edges (the features' +-3 frame context). Recognition finds the same
    pauses (median edge error 25 ms) with about 0.8 phones per true phone.

    Transcript fit (:meth:`timeline`): a transcript that is not what the audio says can still
    align (``"yes"`` over 7 s of speech: three phones and silence). The alignment is judged by
    the figures of :class:`~avatar.speech.alignment_fit.AlignmentFit`, against thresholds
    calibrated on flite, hibari and recorded human speech with right and wrong transcripts
    (``tests/avatar/speech/test_speech_aligner_fit.py``).

    Thread safety: pocketsphinx decoders are not thread-safe. The two decoders (alignment and
    phone recognition) are created once per process and shared by every instance, and all
    decoding is serialised by one process-wide lock, so concurrent calls are safe but do not run
    in parallel; use processes for parallel alignment.

    Args:
        max_seconds: longest accepted audio, seconds (decoding is one utterance in memory).
        min_rms_db: audio whose active-speech RMS level (:func:`active_rms_dbfs`) is below this,
            dBFS, counts as silence and is refused.
        sample_rate: rate the decoder runs at, Hz; the bundled model needs 16000.
        min_fit_score: lowest accepted alignment score against free phone recognition, per
            voiced frame (decoder units, ~0.1 nat; <= 0).
        min_phone_rate: fewest aligned speech phones per voiced second.
        max_phone_rate: most aligned speech phones per voiced second.
        min_coverage: smallest share of voiced frames inside aligned speech phones, in [0, 1].

    Raises:
        ConfigValueError: a setting out of its range (the message names the key).
    """

    def __init__(
        self,
        *,
        max_seconds: float,
        min_rms_db: float,
        sample_rate: int,
        min_fit_score: float,
        min_phone_rate: float,
        max_phone_rate: float,
        min_coverage: float,
    ) -> None:
        checks = {
            f"max_seconds > {MIN_SECONDS}": max_seconds > MIN_SECONDS,
            f"sample_rate == {MODEL_RATE} (the bundled model's rate)": sample_rate == MODEL_RATE,
            "min_fit_score <= 0": min_fit_score <= 0,
            "0 <= min_phone_rate < max_phone_rate": 0 <= min_phone_rate < max_phone_rate,
            "0 <= min_coverage <= 1": 0 <= min_coverage <= 1,
            "min_rms_db finite": math.isfinite(min_rms_db),
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            got = dict(max_seconds=max_seconds, sample_rate=sample_rate, min_rms_db=min_rms_db)
            got |= dict(min_fit_score=min_fit_score, min_coverage=min_coverage)
            got |= dict(min_phone_rate=min_phone_rate, max_phone_rate=max_phone_rate)
            raise ConfigValueError(
                f"aligner: need {'; '.join(failed)} (config keys aligner.*); got "
                + ", ".join(f"{k}={v}" for k, v in got.items())
            )
        self.max_seconds, self.min_rms_db, self.sample_rate = max_seconds, min_rms_db, sample_rate
        self.limits = dict(
            min_fit_score=float(min_fit_score),
            min_phone_rate=float(min_phone_rate),
            max_phone_rate=float(max_phone_rate),
            min_coverage=float(min_coverage),
        )

    def timeline(
        self, audio: np.ndarray, sample_rate: int, transcript: str | None = None
    ) -> PhonemeTimeline:
        """Forced alignment of a transcript that fits the audio, else phone recognition.

        Without a (non-blank) transcript this is :meth:`recognize`. With one, both run; when the
        alignment fails or its :class:`AlignmentFit` breaks a threshold, one WARNING gives the
        figures and the recognition is returned, with source ``"recognition-fallback"``.

        Raises:
            AudioFormatError: see :meth:`recognize`.
            TextInputError: no words, or words missing from the dictionary (named).
        """
        if transcript is None or not transcript.strip():
            return self.recognize(audio, sample_rate)
        pcm, duration = self._prepare(audio, sample_rate)
        failure = ""
        with _LOCK:
            try:
                aligned, entries = self._align_pcm(pcm, duration, transcript)
            except TextInputError:  # a spelling problem: the fix is in the transcript
                raise
            except AvatarError as e:
                failure = str(e)
            recognized, recognition_score = self._recognize_pcm(pcm, duration)
        if not failure:
            fit = measure_fit(entries, recognition_score, _voiced(pcm))
            problems = fit.problems(**self.limits)
            if not problems:
                log.debug("transcript fits the audio: %s", fit)
                return aligned
            failure = f"{'; '.join(problems)} ({fit})"
        log.warning(
            "the transcript does not fit the %.2f s of audio, so its phones come from phone "
            "recognition instead (no words): %s. Check that the transcript is what is said; the "
            "thresholds are the aligner.min_fit_score/min_phone_rate/max_phone_rate/min_coverage "
            "settings",
            duration,
            failure,
        )
        return dataclasses.replace(recognized, source="recognition-fallback")

    def assess(self, audio: np.ndarray, sample_rate: int, transcript: str) -> AlignmentFit:
        """The figures :meth:`timeline` judges a transcript by (both decodes, no judgement).

        Raises:
            AudioFormatError, TextInputError, AvatarError: as :meth:`align`.
        """
        pcm, duration = self._prepare(audio, sample_rate)
        with _LOCK:
            _, recognition_score = self._recognize_pcm(pcm, duration)
            _, entries = self._align_pcm(pcm, duration, transcript)
        return measure_fit(entries, recognition_score, _voiced(pcm))

    def align(self, audio: np.ndarray, sample_rate: int, transcript: str) -> PhonemeTimeline:
        """Force-align ``transcript`` to ``audio``: word spans and their ARPAbet phones.

        Word spans keep each token as written (split at spaces, dashes, slashes; hyphenated
        words not in CMUdict part by part); the decoder picks among alternative pronunciations
        and puts pauses between words where it hears them. The fit is not judged here (see
        :meth:`timeline`).

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
            return self._align_pcm(pcm, duration, transcript)[0]

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
            return self._recognize_pcm(pcm, duration)[0]

    def _align_pcm(
        self, pcm: np.ndarray, duration: float, transcript: str
    ) -> tuple[PhonemeTimeline, list[tuple[bool, int, int, float]]]:
        """Forced alignment (under the lock): the timeline and, for :func:`measure_fit`, every
        aligned phone as ``(is_speech, start_frame, n_frames, acoustic_score)``."""
        decoder = _align_decoder()
        written, entries = lookup_words(decoder, transcript)
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
            (w.name, w.start, w.duration, [(p.name, p.start, p.duration, p.score) for p in w])
            for w in decoder.get_alignment()
        ]
        phones, words = [], []
        spoken = [a for a in aligned if not a[0].startswith(NON_PHONES)]
        heard = [a[0].split("(")[0] for a in spoken]
        if heard != entries:  # the search ended early: a partial path through the words
            first = written[min(len(heard), len(written) - 1)]
            raise AvatarError(
                f"forced alignment failed: only {len(heard)} of {len(entries)} words fit the "
                f"audio, missing from {first!r} on (audio cut short, or wrong transcript)"
            )
        by_name = iter(written)
        scored = []
        for name, start, length, word_phones in aligned:
            if not name.startswith(NON_PHONES):
                words.append(WordSpan(next(by_name), start * FRAME_S, (start + length) * FRAME_S))
            for ph, a, n, score in word_phones:
                phones.append((phoneme_of(ph), a * FRAME_S, (a + n) * FRAME_S))
                scored.append((phoneme_of(ph) != SILENCE, a, n, float(score)))
        log.debug("aligned %d words, %d phones in %.2f s", len(words), len(phones), duration)
        return build_timeline(phones, duration, words, "alignment"), scored

    def _recognize_pcm(self, pcm: np.ndarray, duration: float) -> tuple[PhonemeTimeline, float]:
        """Phone recognition (under the lock): the timeline and its total acoustic score."""
        decoder = _phone_decoder()
        self._decode(decoder, pcm)
        logmath = decoder.get_logmath()
        segments = [(s.word, s.start_frame, s.end_frame, s.ascore) for s in decoder.seg() or []]
        # seg() gives exp(score); back to the decoder's integer log units (never near underflow)
        score = float(sum(logmath.log(max(a, 1e-300)) for *_, a in segments))
        # seg() frames are inclusive: a phone ends where the next frame starts.
        phones = [(phoneme_of(w), a * FRAME_S, (b + 1) * FRAME_S) for w, a, b, _ in segments]
        phones = fill_voiced_silences(phones, _voiced(pcm))
        log.debug("recognised %d phones in %.2f s", len(phones), duration)
        return build_timeline(phones, duration, source="recognition"), score

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
