"""Phoneme -> viseme tables and each viseme's articulator targets (the mouth channels).

The viseme set (14 classes, after the common MPEG-4 / Oculus-style groupings):

========  =====================================  ======================================
viseme    phonemes (IPA / misaki / ARPAbet)       mouth shape
========  =====================================  ======================================
``sil``   pauses                                 lips closed, relaxed
``PP``    p b m                                  lips pressed together
``FF``    f v                                    lower lip under the upper teeth
``TH``    θ ð                                    tongue tip between the teeth, small gap
``DD``    t d n l ɾ ʔ                            slightly open, tongue behind the teeth
``kk``    k ɡ ŋ h x                              slightly open, back of the tongue
``CH``    ʃ ʒ ʧ ʤ                                rounded, protruded, teeth close
``SS``    s z                                    teeth close, corners spread
``RR``    ɹ r ɚ ɝ                                slightly rounded
``aa``    ɑ æ ʌ a ɐ ɒ                            jaw wide open
``E``     ɛ e ə ɜ ᵊ                              mid open, spread
``I``     i ɪ j ᵻ                                near closed, spread
``O``     ɔ o                                    open and rounded
``U``     u ʊ w                                  nearly closed, strongly rounded
========  =====================================  ======================================

Diphthongs (misaki ``A I O W Y Q``) are two visemes, the first taking 60% of the duration.
Stress and length marks carry no shape and are ignored by :func:`phoneme_visemes`.
"""

from __future__ import annotations

import numpy as np

from avatar.errors import AvatarError
from avatar.motion.track import MOUTH_CHANNELS

VISEMES: tuple[str, ...] = (
    "sil",
    "PP",
    "FF",
    "TH",
    "DD",
    "kk",
    "CH",
    "SS",
    "RR",
    "aa",
    "E",
    "I",
    "O",
    "U",
)

# Targets per viseme for MOUTH_CHANNELS =
# (jaw_open, lip_open, mouth_stretch, lip_round, lip_press, lower_lip_tuck, upper_lip_raise)
VISEME_TARGETS: dict[str, tuple[float, ...]] = {
    "sil": (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
    "PP": (0.00, 0.00, 0.00, 0.05, 1.00, 0.00, 0.00),
    "FF": (0.12, 0.00, 0.10, 0.00, 0.00, 1.00, 0.35),
    "TH": (0.20, 0.25, 0.10, 0.00, 0.00, 0.00, 0.15),
    "DD": (0.25, 0.30, 0.15, 0.00, 0.00, 0.00, 0.10),
    "kk": (0.30, 0.30, 0.05, 0.00, 0.00, 0.00, 0.05),
    "CH": (0.15, 0.30, -0.30, 0.65, 0.00, 0.00, 0.25),
    "SS": (0.10, 0.25, 0.45, 0.00, 0.00, 0.00, 0.20),
    "RR": (0.20, 0.30, -0.15, 0.45, 0.00, 0.00, 0.10),
    "aa": (0.75, 0.60, 0.10, 0.00, 0.00, 0.00, 0.15),
    "E": (0.45, 0.45, 0.35, 0.00, 0.00, 0.00, 0.15),
    "I": (0.20, 0.35, 0.55, 0.00, 0.00, 0.00, 0.15),
    "O": (0.50, 0.45, -0.35, 0.70, 0.00, 0.00, 0.05),
    "U": (0.15, 0.20, -0.45, 1.00, 0.00, 0.00, 0.00),
}

# How strongly a viseme resists coarticulation (Cohen-Massaro dominance): closures and
# labiodentals must be reached; vowels and lingual consonants borrow from their neighbours.
VISEME_DOMINANCE: dict[str, float] = {
    "sil": 1.0,
    "PP": 2.0,
    "FF": 1.8,
    "TH": 1.0,
    "DD": 0.5,
    "kk": 0.4,
    "CH": 1.2,
    "SS": 1.0,
    "RR": 0.9,
    "aa": 1.5,
    "E": 1.2,
    "I": 1.1,
    "O": 1.4,
    "U": 1.5,
}

_IPA_TO_VISEME: dict[str, str] = {}
for _viseme, _symbols in {
    "sil": "_ ",
    "PP": "pbmɱɓ",
    "FF": "fvɸβʋ",
    "TH": "θð",
    "DD": "tdnlɾTʔɗɖʈɳɽɫɬɮʎɲ",
    "kk": "kgɡŋhxχɣɤɰqɢɴʁħʕɦçʝɟc",
    "CH": "ʃʒʧʤʂʐɕʑʨʥʦʣꭧ",
    "SS": "szʦS",
    "RR": "ɹrɚɝɻʀ",
    "aa": "ɑæʌaɐɒɶ",
    "E": "ɛeəɜᵊœøɘɵɞ",
    "I": "iɪjᵻɨyʏɯʉ",
    "O": "ɔo",
    "U": "uʊwᵝɥ",
}.items():
    for _s in _symbols:
        _IPA_TO_VISEME.setdefault(_s, _viseme)

# misaki diphthongs (uppercase letters) -> two visemes
_DIPHTHONGS: dict[str, tuple[str, str]] = {
    "A": ("E", "I"),  # eɪ
    "I": ("aa", "I"),  # aɪ
    "O": ("O", "U"),  # oʊ
    "W": ("aa", "U"),  # aʊ
    "Y": ("O", "I"),  # ɔɪ
    "Q": ("E", "U"),  # əʊ (British)
}
# symbols that shape nothing on their own (stress, length, tie, nasalisation, aspiration, ...)
IGNORED_SYMBOLS = frozenset("ˈˌː̃ʰʲ↓↗↘→")

_ARPABET_TO_VISEME: dict[str, str] = {
    "SIL": "sil",
    "SP": "sil",
    "_": "sil",
    "+NSN+": "sil",
    "+SPN+": "sil",
    "P": "PP",
    "B": "PP",
    "M": "PP",
    "F": "FF",
    "V": "FF",
    "TH": "TH",
    "DH": "TH",
    "T": "DD",
    "D": "DD",
    "N": "DD",
    "L": "DD",
    "DX": "DD",
    "K": "kk",
    "G": "kk",
    "NG": "kk",
    "HH": "kk",
    "SH": "CH",
    "ZH": "CH",
    "CH": "CH",
    "JH": "CH",
    "S": "SS",
    "Z": "SS",
    "R": "RR",
    "ER": "RR",
    "AA": "aa",
    "AE": "aa",
    "AH": "aa",
    "AO": "O",
    "EH": "E",
    "IH": "I",
    "IY": "I",
    "Y": "I",
    "UH": "U",
    "UW": "U",
    "W": "U",
    "OW": "O",
}
_ARPABET_DIPHTHONGS: dict[str, tuple[str, str]] = {
    "EY": ("E", "I"),
    "AY": ("aa", "I"),
    "AW": ("aa", "U"),
    "OY": ("O", "I"),
}


def phoneme_visemes(phoneme: str, alphabet: str = "misaki") -> list[tuple[str, float]]:
    """Visemes for one phoneme, each with the fraction of the phone's duration it occupies.

    Args:
        phoneme: a symbol in ``alphabet`` (misaki/IPA characters, possibly with stress marks,
            or an ARPAbet code with optional stress digit).
        alphabet: ``"misaki"`` (also plain IPA) or ``"arpabet"``.

    Returns:
        ``[(viseme, fraction), ...]`` with fractions summing to 1.

    Raises:
        AvatarError: the phoneme is not covered by the table.

    >>> phoneme_visemes("ˈæ")
    [('aa', 1.0)]
    >>> phoneme_visemes("O")
    [('O', 0.6), ('U', 0.4)]
    >>> phoneme_visemes("AY1", alphabet="arpabet")
    [('aa', 0.6), ('I', 0.4)]
    """
    if alphabet == "arpabet":
        code = phoneme.upper().rstrip("012")
        if code in _ARPABET_DIPHTHONGS:
            a, b = _ARPABET_DIPHTHONGS[code]
            return [(a, 0.6), (b, 0.4)]
        if code in _ARPABET_TO_VISEME:
            return [(_ARPABET_TO_VISEME[code], 1.0)]
        raise AvatarError(f"no viseme for ARPAbet phoneme {phoneme!r}")
    if alphabet not in ("misaki", "ipa"):
        raise AvatarError(f"unknown phoneme alphabet {alphabet!r}; use 'misaki' or 'arpabet'")
    symbols = [s for s in phoneme if s not in IGNORED_SYMBOLS]
    if not symbols:
        return [("sil", 1.0)]
    out: list[tuple[str, float]] = []
    share = 1.0 / len(symbols)
    for s in symbols:
        if s in _DIPHTHONGS:
            a, b = _DIPHTHONGS[s]
            out += [(a, 0.6 * share), (b, 0.4 * share)]
        elif s in _IPA_TO_VISEME:
            out.append((_IPA_TO_VISEME[s], share))
        else:
            raise AvatarError(f"no viseme for phoneme symbol {s!r} (in {phoneme!r})")
    return out


def covers(symbol: str, alphabet: str = "misaki") -> bool:
    """Whether ``symbol`` maps to a viseme (or is a known shapeless mark)."""
    try:
        phoneme_visemes(symbol, alphabet)
    except AvatarError:
        return False
    return True


def viseme_target_matrix() -> np.ndarray:
    """(V, M) float32 articulator targets: row per viseme in :data:`VISEMES`, column per
    channel in :data:`avatar.motion.track.MOUTH_CHANNELS`."""
    return np.array([VISEME_TARGETS[v] for v in VISEMES], np.float32).reshape(
        len(VISEMES), len(MOUTH_CHANNELS)
    )
