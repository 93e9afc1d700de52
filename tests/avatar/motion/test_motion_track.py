import numpy as np
import pytest

from avatar.errors import MotionTrackError
from avatar.motion.track import CHANNELS, MotionTrack


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    track = MotionTrack(rng.random((7, len(CHANNELS))), CHANNELS, 25.0)
    path = track.save(tmp_path / "m.npz")
    loaded = MotionTrack.load(path)
    assert loaded.channels == track.channels and loaded.fps == 25.0
    np.testing.assert_array_equal(loaded.values, track.values)
    assert not list(tmp_path.glob("*.tmp*")), "no temporary file left behind"


def test_bad_tracks_fail_clearly(tmp_path):
    with pytest.raises(MotionTrackError, match="do not match"):
        MotionTrack(np.zeros((3, 2)), ("a",), 25)
    with pytest.raises(MotionTrackError, match="fps"):
        MotionTrack(np.zeros((3, 1)), ("a",), 0)
    with pytest.raises(MotionTrackError, match="unknown channel 'nope'"):
        MotionTrack.zeros(3, 25)["nope"]
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(MotionTrackError, match="cannot load"):
        MotionTrack.load(tmp_path / "bad.npz")


def test_slice_select_concatenate():
    track = MotionTrack.zeros(10, 25)
    track.set("jaw_open", np.arange(10) / 10)
    part = track.slice(2, 5)
    assert len(part) == 3 and part["jaw_open"][0] == pytest.approx(0.2)
    joined = MotionTrack.concatenate([track.slice(0, 5), track.slice(5, 10)])
    np.testing.assert_array_equal(joined.values, track.values)
    sel = track.select(["jaw_open", "not_there"])
    assert sel.channels == ("jaw_open", "not_there") and np.all(sel["not_there"] == 0)
