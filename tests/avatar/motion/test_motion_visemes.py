import pytest

from avatar.errors import AvatarError
from avatar.motion.visemes import VISEME_TARGETS, VISEMES, covers, phoneme_visemes
from avatar.speech.hibari_tts import HIBARI_PHONEMES


def test_every_tts_phoneme_has_a_viseme():
    missing = sorted(p for p in HIBARI_PHONEMES if not covers(p))
    assert not missing, f"phonemes without a viseme: {missing}"


@pytest.mark.parametrize(
    "code",
    [
        "AA",
        "AE",
        "AH",
        "AO",
        "AW",
        "AY",
        "B",
        "CH",
        "D",
        "DH",
        "EH",
        "ER",
        "EY",
        "F",
        "G",
        "HH",
        "IH",
        "IY",
        "JH",
        "K",
        "L",
        "M",
        "N",
        "NG",
        "OW",
        "OY",
        "P",
        "R",
        "S",
        "SH",
        "T",
        "TH",
        "UH",
        "UW",
        "V",
        "W",
        "Y",
        "Z",
        "ZH",
        "SIL",
    ],
)
def test_arpabet_is_covered(code):
    assert covers(code + ("1" if code[0] in "AEIOU" else ""), "arpabet")


def test_fractions_sum_to_one_and_bilabials_close():
    for ph in ["ˈA", "I", "m", "ʧ", "ᵊ"]:
        assert sum(f for _, f in phoneme_visemes(ph)) == pytest.approx(1.0)
    assert phoneme_visemes("m") == [("PP", 1.0)]
    assert VISEME_TARGETS["PP"][0] == 0.0 and VISEME_TARGETS["sil"] == (0.0,) * 7
    assert set(VISEMES) == set(VISEME_TARGETS)


def test_unknown_symbol_is_an_error():
    with pytest.raises(AvatarError, match="no viseme"):
        phoneme_visemes("☃")
    with pytest.raises(AvatarError, match="alphabet"):
        phoneme_visemes("a", alphabet="klingon")
