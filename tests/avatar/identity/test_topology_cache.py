"""The face topology's connection lists come from MediaPipe once, then from a small cache file."""

from __future__ import annotations

import pytest

from avatar.identity import topology


def test_the_cache_holds_exactly_mediapipes_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    fresh = topology._connections()  # from MediaPipe, then written
    assert fresh == topology._from_mediapipe()
    assert topology._cache_file().parent == tmp_path and topology._cache_file().exists()

    def no_mediapipe():
        raise AssertionError("read from MediaPipe although the cache holds the lists")

    monkeypatch.setattr(topology, "_from_mediapipe", no_mediapipe)
    assert topology._connections() == fresh


@pytest.mark.parametrize("content", ["{not json", '{"FACE_LANDMARKS_LIPS": [[61, 146]]}'])
def test_a_damaged_or_partial_cache_is_rebuilt(tmp_path, monkeypatch, content):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    topology._cache_file().write_text(content)
    assert topology._connections() == topology._from_mediapipe()
    assert sorted(topology._connections()) == sorted(topology.CONNECTIONS)


def test_an_unwritable_cache_root_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(blocker / "cache"))  # a file where a folder goes
    assert topology._connections() == topology._from_mediapipe()
    assert not (blocker / "cache").exists()
