"""One voice interface: FliteTTS, HibariTTS's settings and digests, Voices, threads, corpus keys."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from avatar.audio import resample
from avatar.companion import configs_dir
from avatar.data.speech_corpus import SpeechCorpus
from avatar.errors import ConfigValueError, TextInputError, WeightsMissingError
from avatar.speech import SILENCE, FliteTTS, HibariTTS, Speech, TextToSpeech, Voices, hibari_model
from tests.settings import hibari_kwargs

HAS_FLITE = shutil.which("flite") is not None
needs_flite = pytest.mark.skipif(
    not HAS_FLITE, reason="flite not installed (apt-get install flite)"
)
TEXTS = ["Hello there. How are you today?", "The quick brown fox jumps over the lazy dog, twice."]
FLITE_VOICES = ["kal", "awb", "rms", "slt"]

# sha256 of the float32 audio bytes and of the timeline's JSON (first 16 hex digits), measured
# with the code before the voice interface was unified (avatar.data.voices.HibariVoice/FliteVoice
# and HibariTTS with eager loading); hibari 0.2.1, Debian flite 2.2.
HIBARI_DIGESTS = {
    ("voices/heart", 0): (
        "ef73cfff1400f9c898346a4a3a3d12077f2c474ad4233b3d930953f17d8723d4",
        "71514fd3df724d07",
    ),
    ("voices/heart", 1): (
        "74be61b2d687e7ac09f210abc890055b5537388c03dc187d708c42afd9d3329e",
        "81ef9241f885464f",
    ),
    ("hibari-0.80", 0): (
        "3e7dd8baef29a88f91a3d9677dd760cc1bb122db1c050c5e6fc4dc22e1f5321c",
        "b43b05ff60b0f87c",
    ),
    ("hibari-0.80", 1): (
        "1c35741eb673e62ecd77727cae4097c9efb1ab5d37fb976db256059f4f7fd695",
        "8db614c0ae1eb8f1",
    ),
}
FLITE_DIGESTS = {  # TEXTS[1]
    "kal": ("1fc59e75af51189960cc144bed00ffaf11c9a00303636f45ff6b7057f741225e", "bd27237cfeb501d0"),
    "awb": ("e87b4b821e8f16b8efc329b98a809ac221aa7b619d921bc568799de4e0f62616", "2417be933272bced"),
    "rms": ("81ee811e65f7473ea70cacb05e497c23b09fa3491aacd507d57f8731fef35789", "c22fb2a6321f33d4"),
    "slt": ("bd529264911b461e92f34c60b8eedc56ef8f96b68c9006d79d7d24992a56ebc0", "809a7f1c893ffd65"),
}
# SpeechCorpus.key() of the committed data configs before the change (corpora cached by key).
CORPUS_KEYS = {
    "speech_corpus": "113da961d431aacb",
    "synthetic": "ef328838a382d5db",
    "sync_clips": "1a1574aabc753280",
    "sync_synthetic": "99753554de282d0d",
}


def _digest(speech: Speech) -> tuple[str, str]:
    audio = hashlib.sha256(np.ascontiguousarray(speech.audio, np.float32).tobytes()).hexdigest()
    timeline = json.dumps(speech.timeline.to_dict(), sort_keys=True).encode()
    return audio, hashlib.sha256(timeline).hexdigest()[:16]


def _train_config(data: str):
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return compose("train", overrides=[f"data={data}"])


def _corpus(data: str, cache_dir: Path) -> SpeechCorpus:
    corpus = _train_config(data).data.corpus
    return instantiate(corpus.get("speech", corpus), cache_dir=cache_dir)


def _voices_config():
    """The ``voices`` group as composed into the render config."""
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose("render", overrides=["voices=default"])
    return cfg.voices


def _flite(voice: str = "slt") -> FliteTTS:
    return FliteTTS(name=f"flite-{voice}", voice=voice, target_dbfs=-20.0, max_chars=400)


def _flite_version() -> str:
    run = subprocess.run(["flite", "--version"], capture_output=True, text=True, check=False)
    return run.stdout


# -- FliteTTS -------------------------------------------------------------------------------------


@needs_flite
@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_flite_timeline_covers_the_audio(voice: str) -> None:
    tts = _flite(voice)
    speech = tts.synthesize("  " + TEXTS[0] + "\n")
    assert isinstance(tts, TextToSpeech)
    assert speech.sample_rate == tts.sample_rate == (8000 if voice == "kal" else 16000)
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert speech.text == TEXTS[0] and speech.timeline.alphabet == "arpabet"
    phones = speech.timeline.phones
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(speech.duration, abs=1e-9)
    assert speech.timeline.duration == pytest.approx(speech.duration, abs=1e-9)
    assert sum(p.duration for p in phones) == pytest.approx(speech.duration, abs=1e-6)
    for a, b in zip(phones, phones[1:], strict=False):
        assert b.start == pytest.approx(a.end, abs=1e-9) and b.end > b.start
    spoken = [p.phoneme for p in phones if p.phoneme != SILENCE]
    assert spoken[:4] == ["HH", "AH", "L", "OW"]  # "hello"


@needs_flite
@pytest.mark.skipif(
    HAS_FLITE and "flite-2.2" not in _flite_version(), reason="digests measured on flite 2.2"
)
@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_flite_audio_unchanged_by_the_move(voice: str) -> None:
    assert _digest(_flite(voice).synthesize(TEXTS[1])) == FLITE_DIGESTS[voice]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("", "empty"), ("   ", "whitespace"), ("?! ... —", "nothing speakable"), ("a" * 401, "400")],
)
def test_flite_bad_text(text: str, needle: str) -> None:
    with pytest.raises(TextInputError, match=needle):
        _flite().synthesize(text)


def test_flite_unknown_voice_and_settings() -> None:
    with pytest.raises(ConfigValueError, match="'nosuch'.*kal, kal16, awb"):
        FliteTTS(name="x", voice="nosuch", target_dbfs=-20.0, max_chars=400)
    expected = {"kind": "flite", "name": "flite-slt", "voice": "slt", "dbfs": -20.0}
    assert _flite().settings() == expected


def test_flite_missing_binary_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="apt-get install flite"):
        _flite().synthesize("Hello there.")


# -- HibariTTS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hibari_voices() -> dict[str, HibariTTS]:
    """The pipeline's default voice (configs/voices/default.yaml) and the first corpus voice."""
    pipeline = instantiate(OmegaConf.load(configs_dir() / "voices" / "default.yaml")).get(None)
    corpus = instantiate(_train_config("speech_corpus").data.corpus.voices[0])
    assert corpus.name == "hibari-0.80"
    return {"voices/heart": pipeline, "hibari-0.80": corpus}


@pytest.mark.parametrize(("voice", "text"), sorted(HIBARI_DIGESTS))
def test_hibari_audio_unchanged(hibari_voices: dict[str, HibariTTS], voice: str, text: int) -> None:
    assert _digest(hibari_voices[voice].synthesize(TEXTS[text])) == HIBARI_DIGESTS[voice, text]


def test_hibari_construction_is_lazy_and_settings_keep_the_corpus_contract() -> None:
    kw = hibari_kwargs(name="hibari-1.10", speed=1.1, seed=4, max_chars=400, timeline_shift_s=0.0)
    tts = HibariTTS(**kw)
    assert not tts.loaded and tts.sample_rate == 24000 and tts.name == "hibari-1.10"
    expected = {"kind": "hibari", **{k: v for k, v in kw.items() if k != "timeline_shift_s"}}
    assert tts.settings() == {**expected, "threads": None}  # no timeline_shift_s when 0
    shifted = HibariTTS(**{**kw, "timeline_shift_s": -0.035}).settings()
    assert shifted == {**expected, "threads": None, "timeline_shift_s": -0.035}
    with pytest.raises(TypeError, match="timeline_shift_s"):
        HibariTTS(**{k: v for k, v in kw.items() if k != "timeline_shift_s"})


def _concurrently(fn, jobs: list) -> list:
    """``fn(job)`` for every job on its own thread, all started together."""
    barrier, out = threading.Barrier(len(jobs)), [None] * len(jobs)

    def work(i: int) -> None:
        barrier.wait()
        out[i] = fn(jobs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_hibari_four_threads_give_the_audio_of_one() -> None:
    cfg = OmegaConf.load(configs_dir() / "voices" / "default.yaml").voices.heart
    reference = [instantiate(cfg).synthesize(t) for t in TEXTS]
    # A fresh object and fresh shared caches: the threads also race for the first load.
    hibari_model.session.cache_clear()
    hibari_model.g2p.cache_clear()
    shared = instantiate(cfg)
    jobs = [0, 1, 0, 1]
    results = _concurrently(lambda i: shared.synthesize(TEXTS[i]), jobs)
    for i, speech in zip(jobs, results, strict=True):
        assert np.array_equal(speech.audio, reference[i].audio)
        assert speech.timeline.to_dict() == reference[i].timeline.to_dict()


@needs_flite
def test_flite_four_threads_give_the_audio_of_one() -> None:
    voices = ["slt", "kal", "slt", "kal"]
    reference = {v: _flite(v).synthesize(TEXTS[0]) for v in set(voices)}
    shared = {v: _flite(v) for v in set(voices)}
    results = _concurrently(lambda v: shared[v].synthesize(TEXTS[0]), voices)
    for v, speech in zip(voices, results, strict=True):
        assert np.array_equal(speech.audio, reference[v].audio)
        assert speech.timeline.to_dict() == reference[v].timeline.to_dict()


# -- Voices ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voices() -> Voices:
    return instantiate(_voices_config())


def test_voices_config_builds_cheaply(voices: Voices) -> None:
    assert voices.names == ["heart", "flite-kal", "flite-awb", "flite-rms", "flite-slt"]
    assert voices.default == "heart" and len(voices) == 5 and "flite-slt" in voices
    heart = voices.get("heart")
    assert isinstance(heart, HibariTTS) and not heart.loaded  # nothing loaded yet
    for name in voices.names[1:]:
        assert isinstance(voices.get(name), FliteTTS) and voices.get(name).name == name


def test_voices_get_default_and_unknown(voices: Voices) -> None:
    assert voices.get(None) is voices.get("heart")
    assert voices.get("flite-slt").voice == "slt"
    with pytest.raises(ConfigValueError, match="'flite-xyz'.*heart, flite-kal, .*flite-slt"):
        voices.get("flite-xyz")


def test_voices_rejects_a_bad_default_or_entry() -> None:
    with pytest.raises(ConfigValueError, match="'nope'.*flite-slt"):
        Voices(voices={"flite-slt": _flite()}, default="nope")
    with pytest.raises(ConfigValueError, match="voices.x: str is not a TextToSpeech"):
        Voices(voices={"x": "flite"}, default="x")  # type: ignore[dict-item]
    with pytest.raises(ConfigValueError, match="at least one"):
        Voices(voices={}, default="heart")


# -- SpeechCorpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", sorted(CORPUS_KEYS))
def test_corpus_keys_unchanged(data: str, tmp_path: Path) -> None:
    corpus = _corpus(data, tmp_path)
    assert corpus.key() == CORPUS_KEYS[data]
    assert all(isinstance(v, TextToSpeech) for v in corpus.voices)


@needs_flite
def test_corpus_speaks_with_text_to_speech(tmp_path: Path) -> None:
    kal = _flite("kal")  # 8 kHz: resampled to the corpus rate
    corpus = SpeechCorpus(
        voices=[kal],
        heldout_voices=[],
        sentences_per_voice=2,
        n_generated=0,
        sample_rate=16000,
        seed=0,
        cache_dir=tmp_path,
    )
    utterances = corpus.load()
    assert [u.voice for u in utterances] == ["flite-kal"] * 2
    for u in utterances:
        direct = kal.synthesize(u.text)
        assert np.array_equal(u.audio, resample(direct.audio, 8000, 16000).astype(np.float32))
        assert u.timeline.duration == pytest.approx(len(u.audio) / 16000, abs=1e-9)
        assert [p.phoneme for p in u.timeline.phones] == [p.phoneme for p in direct.timeline.phones]


def test_render_config_speaks_with_the_voices_group() -> None:
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose("render")
    assert "tts" not in cfg, "one home for the voice settings: configs/voices/"
    voices = instantiate(cfg.voices)
    assert voices.get(None).name == "hibari-heart"
    assert set(voices.names) == {"heart", "flite-kal", "flite-awb", "flite-rms", "flite-slt"}
