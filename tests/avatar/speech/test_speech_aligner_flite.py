"""Forced alignment against a voice whose phone timings are exact: Debian flite (``-psdur``).

flite reports where each phone ends, in the same ARPAbet set the aligner emits, so phone
boundaries can be compared directly (phone sequences are matched first: the two
dictionaries sometimes pick different pronunciations).
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from avatar.speech.aligner import PocketsphinxAligner
from avatar.speech.flite_tts import FliteTTS
from avatar.speech.timeline import SILENCE

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet again tomorrow morning at the little cafe near the station.",
]
FRAME_S = 1 / 25


@pytest.fixture(scope="module")
def aligner() -> PocketsphinxAligner:
    config = OmegaConf.load(Path(__file__).parents[3] / "configs" / "aligner" / "pocketsphinx.yaml")
    return PocketsphinxAligner(**{k: v for k, v in config.items() if k != "_target_"})


def _matched_boundaries(truth, aligned) -> list[float]:
    a = [p.phoneme for p in truth.phones if p.phoneme != SILENCE]
    b = [p.phoneme for p in aligned.phones if p.phoneme != SILENCE]
    ta = [p for p in truth.phones if p.phoneme != SILENCE]
    tb = [p for p in aligned.phones if p.phoneme != SILENCE]
    errors = []
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            pa, pb = ta[block.a + k], tb[block.b + k]
            errors += [abs(pa.start - pb.start), abs(pa.end - pb.end)]
    return errors


@pytest.mark.parametrize("voice", ["slt", "awb"])
def test_median_phone_boundary_error_within_one_frame(aligner, voice):
    flite = FliteTTS(name=f"flite-{voice}", voice=voice, target_dbfs=-20.0, max_chars=400)
    errors, matched, total = [], 0, 0
    for text in TEXTS:
        speech = flite.synthesize(text)
        truth = speech.timeline
        aligned = aligner.align(speech.audio, speech.sample_rate, text)
        e = _matched_boundaries(truth, aligned)
        errors += e
        matched += len(e) // 2
        total += sum(p.phoneme != SILENCE for p in truth.phones)
    assert matched >= 0.8 * total, "most phones are matched one to one"
    median = float(np.median(errors))
    assert median <= FRAME_S, f"median phone boundary error {median * 1000:.0f} ms"
