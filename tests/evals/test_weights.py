"""The weights registry: absent files skip with a reason, strict runs fail, hashes are checked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from avatar.errors import ConfigValueError, WeightsMissingError
from evals import weights
from evals.weights import WeightsRegistry, external_status, load_registry


def _registry(
    tmp_path: Path, sha256: str | None, *, strict: bool = False, trunk_sha256: str = "7be5be79"
) -> WeightsRegistry:
    entries = {
        "net": {
            "file": "sub/net.bin",
            "sha256": sha256,
            "licence": "MIT",
            "used_by": "a test",
            "source": "weights_dir",
        },
        "trunk": {
            "file": "alexnet-owt-7be5be79.pth",
            "sha256": trunk_sha256,
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
    path = tmp_path / "w" / "sub" / "net.bin"
    digest = _write(path, b"weights")
    assert _registry(tmp_path, digest).resolve("net", required=True) == path
    assert _registry(tmp_path, digest[:8]).resolve("net", required=True) == path  # a prefix
    assert _registry(tmp_path, None).resolve("net", required=True) == path  # not pinned
    bad = _registry(tmp_path, "0" * 64)
    assert bad.resolve("net", required=False) is None
    assert bad.reason("net") == (
        f"skipped: weights net sha256 of {path} is {digest[:16]}..., registry pins {'0' * 64}"
    )
    with pytest.raises(WeightsMissingError, match="registry pins"):
        bad.resolve("net", required=True)
    with pytest.raises(ConfigValueError, match="hex"):
        _registry(tmp_path, "xyz")


def test_torch_hub_trunks_are_found_in_the_hub_cache(tmp_path: Path) -> None:
    path = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    digest = _write(path, b"alexnet")
    reg = _registry(tmp_path, None, trunk_sha256=digest[:8])  # pinned to the file written
    assert reg.candidates("trunk") == [tmp_path / "w" / "alexnet-owt-7be5be79.pth", path]
    assert reg.resolve("trunk", required=True) == path
    torchvision_pin = _registry(tmp_path, None)  # 7be5be79: not the hash of these bytes
    assert torchvision_pin.resolve("trunk", required=False) is None
    assert torchvision_pin.reason("trunk") == (
        f"skipped: weights trunk sha256 of {path} is {digest[:16]}..., registry pins 7be5be79"
    )


def test_external_status_and_the_configured_registry(tmp_path: Path, monkeypatch) -> None:
    reg = _registry(tmp_path, None)
    path = tmp_path / "w" / "sub" / "net.bin"
    status = external_status({"lipsync/lse": "net"}, reg)
    assert status == {"lipsync/lse": f"skipped: weights net absent ({path})"}
    _write(path, b"x")
    present = f"skipped: weights net present ({path}) but this metric is not implemented yet"
    assert external_status({"lipsync/lse": "net"}, reg) == {"lipsync/lse": present}
    assert external_status({"lipsync/lse": "net"}, reg, implemented={"lipsync/lse"}) == {}
    monkeypatch.setenv("AVATAR_WEIGHTS_DIR", str(tmp_path / "w"))
    configured = load_registry()
    assert configured.directory == tmp_path / "w"
    assert {"syncnet_v2", "arcface", "lpips_alex", "lpips_vgg"} <= set(configured.specs)
    assert all(s.licence and s.used_by for s in configured.specs.values())


def test_cli_lists_and_hashes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AVATAR_WEIGHTS_DIR", str(tmp_path))
    path = tmp_path / "syncnet_v2.model"
    assert weights.main(["list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["dir"] == str(tmp_path)
    assert listed["entries"]["syncnet_v2"]["file"] == "syncnet_v2.model"
    assert (
        listed["entries"]["syncnet_v2"]["status"] == f"skipped: weights syncnet_v2 absent ({path})"
    )
    assert weights.main(["hash", "syncnet_v2"]) == 2
    digest = _write(path, b"syncnet")
    assert weights.main(["hash", "syncnet_v2"]) == 0
    assert capsys.readouterr().out == f"{digest}  {path}\n"
