"""Mesh-warp's prepared state (its displacement fields) cached beside the identity: a second
process reads it instead of rasterising, renders the same frames, and a broken or foreign
file is made again, never trusted."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from avatar.cache_root import cache_root
from avatar.companion import load_companion
from avatar.identity.cache import entry_dir
from avatar.identity_store import IdentityStore
from avatar.motion.track import CHANNELS
from avatar.renderers.meshwarp import MeshWarpRenderer

SIZE = 128


def _values() -> np.ndarray:
    rows = np.zeros((3, len(CHANNELS)), np.float32)
    for i, (name, value) in enumerate((("jaw_open", 0.6), ("blink_l", 1.0), ("head_yaw", 3.0))):
        rows[i, CHANNELS.index(name)] = value
        rows[i, CHANNELS.index("head_roll")] = 1.5
    return rows


def _store(settings) -> IdentityStore:
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    return IdentityStore(renderer=renderer, settings=settings, capacity=2)


def _cache_file(settings, key: str):
    return entry_dir(cache_root(settings.cache_dir), key) / f"{MeshWarpRenderer.cache_name}.npz"


@pytest.fixture
def settings(identity_settings, tmp_path):
    return dataclasses.replace(identity_settings, cache_dir=str(tmp_path / "cache"))


def test_a_second_store_reads_the_fields_and_renders_the_same_frames(settings, monkeypatch):
    spec = load_companion("default")
    first = _store(settings).resolve(spec)
    path = _cache_file(settings, first.identity.key)
    assert path.is_file()
    frames = MeshWarpRenderer(size=SIZE, mouth_interior=True).render_chunk(
        first.prepared, _values()
    )

    def no_rasterising(self, identity):
        raise AssertionError("prepare ran although its state was cached")

    monkeypatch.setattr(MeshWarpRenderer, "prepare", no_rasterising)
    again = _store(settings).resolve(spec)
    assert again.prepared is not first.prepared
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    np.testing.assert_array_equal(renderer.render_chunk(again.prepared, _values()), frames)
    assert not np.array_equal(frames[0], frames[2])  # the values move the face


@pytest.mark.parametrize("damage", ["garbage", "foreign"])
def test_a_broken_or_foreign_file_is_made_again(settings, damage, caplog):
    spec = load_companion("default")
    first = _store(settings).resolve(spec)
    path = _cache_file(settings, first.identity.key)
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    else:  # readable, but a field lies outside the frame
        arrays = dict(np.load(path))
        arrays[next(k for k in arrays if k.endswith(".at"))] = np.array([SIZE * 4, 0])
        np.savez(path, **arrays)
    with caplog.at_level(logging.WARNING):
        again = _store(settings).resolve(spec)
    assert any("again" in r.getMessage() for r in caplog.records)
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    np.testing.assert_array_equal(
        renderer.render_chunk(again.prepared, _values()),
        renderer.render_chunk(first.prepared, _values()),
    )
    assert dict(np.load(path)).keys() == first.prepared.fields.to_arrays().keys()  # rewritten


def test_without_the_cache_nothing_is_written(settings):
    uncached = dataclasses.replace(settings, use_cache=False)
    resolved = _store(uncached).resolve(load_companion("default"))
    assert not _cache_file(settings, resolved.identity.key).exists()
