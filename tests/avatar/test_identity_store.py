"""The in-memory identity store: one derivation per content, bounded, re-keyed on edits,
failures not remembered, cancellable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import pytest

import avatar.identity_store as store_module
from avatar.cancel import CancelToken
from avatar.companion import CompanionSpec, load_image
from avatar.errors import Cancelled, ConfigValueError, ImageReadError
from avatar.identity_store import IdentityStore
from tests.fakes import FakeRenderer
from tests.settings import image_limits


@pytest.fixture
def portrait(tmp_path: Path) -> Path:
    path = tmp_path / "astra.png"
    cv2.imwrite(str(path), load_image("embedded:astronaut", **image_limits())[..., ::-1])
    return path


def _spec(*images: str | Path) -> CompanionSpec:
    return CompanionSpec(id="c", name="C", images=[str(i) for i in images])


def _store(settings, capacity: int = 4) -> IdentityStore:
    return IdentityStore(renderer=FakeRenderer(size=64), settings=settings, capacity=capacity)


def test_a_companion_is_derived_once_and_its_images_hashed_once(
    identity_settings, portrait, monkeypatch
):
    hashed = []
    real_key = store_module.identity_key
    monkeypatch.setattr(
        store_module, "identity_key", lambda *a, **k: hashed.append(1) or real_key(*a, **k)
    )
    store = _store(identity_settings)
    first = store.resolve(_spec(portrait))
    for _ in range(3):
        assert store.resolve(_spec(portrait)) is first
    assert (store.derivations, len(hashed), len(store)) == (1, 1, 1)
    assert first.prepared.key == first.identity.key and first.prepared.size == 64


def test_an_edited_image_is_a_new_identity(identity_settings, portrait):
    store = _store(identity_settings)
    before = store.resolve(_spec(portrait))
    image = cv2.imread(str(portrait))
    image[0, 0] ^= 7  # one pixel, far from the face: other bytes, another key
    cv2.imwrite(str(portrait), image)
    after = store.resolve(_spec(portrait))
    assert after.identity.key != before.identity.key and store.derivations == 2


def test_least_recently_used_leaves_first(identity_settings, portrait, tmp_path):
    mirrored = tmp_path / "mirror.png"
    cv2.imwrite(str(mirrored), cv2.imread(str(portrait))[:, ::-1])
    store = _store(identity_settings, capacity=1)
    a = store.resolve(_spec(portrait))
    store.resolve(_spec(mirrored))
    assert len(store) == 1
    again = store.resolve(_spec(portrait))  # evicted: resolved again (from the disk cache)
    assert again is not a and again.identity.key == a.identity.key and store.derivations == 3


def test_failures_are_not_remembered(identity_settings, portrait, tmp_path):
    store = _store(identity_settings)
    absent = tmp_path / "later.png"
    with pytest.raises(ImageReadError, match="later.png"):
        store.resolve(_spec(absent))
    absent.write_bytes(portrait.read_bytes())
    assert store.resolve(_spec(absent)).identity.size == 64 and store.derivations == 1


def test_a_cancelled_request_derives_nothing(identity_settings, portrait):
    store = _store(dataclasses.replace(identity_settings, use_cache=False))
    token = CancelToken()
    token.cancel("gone")
    with pytest.raises(Cancelled, match="gone"):
        store.resolve(_spec(portrait), cancel=token)
    assert store.derivations == 0 and len(store) == 0


def test_capacity_must_be_positive(identity_settings):
    with pytest.raises(ConfigValueError, match="memory.identities"):
        _store(identity_settings, capacity=0)
