"""The voice's patched ONNX model is made once and kept in the cache root; a cache that cannot
be written falls back to the bytes in memory."""

from __future__ import annotations

import logging
import os

import pytest

from avatar.cache_root import CACHE_ENV
from avatar.speech import hibari_model


@pytest.fixture
def model_path() -> str:
    return os.path.join(hibari_model.hibari_assets(), "hibari.onnx")


def test_the_patched_model_is_written_once_and_equals_the_patch(model_path, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    first = hibari_model._patched_model_file(model_path)
    assert first is not None and first.startswith(str(tmp_path))
    with open(first, "rb") as f:
        assert f.read() == hibari_model._patched_model(model_path)
    mtime = os.stat(first).st_mtime_ns
    assert hibari_model._patched_model_file(model_path) == first
    assert os.stat(first).st_mtime_ns == mtime  # read, not written again
    assert [p.name for p in (tmp_path / "models").iterdir()] == [os.path.basename(first)]


def test_an_unwritable_cache_is_a_warning_and_the_bytes_are_used(
    model_path, tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with caplog.at_level(logging.WARNING):
        assert hibari_model._patched_model_file(model_path) is None
    assert any("patched voice model" in r.getMessage() for r in caplog.records)
