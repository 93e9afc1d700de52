"""validate_text and split_sentences: every bad input names its problem."""

from __future__ import annotations

import pytest

from avatar.errors import TextInputError
from avatar.speech.text import split_sentences, validate_text


def test_validate_strips() -> None:
    assert validate_text("  Hello.\n", max_chars=10) == "Hello."


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   \n\t ", "whitespace only"),
        ("?!... — “”", "nothing speakable"),
        (42, "must be a str"),
        (None, "must be a str"),
    ],
)
def test_validate_rejects(text: object, needle: str) -> None:
    with pytest.raises(TextInputError, match=needle):
        validate_text(text, max_chars=100)


def test_validate_too_long_names_length_limit_and_key() -> None:
    with pytest.raises(TextInputError) as err:
        validate_text("a" * 101, max_chars=100)
    msg = str(err.value)
    assert "101" in msg and "100" in msg and "tts.max_chars" in msg


def test_validate_limit_applies_after_strip() -> None:
    assert validate_text("  " + "a" * 100 + "  ", max_chars=100) == "a" * 100


def test_split_sentences_abbreviations_and_paragraphs() -> None:
    text = 'Dr. Smith met J. K. Rowling. "Really?" she asked.\nNew line here. e.g. this stays'
    assert split_sentences(text) == [
        "Dr. Smith met J. K. Rowling.",
        '"Really?" she asked.',
        "New line here. e.g. this stays",
    ]


def test_split_sentences_keeps_every_character() -> None:
    text = "One! Two? Three… Four. Five"
    assert " ".join(split_sentences(text)) == text
