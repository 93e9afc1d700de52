"""HibariTTS: offline English TTS (hibari, 24 kHz) with per-phoneme timings from its ONNX graph.

hibari's API returns audio only. Its graph has one ``CumSum`` whose input is the duration of each
input symbol in 25 ms steps (600 samples, two 12.5 ms STFT hops); we expose that tensor as an
extra graph output and run the session ourselves, then render the waveform with
``hibari.dsp.synth`` exactly as ``Hibari.from_ids`` does.

The durations are the model's own alignment (what its decoder is conditioned on), not a forced
alignment of the audio: measured on hibari 0.2.1, audible onsets can lead their phone by up to
~50 ms (a median 35 ms at voicing landmarks, ``tests/avatar/speech/test_speech_aligner.py``),
and a phrase-final phone keeps the model's decay into silence (~0.2 s) before the pause.
``timeline_shift_s`` (``configs/voices/default.yaml``: -0.035) moves the timeline onto the audio.

Thread safety: one object serves many threads at once. The model and the G2P load on the first
call under a lock (construction stays cheap), onnxruntime's ``InferenceSession.run`` is
thread-safe, hibari's G2P (not documented as thread-safe: its OOV net loads lazily) runs under a
lock of its own, and each call seeds its own noise generator, so the same text and seed give the
same audio on any thread.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.errors import AvatarError, ConfigValueError, TextInputError, WeightsMissingError
from avatar.speech.hibari_model import (
    LOAD_LOCK,
    Model,
    g2p,
    hibari_assets,
    oov_letters,
    session,
    vocab,
)
from avatar.speech.loudness import normalize_loudness
from avatar.speech.text import check_scripts, script_of, split_sentences, validate_text
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan
from avatar.speech.tts import Speech

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

STEP = 600
"""Samples per duration step (25 ms at 24 kHz): ``len(audio) == STEP * sum(durations)`` exactly."""
HALF_HOP = 150
"""STFT frame k is centred on sample 300 k: a symbol's frames start half a hop (6.25 ms) early."""
MAX_PHONEMES = 400
"""Longer phoneme strings are cut at clause punctuation, as ``hibari.Hibari.phonemize`` does."""
_PAD = ""  # the 0 id hibari puts before and after every chunk
_PAUSES = frozenset(";:,.!?—…")  # punctuation the model speaks as a pause
_STRESS = frozenset("ˈˌ")  # marks the following syllable: time goes to the next phone
_MODIFIERS = frozenset("ːʰʲ\u0303")  # length, aspiration, palatal, nasal: to the previous phone
_SPLIT = frozenset(' "()“”↓→↗↘')  # word gaps, quotes, intonation: time split between neighbours
_CLAUSE = re.compile(r"(?<=[,;:—])\s+")
_WORD_STRIP = "\"“”‘’'()[]"


HIBARI_PHONEMES: frozenset[str] = frozenset(
    s for s in vocab() if s not in _PAUSES | _STRESS | _MODIFIERS | _SPLIT
)
"""Every phoneme symbol (misaki alphabet) a HibariTTS timeline can hold, besides :data:`SILENCE`."""
_ANCHORS = _PAUSES | HIBARI_PHONEMES  # symbols that keep their own time (as a phone or a pause)


@dataclass(frozen=True)
class _Chunk:
    """One model call: a phoneme string and its words as (text, start, end) character spans."""

    phonemes: str
    words: list[tuple[str, int, int]]


def phones_from_steps(symbols: list[str], steps: np.ndarray) -> list[tuple[str, int, int, int]]:
    """Turn per-symbol durations into phones of real phonemes and :data:`SILENCE`.

    Pads and pause punctuation become SILENCE (adjacent ones merged); stress marks give their
    time to the next phone, modifiers to the previous one, spaces/quotes split it between both.

    Args:
        symbols: model input symbols, ``""`` for the pads; first and last must be pads.
        steps: durations, shape ``(len(symbols),)``, in 25 ms steps.

    Returns:
        ``(phoneme, start, end, symbol_index)`` with start/end in samples at 24 kHz, contiguous
        over ``[0, STEP * steps.sum()]``.

    >>> phones_from_steps(["", "h", "ˈ", "I", "!", ""], np.array([3, 1, 1, 2, 4, 1]))
    [('_', 0, 1650, 0), ('h', 1650, 2250, 1), ('I', 2250, 4050, 3), ('_', 4050, 7200, 4)]
    """
    anchors = [i for i, s in enumerate(symbols) if s == _PAD or s in _ANCHORS]
    amount = {i: float(steps[i]) for i in anchors}
    for a, b in zip(anchors, anchors[1:], strict=False):
        for i in range(a + 1, b):  # non-phonetic symbols between two anchors
            s, d = symbols[i], float(steps[i])
            share_next = 1.0 if s in _STRESS else 0.0 if s in _MODIFIERS else 0.5
            amount[a] += d * (1 - share_next)
            amount[b] += d * share_next
    phones: list[list] = []
    for i in anchors:
        ph = SILENCE if symbols[i] == _PAD or symbols[i] in _PAUSES else symbols[i]
        if phones and ph == SILENCE and phones[-1][0] == SILENCE:
            phones[-1][1] += amount[i]
        else:
            phones.append([ph, amount[i], i])
    total, t, out = int(steps.sum()) * STEP, 0.0, []
    for n, (ph, d, i) in enumerate(phones):
        start = 0 if n == 0 else int(round(t * STEP)) - HALF_HOP
        t += d
        end = total if n == len(phones) - 1 else max(start, int(round(t * STEP)) - HALF_HOP)
        out.append((ph, start, end, i))
    return out


class HibariTTS:
    """Text to :class:`Speech` with hibari's bundled voice, fully offline.

    Text is validated (characters of other scripts than Latin, which hibari drops or reads as
    English letters, are named in a warning: :func:`avatar.speech.text.check_scripts`), split
    into sentences (:func:`avatar.speech.text.split_sentences`), each sentence phonemized by
    hibari's G2P and cut at clause punctuation past 400 symbols. Chunks are synthesized one by
    one with ``sentence_pause_s`` of digital silence between sentences, and the result is
    loudness-normalised. Audio: float32 ``(S,)`` at 24 kHz.

    The timeline (alphabet ``"misaki"``) holds only :data:`HIBARI_PHONEMES` and
    :data:`SILENCE`; boundaries are the model's alignment, to one 12.5 ms frame (see the module
    docstring for how audible onsets relate to it). Words come from hibari's G2P
    tokens: each token with phonemes becomes a :class:`WordSpan` from its first to its last
    phone. Word text is the token after hibari's normalisation (e.g. ``"Dr"`` for ``"Dr."``;
    a number such as ``"1,250"`` is one word spanning all the words it is read as).

    Construction only checks the settings; the model loads on the first :meth:`synthesize`
    (safe from many threads, see the module docstring).

    Args:
        name: voice id (``hibari-heart``; a corpus names each speed, e.g. ``hibari-1.10``): part
            of :meth:`settings`, so it labels cached corpora.
        voice: hibari voice name; only bundled voices (``"heart"``) exist offline.
        speed: speaking rate, 1.0 is the voice's natural pace (0.5 slow .. 2.0 fast).
        seed: seed of the noise component; same text and seed give bit-identical audio.
        max_chars: longest accepted text in characters (``tts.max_chars``).
        target_dbfs: RMS level of the active speech frames after normalisation, dBFS.
        sentence_pause_s: silence inserted between sentences, seconds.
        threads: onnxruntime threads.
        timeline_shift_s: move the timeline by this much, seconds (kept inside the audio), to
            correct the model's own alignment; 0 returns it as the graph gives it.

    Raises:
        WeightsMissingError: ``voice`` is not bundled with hibari (nothing is downloaded).
    """

    def __init__(
        self,
        *,
        name: str,
        voice: str,
        speed: float,
        seed: int,
        max_chars: int,
        target_dbfs: float,
        sentence_pause_s: float,
        threads: int,
        timeline_shift_s: float,
    ) -> None:
        from hibari.tts import SAMPLE_RATE
        from hibari.voices import VOICES

        bundled = [v for v, spec in VOICES.items() if spec.get("bundled")]
        if voice not in bundled:
            known = "a downloadable hibari voice" if voice in VOICES else "not a hibari voice"
            raise WeightsMissingError(
                f"{name}: hibari voice {voice!r} is {known}; only bundled voices work offline: "
                f"{', '.join(bundled)} (the HibariTTS `voice` setting)"
            )
        if speed <= 0 or threads < 1 or max_chars < 1 or sentence_pause_s < 0:
            raise ConfigValueError(
                f"HibariTTS {name}: need speed > 0, threads >= 1, max_chars >= 1, sentence_pause_s"
                f" >= 0; got {speed=}, {threads=}, {max_chars=}, {sentence_pause_s=}"
            )
        path = os.path.join(hibari_assets(), VOICES[voice]["file"])
        if not os.path.isfile(path):
            raise WeightsMissingError(
                f"hibari's bundled model for voice {voice!r} is missing: {path}"
            )
        self.name = name
        self.sample_rate: int = SAMPLE_RATE
        self.voice, self.speed, self.seed = voice, speed, seed
        self.max_chars, self.target_dbfs = max_chars, target_dbfs
        self.sentence_pause_s, self.threads = sentence_pause_s, threads
        self.timeline_shift_s = float(timeline_shift_s)
        self._path, self._british = path, bool(VOICES[voice]["british"])
        self._vocab = vocab()
        self._loaded: Model | None = None

    def __repr__(self) -> str:
        return f"HibariTTS(name={self.name!r}, voice={self.voice!r}, speed={self.speed})"

    def settings(self) -> dict[str, Any]:
        """What the audio depends on (hashed into corpus cache keys).

        ``threads`` is None (it does not change the audio); ``timeline_shift_s`` is left out
        when 0, so corpora cached before it existed keep their keys.
        """
        out: dict[str, Any] = {
            "kind": "hibari",
            "name": self.name,
            "voice": self.voice,
            "speed": self.speed,
            "seed": self.seed,
            "target_dbfs": self.target_dbfs,
            "sentence_pause_s": self.sentence_pause_s,
            "max_chars": self.max_chars,
            "threads": None,
        }
        if self.timeline_shift_s:
            out["timeline_shift_s"] = self.timeline_shift_s
        return out

    @property
    def loaded(self) -> bool:
        """Whether the ONNX session and G2P are loaded (they load on the first ``synthesize``)."""
        return self._loaded is not None

    def _model(self) -> Model:
        """The session and G2P, loaded once (under a lock) on first use."""
        model = self._loaded
        if model is None:
            with LOAD_LOCK:
                if self._loaded is None:
                    onnx_session = session(self._path, self.threads)
                    phonemizer, g2p_lock = g2p(self._british)
                    outputs = [o.name for o in onnx_session.get_outputs()]
                    self._loaded = Model(onnx_session, outputs, phonemizer, g2p_lock)
                    log.debug("hibari: loaded voice %s (%d threads)", self.voice, self.threads)
                model = self._loaded
        return model

    def synthesize(self, text: str) -> Speech:
        """Speak ``text``; see the class docstring.

        Raises:
            TextInputError: empty, too long, or nothing speakable (no letter or digit hibari
                reads, or nothing left after phonemization).
        """
        text = validate_text(text, max_chars=self.max_chars)
        oov = oov_letters(self._british)  # non-Latin ones are read as if English letters
        latin = {c for c in set(text) if c in oov and script_of(c) == "Latin"}
        ascii_forms = {c for c in set(text) if unicodedata.normalize("NFKC", c).isascii()}
        check_scripts(text, voice=self.name, speaks=(latin | ascii_forms).__contains__, guesses=oov)
        rng = np.random.default_rng(self.seed)
        pause = np.zeros(int(round(self.sentence_pause_s * self.sample_rate)), np.float32)
        pause_tl = PhonemeTimeline(
            [Phone(SILENCE, 0.0, len(pause) / self.sample_rate)],
            duration=len(pause) / self.sample_rate,
        )
        audio: list[np.ndarray] = []
        parts: list[PhonemeTimeline] = []
        n_sentences = 0
        for sentence in split_sentences(text):
            spoken = [self._synth_chunk(c, rng) for c in self._phonemize(sentence)]
            if not spoken:
                continue
            if audio and len(pause):
                audio.append(pause)
                parts.append(pause_tl)
            audio.extend(a for a, _ in spoken)
            parts.extend(t for _, t in spoken)
            n_sentences += 1
        if not audio:
            raise TextInputError(f"text has nothing speakable after phonemization: {text[:40]!r}")
        wav = normalize_loudness(
            np.concatenate(audio), self.sample_rate, target_dbfs=self.target_dbfs
        )
        timeline = PhonemeTimeline.concatenate(parts)
        timeline.duration = len(wav) / self.sample_rate
        if self.timeline_shift_s:
            timeline = timeline.moved_within(self.timeline_shift_s)
        log.debug("hibari: %d sentences, %.2f s of audio", n_sentences, timeline.duration)
        return Speech(audio=wav, sample_rate=self.sample_rate, timeline=timeline, text=text)

    def _phonemize(self, sentence: str) -> list[_Chunk]:
        """G2P as ``hibari.g2p.G2P.__call__``, keeping each token's span in the phoneme string."""
        from hibari.g2p.normalize import normalize

        model = self._model()
        g2p = model.g2p
        with model.g2p_lock:
            tokens = g2p.phonemize_tokens(g2p.tokenize(normalize(sentence)))
        full, words = "", []
        for tk in tokens:
            ps = g2p.unk if tk.phonemes is None else tk.phonemes
            if any(c in HIBARI_PHONEMES for c in ps):
                word = tk.text.strip(_WORD_STRIP) or tk.text
                words.append((word, len(full), len(full) + len(ps)))
            full += ps + (" " if tk.whitespace else "")
        lead = len(full) - len(full.lstrip())
        ps = full.strip()
        words = [(w, s - lead, e - lead) for w, s, e in words]
        spans = [(0, len(ps))]
        if len(ps) > MAX_PHONEMES:  # group clauses greedily up to MAX_PHONEMES, like hibari
            cuts = [0, *(x for m in _CLAUSE.finditer(ps) for x in m.span()), len(ps)]
            spans = []
            for s, e in zip(cuts[::2], cuts[1::2], strict=True):
                if spans and e - spans[-1][0] <= MAX_PHONEMES:
                    spans[-1] = (spans[-1][0], e)
                else:
                    spans.append((s, e))
        return [
            _Chunk(ps[s:e], [(w, ws - s, we - s) for w, ws, we in words if s <= ws and we <= e])
            for s, e in spans
            if any(c in self._vocab for c in ps[s:e])
        ]

    def _synth_chunk(
        self, chunk: _Chunk, rng: np.random.Generator
    ) -> tuple[np.ndarray, PhonemeTimeline]:
        """One model call: float32 audio ``(S,)`` and its timeline starting at 0."""
        from hibari import dsp

        index = [i for i, c in enumerate(chunk.phonemes) if c in self._vocab]
        symbols = [_PAD, *(chunk.phonemes[i] for i in index), _PAD]
        ids = [0, *(self._vocab[s] for s in symbols[1:-1]), 0]
        feed = {"ids": np.asarray([ids], np.int64), "speed": np.asarray([self.speed], np.float32)}
        model = self._model()
        *spectra, steps = model.session.run(model.outputs, feed)
        # (lh, th, ln, lr, phi, f0), each [601, F] (f0 [F]), then the noise: as Hibari.from_ids.
        wav = dsp.synth(*(o[0] for o in spectra), rng)
        steps = np.asarray(steps).reshape(-1)
        # Measured on hibari 0.2.1: the decoder emits 2 frames of 300 samples per step and the
        # iSTFT trims to frames * hop, so len(wav) == 600 * steps.sum() exactly, no padding offset.
        if len(wav) != STEP * int(steps.sum()):
            raise AvatarError(f"hibari: {len(wav)} samples for {int(steps.sum())} steps of {STEP}")
        sr = self.sample_rate
        phones = phones_from_steps(symbols, steps)
        char_of = [-1, *index, -1]  # symbol index -> character in chunk.phonemes
        words = []
        for word, start, end in chunk.words:
            inside = [
                (a, b) for ph, a, b, i in phones if ph != SILENCE and start <= char_of[i] < end
            ]
            if inside:
                words.append(WordSpan(word, inside[0][0] / sr, inside[-1][1] / sr))
        timeline = PhonemeTimeline(
            phones=[Phone(ph, a / sr, b / sr) for ph, a, b, _ in phones],
            words=words,
            duration=len(wav) / sr,
        )
        return wav, timeline
