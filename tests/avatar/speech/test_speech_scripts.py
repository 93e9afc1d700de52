"""Scripts an English voice cannot speak: named in one warning with their counts, for hibari and
flite; text with nothing speakable left is refused; flite gets ASCII (accents stripped)."""

from __future__ import annotations

import logging
import shutil

import pytest

from avatar.errors import TextInputError
from avatar.speech import SILENCE, FliteTTS, HibariTTS, Speech
from avatar.speech.flite_tts import ascii_text
from avatar.speech.text import check_scripts, script_of, validate_text
from tests.settings import hibari_kwargs

EMOJI = "\U0001f600"  # grinning face
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # three emoji joined by ZWJ


def _phonemes(speech: Speech) -> list[str]:
    return [p.phoneme for p in speech.timeline.phones if p.phoneme != SILENCE]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def hibari() -> HibariTTS:
    return HibariTTS(**hibari_kwargs(name="hibari-heart"))


@pytest.fixture(scope="module")
def flite() -> FliteTTS:
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    return FliteTTS(name="flite-slt", voice="slt", target_dbfs=-20.0, max_chars=400)


@pytest.mark.parametrize(
    ("ch", "script"),
    [
        ("a", None),
        (" ", None),
        ("é", "Latin"),
        ("ß", "Latin"),
        ("²", "Latin"),
        ("½", "Latin"),
        ("Ｈ", "Latin"),  # full-width
        ("\u0301", None),  # combining acute: goes with its letter
        ("—", None),
        ("€", None),
        ("你", "CJK"),
        ("〇", "CJK"),
        ("こ", "Hiragana"),
        ("ー", "Katakana"),  # KATAKANA-HIRAGANA PROLONGED SOUND MARK
        ("ｶ", "Katakana"),  # half-width
        ("안", "Hangul"),
        ("П", "Cyrillic"),
        ("Γ", "Greek"),
        ("ש", "Hebrew"),
        ("م", "Arabic"),
        ("١", "Arabic"),  # ARABIC-INDIC DIGIT ONE
        ("न", "Devanagari"),
        ("\u094d", "Devanagari"),  # virama: a mark named by its script
        ("ก", "Thai"),
        (EMOJI, "emoji"),
        ("\u2764", "emoji"),  # heavy black heart (Dingbats)
        ("\ufe0f", None),  # variation selector
        ("\u200d", None),  # zero-width joiner
    ],
)
def test_script_of(ch: str, script: str | None) -> None:
    assert script_of(ch) == script


def test_check_scripts_counts_and_warns_once(caplog) -> None:
    text = f"Hello 你好 Привет {FAMILY} world"
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        dropped = check_scripts(text, voice="v", speaks=str.isascii, guesses=set("Привет"))
    assert dict(dropped) == {"CJK": 2, "emoji": 3}
    assert _warnings(caplog) == [
        "the voice v speaks English; the text holds 5 characters it drops (emoji 3, CJK 2) and "
        "6 characters it reads by English spelling rules, not in their language (Cyrillic 6)"
    ]


def test_check_scripts_is_silent_for_english_and_refuses_nothing_speakable(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        assert check_scripts("Café, ½ — “ok”!", voice="v", speaks=lambda c: True) == {}
    assert _warnings(caplog) == []
    with pytest.raises(TextInputError, match=r"nothing the voice v can speak: 5 .*Arabic 5"):
        check_scripts("مرحبا!", voice="v", speaks=str.isascii)
    with pytest.raises(TextInputError, match=r"\(emoji 2\)$"):
        validate_text(EMOJI * 2, max_chars=100)


def test_ascii_text_for_flite() -> None:
    assert ascii_text("Zürich, Øresund, Straße, œuvre") == "Zurich, Oresund, Strasse, oeuvre"
    assert ascii_text("ﬁne Ｈｅｌｌｏ x²") == "fine Hello x2"
    assert ascii_text("“Don’t”…") == '"Don\'t"...'
    assert ascii_text("a—b") == "a -- b"
    assert ascii_text("你好 Привет") == "   " + " " * 6


@pytest.mark.parametrize(
    ("mixed", "scripts"),
    [
        ("Hello 你好 world.", "CJK 2"),
        ("Hello Привет world.", "Cyrillic 6"),
        ("Hello مرحبا नमस्ते world.", "Devanagari 6, Arabic 5"),
        (f"Hello {EMOJI} world.", "emoji 1"),
    ],
)
def test_flite_drops_other_scripts_with_a_warning(flite, mixed, scripts, caplog) -> None:
    plain = flite.synthesize("Hello world.")
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        speech = flite.synthesize(mixed)
    n = sum(int(part.split()[-1]) for part in scripts.split(", "))
    assert _warnings(caplog) == [
        f"the voice flite-slt speaks English; the text holds {n} characters it drops ({scripts})"
    ]
    assert _phonemes(speech) == _phonemes(plain)
    assert speech.text == mixed


def test_flite_reads_accented_latin_as_plain_letters(flite, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        accented = flite.synthesize("Café in Zürich, señor.")
    assert _warnings(caplog) == []
    assert _phonemes(accented) == _phonemes(flite.synthesize("Cafe in Zurich, senor."))


@pytest.mark.parametrize("text", ["你好", "Привет!", f"{EMOJI} ここ"])
def test_flite_refuses_text_with_no_latin(flite, text) -> None:
    with pytest.raises(TextInputError, match="nothing the voice flite-slt can speak"):
        flite.synthesize(text)


def test_hibari_names_dropped_and_guessed_scripts(hibari, caplog) -> None:
    plain = hibari.synthesize("Hello world.")
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        cjk = hibari.synthesize("Hello 你好 world.")
        emoji = hibari.synthesize(f"Hello {FAMILY} world.")
        cyrillic = hibari.synthesize("Hello Привет world.")
    assert _warnings(caplog) == [
        "the voice hibari-heart speaks English; the text holds 2 characters it drops (CJK 2)",
        "the voice hibari-heart speaks English; the text holds 3 characters it drops (emoji 3)",
        "the voice hibari-heart speaks English; the text holds 6 characters it reads by English "
        "spelling rules, not in their language (Cyrillic 6)",
    ]
    assert _phonemes(cjk) == _phonemes(emoji) == _phonemes(plain)
    assert len(_phonemes(cyrillic)) > len(_phonemes(plain))  # the guess is spoken


def test_hibari_is_silent_for_english_with_accents_and_symbols(hibari, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="avatar.speech.text"):
        hibari.synthesize("Café naïve, x² — ½ of €5!")
    assert _warnings(caplog) == []


@pytest.mark.parametrize(
    ("text", "scripts"), [("你好", "CJK 2"), ("안녕 مرحبا", "Arabic 5, Hangul 2")]
)
def test_hibari_refuses_text_with_nothing_it_can_speak(hibari, text, scripts) -> None:
    with pytest.raises(TextInputError, match=f"hibari-heart can speak: .*\\({scripts}\\)"):
        hibari.synthesize(text)
