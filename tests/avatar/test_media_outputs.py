"""Output paths and write failures: checked before work, clear errors, nothing partial left."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import OutputPathError
from avatar.media import EncoderSettings, Mp4Writer, check_output_path, write_wav
from avatar.media.files import (
    commit_temp,
    discard_temp,
    live_temps,
    remove_leftovers,
    temp_beside,
)

FAST = EncoderSettings(
    crf=23, preset="ultrafast", threads=1, tune=None, x264_params="", audio_bitrate=64000
)
UNWRITABLE_FOR_ROOT = Path("/sys")  # sysfs refuses new files even to root (EACCES)


def _noise_frames(n: int, size: int = 128) -> np.ndarray:
    """Incompressible frames, so a few of them fill a small disk."""
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), np.uint8)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def place(tmp_path: Path) -> Path:
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_dir").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("", "out is empty: give the file to write"),
        ("  ", "out is empty"),
        ("a_dir", "is a directory; give a file inside it, e.g. "),
        ("a_file/x.mp4", "a_file is a file, so no directory can be made there"),
        ("a_file/deeper/x.mp4", "a_file is a file"),
        ("render.avi", "must end in .mp4"),
        ("a_dir/render", "must end in .mp4"),
        ("x" * 300 + ".mp4", "File name too long (ENAMETOOLONG)"),
    ],
)
def test_check_output_path_refuses(place: Path, given: str, fragment: str) -> None:
    before = _files(place)
    path = str(place / given) if given.strip() else given
    with pytest.raises(OutputPathError, match="^out") as caught:
        check_output_path(path)
    assert fragment in str(caught.value)
    assert _files(place) == before and _files(place / "a_dir") == []


def test_check_output_path_refuses_special_files_and_unwritable_places() -> None:
    with pytest.raises(OutputPathError, match="exists and is not a regular file"):
        check_output_path("/dev/null")
    if not UNWRITABLE_FOR_ROOT.is_dir():
        pytest.skip("no /sys here")
    with pytest.raises(OutputPathError, match=r"cannot write in /sys: .*\(EACCES\)") as caught:
        check_output_path("/sys/render.mp4")
    assert caught.value.errno == errno.EACCES
    with pytest.raises(OutputPathError, match="cannot write in /sys"):
        check_output_path("/sys/new/dirs/render.mp4")  # where the directory would be made


def test_check_output_path_accepts_and_creates_nothing(place: Path) -> None:
    assert check_output_path(place / "new" / "deeper" / "x.mp4") == place / "new/deeper/x.mp4"
    assert check_output_path(place / "A.MP4") == place / "A.MP4"
    assert check_output_path(place / "w.wav", suffix=".wav", key="path") == place / "w.wav"
    (place / "old.mp4").write_bytes(b"replaced later")
    assert check_output_path(place / "old.mp4") == place / "old.mp4"  # overwriting is fine
    assert _files(place) == ["a_dir", "a_file", "old.mp4"]


def test_temp_files_are_registered_until_committed_or_discarded(tmp_path: Path) -> None:
    kept, dropped, stray = (temp_beside(tmp_path / n, ".part") for n in ("k.mp4", "d.mp4", "s"))
    assert {kept, dropped, stray} <= set(live_temps())
    commit_temp(kept, tmp_path / "k.mp4")
    discard_temp(dropped)
    assert not {kept, dropped} & set(live_temps()) and stray in live_temps()
    assert stray in remove_leftovers()  # what atexit runs: a signal left this one behind
    assert _files(tmp_path) == ["k.mp4"] and stray not in live_temps()


def test_writer_under_a_file_or_in_an_unwritable_place_is_an_output_path_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match=r"f/o\.mp4: .*/f is a file, so no directory can"):
        Mp4Writer(tmp_path / "f" / "o.mp4", fps=25, size=(64, 64), sample_rate=16000, encoder=FAST)
    with pytest.raises(OutputPathError, match=r"f/a/o\.wav: .*/f is a file"):
        write_wav(tmp_path / "f" / "a" / "o.wav", np.zeros(160, np.float32), 16000)
    assert _files(tmp_path) == ["f"]
    if UNWRITABLE_FOR_ROOT.is_dir():
        with pytest.raises(OutputPathError, match=r"cannot write in /sys: .*\(EACCES\); no perm"):
            Mp4Writer("/sys/o.mp4", fps=25, size=(64, 64), sample_rate=16000, encoder=FAST)


def test_write_wav_onto_a_directory_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(OutputPathError, match=r"d\.wav: cannot write the WAV: .*EISDIR"):
        write_wav(tmp_path / "d.wav", np.zeros(160, np.float32), 16000)
    assert _files(tmp_path) == ["d.wav"] and _files(tmp_path / "d.wav") == []


_FILL_UP = """
import resource, sys
import numpy as np
from avatar.errors import OutputPathError
from avatar.media import EncoderSettings, Mp4Writer
# a file-size limit makes the kernel refuse writes past 64 KiB (EFBIG), as a full disk would
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
frames = np.random.default_rng(0).integers(0, 255, (40, 128, 128, 3), np.uint8)
enc = EncoderSettings(
    crf=23, preset="ultrafast", threads=1, tune=None, x264_params="", audio_bitrate=64000
)
try:
    with Mp4Writer(sys.argv[1], fps=25, size=(128, 128), sample_rate=16000, encoder=enc) as w:
        w.write_frames(frames)
except OutputPathError as exc:
    print("OutputPathError", exc.errno, exc)
"""


def test_a_write_refused_halfway_removes_the_partial_file(tmp_path: Path) -> None:
    """The OS refuses a write mid-file (file size limit: EFBIG, like ENOSPC): the writer
    deletes its temp file and names the path and the reason."""
    out = tmp_path / "full" / "o.mp4"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FILL_UP), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"OutputPathError {errno.EFBIG} {out}: cannot write the MP4: ")
    assert "(EFBIG)" in proc.stdout
    assert _files(out.parent) == []


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_is_an_output_path_error_and_leaves_nothing(tiny_disk: Path) -> None:
    out = tiny_disk / "o.mp4"
    with pytest.raises(OutputPathError, match=r"o\.mp4: cannot write the MP4: .*\(ENOSPC\)") as e:
        with Mp4Writer(out, fps=25, size=(128, 128), sample_rate=16000, encoder=FAST) as w:
            w.write_frames(_noise_frames(60))
    assert e.value.errno == errno.ENOSPC and "free some disk space" in str(e.value)
    assert _files(tiny_disk) == [] and not live_temps()
    with pytest.raises(OutputPathError, match=r"cannot write the WAV: .*\(ENOSPC\)"):
        write_wav(tiny_disk / "o.wav", np.zeros(16000 * 30, np.float32), 16000)
    assert _files(tiny_disk) == []
