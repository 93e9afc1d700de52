"""The weights registry: absent files skip with a reason, strict runs fail, hashes are checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from avatar.errors import ConfigValueError, WeightsMissingError
from evals import weights
from evals.weights import WeightsRegistry, external_status, load_registry


def _registry(tmp_path: Path, sha256: str | None, *, strict: bool = False) -> WeightsRegistry:
    entries = {
        "net": {"file": "sub/net.bin", "sha256": sha256, "licence": "MIT", "used_by": "a test"},
        "trunk": {
            "file": "alexnet-owt-7be5be79.pth",
            "sha256": "7be5be79",
            "licence": "BSD-3-Clause",
            "used_by": "LPIPS",
            "source": "torch_hub",
        },
    }
    return WeightsRegistry(
        directory=tmp_path / "w", entries=entries, strict=strict, hub_dir=tmp_path / "hub"
    )


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_absent_weights_skip_with_a_reason_or_fail_when_required(tmp_path: Path) -> None:
    reg = _registry(tmp_path, None)
    assert reg.resolve("net", required=False) is None
    assert reg.reason("net") == f"skipped: weights net absent ({tmp_path / 'w' / 'sub/net.bin'})"
    with pytest.raises(WeightsMissingError, match="net .*used by a test.*absent"):
        reg.resolve("net", required=True)
    with pytest.raises(WeightsMissingError):
        _registry(tmp_path, None, strict=True).resolve("net", required=False)
    with pytest.raises(ConfigValueError, match="unknown weights"):
        reg.resolve("nope", required=False)


def test_present_weights_are_hash_checked(tmp_path: Path) -> None:
    digest = _write(tmp_path / "w" / "sub" / "net.bin", b"weights")
    assert _registry(tmp_path, digest).resolve("net", required=True) == tmp_path / "w/sub/net.bin"
    assert _registry(tmp_path, digest[:8]).resolve("net", required=True) is not None  # a prefix
    assert _registry(tmp_path, None).resolve("net", required=True) is not None  # not pinned
    bad = _registry(tmp_path, "0" * 64)
    assert bad.resolve("net", required=False) is None
    assert "sha256 of" in str(bad.reason("net"))
    with pytest.raises(WeightsMissingError, match="registry pins"):
        bad.resolve("net", required=True)
    with pytest.raises(ConfigValueError, match="hex"):
        _registry(tmp_path, "xyz")


def test_torch_hub_trunks_are_found_in_the_hub_cache(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    _write(path, b"alexnet")
    reg = _registry(tmp_path, None)
    monkeypatch.setattr(weights, "_sha256", lambda p: "7be5be79" + "0" * 56)
    assert reg.resolve("trunk", required=True) == path
    assert reg.candidates("trunk")[0] == tmp_path / "w" / "alexnet-owt-7be5be79.pth"


def test_external_status_and_the_configured_registry(tmp_path: Path, monkeypatch) -> None:
    reg = _registry(tmp_path, None)
    status = external_status({"lipsync/lse": "net"}, reg)
    assert status["lipsync/lse"].startswith("skipped: weights net absent")
    _write(tmp_path / "w" / "sub" / "net.bin", b"x")
    assert "not implemented yet" in external_status({"lipsync/lse": "net"}, reg)["lipsync/lse"]
    monkeypatch.setenv("AVATAR_WEIGHTS_DIR", str(tmp_path / "w"))
    configured = load_registry()
    assert configured.directory == tmp_path / "w"
    assert {"syncnet_v2", "arcface", "lpips_alex", "lpips_vgg"} <= set(configured.specs)
    assert all(s.licence and s.used_by for s in configured.specs.values())


def test_cli_lists_and_hashes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AVATAR_WEIGHTS_DIR", str(tmp_path))
    assert weights.main(["list"]) == 0
    assert '"syncnet_v2"' in capsys.readouterr().out
    assert weights.main(["hash", "syncnet_v2"]) == 2
    digest = _write(tmp_path / "syncnet_v2.model", b"syncnet")
    assert weights.main(["hash", "syncnet_v2"]) == 0
    assert capsys.readouterr().out.startswith(digest)
