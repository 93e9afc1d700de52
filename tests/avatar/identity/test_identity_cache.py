"""The identity cache: hits equal fresh derivations, keys track inputs, broken entries heal."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.cache_root import CACHE_ENV, cache_root
from avatar.companion import CompanionSpec
from avatar.identity import AvatarIdentity, derive_identity
from avatar.identity import cache as idcache
from avatar.identity.derive import IdentitySettings


def spec_of(*images: str) -> CompanionSpec:
    return CompanionSpec(id="test", name="Test", images=list(images), style={}, voice=None)


def derive(
    settings: IdentitySettings, spec: CompanionSpec, *, size: int, **changes: object
) -> AvatarIdentity:
    """derive_identity with the configured settings, some changed (``eye_distance`` passes)."""
    extra = {k: changes.pop(k) for k in ("eye_distance",) if k in changes}
    settings = dataclasses.replace(settings, **changes)
    return derive_identity(spec, size=size, settings=settings, **extra)


def assert_same(a: AvatarIdentity, b: AvatarIdentity) -> None:
    for name in ("portrait", "landmarks", "triangles"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.masks.keys() == b.masks.keys()
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert (a.blendshapes, a.head_pose, a.key) == (b.blendshapes, b.head_pose, b.key)
    assert (a.source_index, a.source_path, a.selection) == (
        b.source_index,
        b.source_path,
        b.selection,
    )


@pytest.fixture(scope="module")
def image_path(images_dir: Path) -> str:
    return str(images_dir / "astronaut.png")


def test_hit_equals_fresh_and_is_read_from_disk(
    identity_settings, image_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = spec_of(image_path)
    cold = derive(identity_settings, spec, size=256, cache_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="avatar.identity.derive"):
        hit = derive(identity_settings, spec, size=256, cache_dir=tmp_path)
    assert_same(cold, hit)
    messages = [r.getMessage() for r in caplog.records]
    assert any("loaded from cache" in m for m in messages)
    assert not any("derived in" in m for m in messages)
    entries = list((tmp_path / "identity").iterdir())
    assert [e.name for e in entries] == [cold.key]  # no temporary folders left behind
    assert {p.name for p in entries[0].iterdir()} == {"arrays.npz", "meta.json"}


def test_key_changes_with_settings_and_bytes(
    identity_settings, image_path: str, tmp_path: Path
) -> None:
    spec = spec_of(image_path)
    base = derive(identity_settings, spec, size=256, cache_dir=tmp_path)
    assert derive(identity_settings, spec, size=256, cache_dir=tmp_path).key == base.key
    other_size = derive(identity_settings, spec, size=192, cache_dir=tmp_path)
    other_eyes = derive(identity_settings, spec, size=256, cache_dir=tmp_path, eye_distance=0.28)
    assert len({base.key, other_size.key, other_eyes.key}) == 3
    copy = tmp_path / "copy.png"
    copy.write_bytes(Path(image_path).read_bytes())
    same_bytes = derive(identity_settings, spec_of(str(copy)), size=256, cache_dir=tmp_path)
    assert same_bytes.key == base.key  # keyed by content, not by path
    changed = cv2.imread(image_path)
    changed[0, 0] ^= 1  # one pixel, far from the face
    cv2.imwrite(str(copy), changed)
    assert (
        derive(identity_settings, spec_of(str(copy)), size=256, cache_dir=tmp_path).key != base.key
    )
    assert idcache.cache_key([b"ab", b"c"], {}) != idcache.cache_key([b"a", b"bc"], {})
    assert idcache.cache_key([b"x"], {"a": 1}) != idcache.cache_key([b"x"], {"a": 2})


def test_corrupt_entry_is_a_miss_and_rewritten(
    identity_settings, image_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = spec_of(image_path)
    first = derive(identity_settings, spec, size=256, cache_dir=tmp_path)
    entry = idcache.entry_dir(tmp_path, first.key)
    (entry / "arrays.npz").write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="avatar.identity.cache"):
        again = derive(identity_settings, spec, size=256, cache_dir=tmp_path)
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert_same(first, again)
    assert_same(first, idcache.load_identity(tmp_path, first.key))  # healed on disk
    (entry / "meta.json").unlink()
    assert idcache.load_identity(tmp_path, first.key) is None


def test_use_cache_false_writes_nothing(identity_settings, image_path: str, tmp_path: Path) -> None:
    derive(identity_settings, spec_of(image_path), size=256, cache_dir=tmp_path, use_cache=False)
    assert not any(tmp_path.iterdir())


def test_cache_root_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root() == Path("~/.cache/companion-avatar").expanduser()


def _cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "avatar.identity.cache" and r.levelno == logging.WARNING
    ]


def test_cache_under_a_file_warns_and_derives_uncached(
    identity_settings, image_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "sub"  # NotADirectoryError for any user, root included
    with caplog.at_level(logging.WARNING, logger="avatar.identity.cache"):
        identity = derive(identity_settings, spec_of(image_path), size=256, cache_dir=root)
    assert identity.portrait.shape == (256, 256, 3) and len(identity.key) == 64
    [warning] = _cache_warnings(caplog)
    assert str(root) in warning and "NotADirectoryError" in warning
    assert "carrying on without caching" in warning
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]
    assert blocker.read_text() == "not a folder"


def test_read_only_cache_warns_and_derives_uncached(
    identity_settings, image_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "read-only"
    root.mkdir()
    root.chmod(0o555)
    try:
        probe = root / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("this user writes into read-only folders (root)")
        with caplog.at_level(logging.WARNING, logger="avatar.identity.cache"):
            identity = derive(identity_settings, spec_of(image_path), size=256, cache_dir=root)
        assert identity.portrait.shape == (256, 256, 3)
        [warning] = _cache_warnings(caplog)
        assert str(root) in warning and "PermissionError" in warning
        assert not any(root.iterdir())
    finally:
        root.chmod(0o755)


def test_full_disk_leaves_nothing_half_written(
    default_identity_256: AvatarIdentity,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def full_disk(file: Path, **arrays: np.ndarray) -> None:
        Path(file).write_bytes(b"PK\x03\x04 part of")  # some of it reached the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))

    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", full_disk)
        with caplog.at_level(logging.WARNING, logger="avatar.identity.cache"):
            assert idcache.save_identity(tmp_path, default_identity_256) is None
    [warning] = _cache_warnings(caplog)
    assert str(tmp_path) in warning and os.strerror(errno.ENOSPC) in warning
    assert list((tmp_path / "identity").iterdir()) == []  # the temporary folder is gone
    assert idcache.load_identity(tmp_path, default_identity_256.key) is None
    entry = idcache.save_identity(tmp_path, default_identity_256)  # space again: cached
    assert entry == idcache.entry_dir(tmp_path, default_identity_256.key)
    assert_same(default_identity_256, idcache.load_identity(tmp_path, default_identity_256.key))
