"""avatar.quiet: native log lines on descriptor 2 dropped unless verbose; log levels by stream."""

from __future__ import annotations

import logging
import os

import pytest

from avatar.quiet import MaxLevelFilter, quiet_native_logs

NATIVE = [  # what MediaPipe 1.2.2 writes on a first landmarking, one write per line
    b"WARNING: Logging before InitGoogle() is written to STDERR\n",
    b"W0000 00:00:1796077732.652314   31107 face_landmarker_graph.cc:181] Sets Face...\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"I0000 00:00:1796077732.673245   31111 inference_feedback_manager.cc:121] Feedback\n",
]
KEPT = [
    b"E0000 00:00:1796077732.7   31111 face_landmarker_graph.cc:1] a native error\n",
    b"Fatal Python error: something native\n",
]


@pytest.mark.parametrize("verbose", [False, True])
def test_native_noise_is_dropped_and_the_rest_passes(
    capfd: pytest.CaptureFixture[str], verbose: bool
) -> None:
    with quiet_native_logs(verbose=verbose) as native:
        for line in [*NATIVE, *KEPT]:
            os.write(2, line)
        os.write(2, b"progress 50%\r")  # no newline yet: passed on at once
        os.write(2, b"progress 100%\n")
    err = capfd.readouterr().err
    shown = [*NATIVE, *KEPT] if verbose else KEPT
    assert err == b"".join(shown).decode() + "progress 50%\rprogress 100%\n"
    assert native.dropped == (0 if verbose else len(NATIVE))


def test_descriptor_2_is_put_back(capfd: pytest.CaptureFixture[str]) -> None:
    before = os.fstat(2)
    with quiet_native_logs():
        assert os.fstat(2).st_ino != before.st_ino  # the pipe
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    os.write(2, b"W0000 00:00:1.5 1 x.cc:1] after the block: shown\n")
    assert "after the block" in capfd.readouterr().err


def test_max_level_filter_keeps_progress_below_warnings() -> None:
    below = MaxLevelFilter("WARNING")
    record = {
        lvl: logging.LogRecord("a", lvl, __file__, 1, "m", None, None)
        for lvl in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
    }
    assert [below.filter(r) for r in record.values()] == [True, True, False, False]
    assert MaxLevelFilter(logging.ERROR).filter(record[logging.WARNING])
