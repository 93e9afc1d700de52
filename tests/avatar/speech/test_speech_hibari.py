"""HibariTTS: graph timings match the audio; pauses, determinism, errors, offline-only voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from avatar.errors import TextInputError, WeightsMissingError
from avatar.speech import SILENCE, HibariTTS, Speech, TextToSpeech
from avatar.speech.hibari_model import vocab as _vocab
from avatar.speech.hibari_tts import HIBARI_PHONEMES, STEP, phones_from_steps
from avatar.speech.loudness import active_rms_dbfs
from tests.settings import hibari_kwargs

CONFIG = Path(__file__).parents[3] / "configs" / "voices" / "default.yaml"
KW = hibari_kwargs(name="hibari-test", max_chars=200, sentence_pause_s=0.35, timeline_shift_s=0.0)
TWO = "Hello there, Dr. Smith! How are you today?"


@pytest.fixture(scope="module")
def tts() -> HibariTTS:
    return HibariTTS(**KW)


@pytest.fixture(scope="module")
def two(tts: HibariTTS) -> Speech:
    return tts.synthesize(TWO)


def test_protocol_and_output(tts: HibariTTS, two: Speech) -> None:
    assert isinstance(tts, TextToSpeech)
    assert two.sample_rate == tts.sample_rate == 24000
    assert two.audio.dtype == np.float32 and two.audio.ndim == 1
    assert two.text == TWO and two.timeline.alphabet == "misaki"
    assert abs(two.timeline.duration - two.duration) < 1e-9


@pytest.mark.parametrize("speed", [0.7, 1.0, 1.6])
def test_graph_durations_sum_to_audio_length(tts: HibariTTS, speed: float) -> None:
    from hibari import dsp

    model = tts._model()
    ids = [0, *(_vocab()[c] for c in model.g2p("The quick brown fox jumps over the lazy dog.")), 0]
    feed = {"ids": np.asarray([ids], np.int64), "speed": np.asarray([speed], np.float32)}
    *spectra, steps = model.session.run(model.outputs, feed)
    wav = dsp.synth(*(o[0] for o in spectra), np.random.default_rng(0))
    assert steps.shape == (len(ids),) and steps.min() >= 1
    assert abs(len(wav) - STEP * int(steps.sum())) < STEP
    assert len(wav) == STEP * int(steps.sum())  # measured: exact, no STFT padding offset


def test_phones_from_steps_merges_non_phonetic_symbols() -> None:
    symbols = ["", "ˈ", "O", "ː", " ", "n", "O", ",", "“", "h", "I", ".", ""]
    steps = np.array([4, 1, 2, 2, 2, 1, 3, 2, 2, 1, 1, 3, 1])
    phones = phones_from_steps(symbols, steps)
    assert [p[0] for p in phones] == ["_", "O", "n", "O", "_", "h", "I", "_"]
    lengths = [(b - a) / STEP for _, a, b, _ in phones]
    # stress -> next, length mark -> previous, space and quote split between neighbours
    assert lengths[1:-1] == [1 + 2 + 2 + 1, 1 + 1, 3, 2 + 1, 1 + 1, 1]
    assert phones[0][1] == 0 and phones[-1][2] == STEP * steps.sum()


def test_long_sentence_chunks_like_hibari(tts: HibariTTS) -> None:
    from hibari import Hibari

    long = ", ".join(["the market sold apples and pears and plums to everyone"] * 10) + "."
    chunks = tts._phonemize(long)
    assert len(chunks) > 1
    assert [c.phonemes for c in chunks] == Hibari().phonemize(long)
    assert sum(len(c.words) for c in chunks) == len(long.split())


def test_phonemes_match_hibari_g2p(tts: HibariTTS) -> None:
    from hibari import Hibari

    text = "I paid $9.99 on 3/4/2024, didn't I? It's 7:30 pm."
    for sentence in ["I paid $9.99 on 3/4/2024, didn't I?", "It's 7:30 pm."]:
        assert [c.phonemes for c in tts._phonemize(sentence)] == [tts._model().g2p(sentence)]
    assert len(Hibari.split_sentences(text)) == 2


def test_timeline_contiguous_and_covers_audio(two: Speech) -> None:
    phones = two.timeline.phones
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(two.duration, abs=1e-9)
    for a, b in zip(phones, phones[1:], strict=False):
        assert b.start == pytest.approx(a.end, abs=1e-9)
        assert b.end >= b.start


def test_only_known_phonemes(two: Speech) -> None:
    symbols = {p.phoneme for p in two.timeline.phones}
    assert SILENCE in symbols
    assert symbols - {SILENCE} <= HIBARI_PHONEMES
    assert {"h", "ə", "l", "O", "ð", "ɛ", "ɹ"} <= symbols


def test_hibari_phonemes_are_vocab_phonemes() -> None:
    assert HIBARI_PHONEMES < set(_vocab())
    assert not HIBARI_PHONEMES & set(' .,;:!?—…ˈˌː"()“”')


def test_sentence_pause(tts: HibariTTS, two: Speech) -> None:
    sr = two.sample_rate
    pauses = [p for p in two.timeline.phones if p.phoneme == SILENCE]
    inserted = [p for p in pauses if p.duration == pytest.approx(KW["sentence_pause_s"], abs=1e-6)]
    assert len(inserted) == 1
    a, b = round(inserted[0].start * sr), round(inserted[0].end * sr)
    assert np.all(two.audio[a:b] == 0)
    # The pause falls between the sentences' words.
    words = [w.word for w in two.timeline.words if w.end <= inserted[0].start]
    assert words == ["Hello", "there", "Dr", "Smith"]


def test_words_follow_phones(two: Speech) -> None:
    words = two.timeline.words
    expected = ["Hello", "there", "Dr", "Smith", "How", "are", "you", "today"]
    assert [w.word for w in words] == expected
    starts = {p.start for p in two.timeline.phones}
    for w, nxt in zip(words, words[1:], strict=False):
        assert w.start < w.end <= nxt.start
        assert w.start in starts


def test_seed_determinism(tts: HibariTTS, two: Speech) -> None:
    again = tts.synthesize(TWO)
    assert np.array_equal(again.audio, two.audio)
    other = HibariTTS(**{**KW, "seed": 1}).synthesize(TWO)
    assert not np.array_equal(other.audio, two.audio)


def test_loudness_target(two: Speech) -> None:
    assert abs(active_rms_dbfs(two.audio, two.sample_rate) - KW["target_dbfs"]) < 1.0
    assert np.abs(two.audio).max() <= 10 ** (-1 / 20) + 1e-6


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   ", "whitespace"),
        ("?! ... —", "nothing speakable"),
        ("word " * 50, "tts.max_chars"),
    ],
)
def test_bad_text(tts: HibariTTS, text: str, needle: str) -> None:
    with pytest.raises(TextInputError, match=needle):
        tts.synthesize(text)


@pytest.mark.parametrize("voice", ["emma", "no_such_voice"])
def test_unknown_voice_raises_without_network(monkeypatch: pytest.MonkeyPatch, voice: str) -> None:
    import hibari.voices

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("download attempted")

    monkeypatch.setattr(hibari.voices, "download", no_download)
    monkeypatch.setattr("urllib.request.urlopen", no_download)
    with pytest.raises(WeightsMissingError, match=f"{voice!r}.*only bundled voices work offline"):
        HibariTTS(**{**KW, "voice": voice})


def test_config_instantiates() -> None:
    from hydra.utils import instantiate

    cfg = OmegaConf.load(CONFIG).voices.heart
    tts = instantiate(cfg)
    assert isinstance(tts, HibariTTS) and tts.voice == "heart" and tts.max_chars == 2000
    assert tts.name == "hibari-heart" and tts.timeline_shift_s == -0.035


def test_timeline_shift_moves_phones_onto_the_audio(two: Speech) -> None:
    """``timeline_shift_s`` (configs: -0.035) moves every boundary, audio untouched."""
    shifted = HibariTTS(**{**KW, "timeline_shift_s": -0.035}).synthesize(TWO)
    assert np.array_equal(shifted.audio, two.audio)
    assert shifted.timeline.duration == two.timeline.duration
    inner = [
        (a, b)
        for a, b in zip(two.timeline.phones, shifted.timeline.phones, strict=True)
        if a.start > 0.035
    ]
    assert inner and all(abs(b.start - (a.start - 0.035)) < 1e-9 for a, b in inner)
    assert shifted.timeline.phones[0].start == 0.0
    assert shifted.timeline.phones[-1].end == two.timeline.duration
    assert OmegaConf.load(CONFIG).voices.heart.timeline_shift_s == -0.035
