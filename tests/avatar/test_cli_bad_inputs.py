"""avatar-render's bad-input table: each row exits 2 with one ``error:`` line on stderr naming
the problem, no traceback, and nothing written; run in-process (``avatar.cli.run``) for speed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.cli import run
from avatar.media import write_wav
from avatar.pipeline import Pipeline

ROWS = [  # (id, overrides, fragment of the error line); {out}, {outdir}, {assets} filled in
    ("empty out", ["out="], "OutputPathError: out is empty"),
    ("out is a directory", ["out={outdir}"], "is a directory; give a file inside it"),
    ("out under a file", ["out={outdir}/blocker/o.mp4"], "blocker is a file, so no directory"),
    ("out not .mp4", ["out={outdir}/o.avi"], "must end in .mp4"),
    ("out unwritable", ["out=/sys/o.mp4"], "cannot write in /sys: Permission denied"),
    ("bad encoder preset", ["encoder.preset=fastest"], "encoder.preset must be one of"),
    ("crf 99", ["encoder.crf=99"], "encoder.crf must be an integer in 0..51, got 99"),
    ("odd size", ["renderer.size=255"], "renderer.size must be an even number of pixels"),
    ("size 10000", ["renderer.size=10000"], "at most 2048 (H.264 frames need even sides), got"),
    ("unknown voice", ["companion.voice=nope"], "unknown voice 'nope'; known voices: heart"),
    ("missing image", ["companion.images=[{assets}/missing.png]"], "missing.png"),
    ("image without face", ["companion.images=[{assets}/noise.png]"], "FaceNotFoundError"),
    ("empty text", ['text=""'], "TextInputError: text is empty"),
    ("text not a string", ["text=[a,b]"], "text= must be text, got the list"),
    (
        "text over the limit",
        ["text_file={assets}/long.txt", "long_text.max_text_chars=2000"],
        "over the limit of 2000 (config key long_text.max_text_chars)",
    ),
    ("unknown tag", ['text="Hi [grumpy] there"'], "emotion tag '[grumpy]': unknown emotion"),
    ("text_file missing", ["text_file={assets}/nope.txt"], "nope.txt: no such file"),
    ("text_file not UTF-8", ["text_file={assets}/latin1.txt"], "not UTF-8 text (byte 3)"),
    ("text and text_file", ["text=Hi", "text_file={assets}/long.txt"], "text= or text_file="),
    ("missing audio", ["audio={assets}/nope.wav"], "nope.wav: file does not exist"),
    ("not audio", ["audio={assets}/text.wav"], "text.wav: not a readable audio file"),
    ("audio too long", ["audio={assets}/tone.wav", "max_audio_seconds=1"], "over the limit of 1"),
    ("audio and listen", ["audio={assets}/text.wav", "listen={assets}/text.wav"], "not both"),
    ("text with audio", ["text=Hi", "audio={assets}/text.wav"], "text= cannot be used with"),
    ("emotion with audio", ["emotion=sad", "audio=a.wav"], "emotion= cannot be used with audio="),
    ("emotion with listen", ["emotion=happy", "listen=a.wav"], "in every mode motion.emotion="),
    ("transcript, no audio", ["transcript=hi"], "transcript= cannot be used without audio="),
    ("mouth_source, no audio", ["mouth_source=learned"], "mouth_source= cannot be used without"),
    ("intensity, no emotion", ["emotion_intensity=0.5"], "emotion_intensity= needs emotion="),
    ("bad mouth_source", ["audio=a.wav", "mouth_source=magic"], "aligner or learned, got 'magic'"),
    ("unknown emotion", ["emotion=grumpy"], "unknown emotion 'grumpy'; known: angry"),
    ("emotion too strong", ["emotion=sad", "emotion_intensity=3"], "must be in [0, 1], got 3.0"),
    ("unknown config key", ["renderer.sise=256"], "Could not override 'renderer.sise'"),
    ("unknown top-level key", ["colour=red"], "Key 'colour' is not in struct"),
    ("unset env variable", ["identity.cache_dir=${{oc.env:AVATAR_NOPE_UNSET}}"], "AVATAR_NOPE"),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Input files of the table: a face-less image, a text file posing as audio, texts."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    cv2.imwrite(str(folder / "noise.png"), noise)
    (folder / "text.wav").write_text("not audio at all")
    write_wav(folder / "tone.wav", 0.1 * np.sin(np.arange(32000) / 5.0).astype(np.float32), 16000)
    (folder / "long.txt").write_text("word " * 500, encoding="utf-8")  # 2499 characters
    (folder / "latin1.txt").write_bytes("café".encode("latin-1"))
    return folder


def _render(tmp_path: Path, overrides: list[str], assets: Path | None = None) -> tuple[int, Path]:
    """``run`` with ``overrides`` ({out}, {outdir}, {assets} filled in); (exit code, out dir)."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "blocker").write_text("a file where a directory would go")
    fill = {"out": outdir / "o.mp4", "outdir": outdir, "assets": assets}
    argv = [
        f"out={fill['out']}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        f"identity.cache_dir={tmp_path / 'cache'}",
        "identity.super_resolution=off",  # 512 px would super-resolve the default face (~10 s)
        *(o.format(**fill) for o in overrides),
    ]
    return run(argv), outdir


@pytest.mark.parametrize(("overrides", "fragment"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_with_one_clear_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], assets: Path, overrides, fragment
) -> None:
    if "/sys/" in "".join(overrides) and not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    code, outdir = _render(tmp_path, overrides, assets)
    out, err = capfd.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err[-3000:]
    assert len(errors) == 1 and fragment in errors[0], err[-3000:]
    assert "Traceback" not in out + err and "error:" not in out
    assert sorted(p.name for p in outdir.iterdir()) == ["blocker"]  # nothing written, no temp


def test_a_bug_still_exits_1_with_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr(Pipeline, "render_text", broken)
    code, outdir = _render(tmp_path, ["text=Hi."])
    err = capfd.readouterr().err
    assert code == 1
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: a bug" in err
    assert not [line for line in err.splitlines() if line.startswith("error: ")]
    assert sorted(p.name for p in outdir.iterdir()) == ["blocker"]
