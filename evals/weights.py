"""The weights directory: external model files the project cannot ship, found and hash-checked.

One configured place (``weights.dir`` in ``configs/weights/registry.yaml``, default
``$AVATAR_WEIGHTS_DIR``) plus torch's hub cache for torchvision trunks. Each registry entry names
the file, its sha256 (full or a prefix of >= 8 hex digits; null = not pinned), its licence and
what uses it. Nothing is downloaded. Offline runs skip what is absent with a reason; strict runs
(the scheduled nightly, ``weights.strict=true``) fail on it.

    python -m evals.weights list          # every entry and whether it resolves
    python -m evals.weights hash NAME     # print the sha256 of a present file, to pin it
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from avatar.errors import ConfigValueError, WeightsMissingError

log = logging.getLogger(__name__)

__all__ = [
    "WeightSpec",
    "WeightsRegistry",
    "active_registry",
    "external_status",
    "load_registry",
    "main",
    "set_active_registry",
]

_SOURCES = ("weights_dir", "torch_hub")


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry.

    Attributes:
        name: registry key (e.g. ``syncnet_v2``).
        file: path relative to the weights directory (or the hub cache's ``checkpoints/``).
        sha256: full hex digest or a prefix of >= 8 hex digits; None when not pinned.
        licence: the licence or terms of the file.
        used_by: what the file is for.
        source: ``weights_dir`` or ``torch_hub`` (also looked up in the weights directory).
    """

    name: str
    file: str
    sha256: str | None
    licence: str
    used_by: str
    source: str

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ConfigValueError(f"weights.{self.name}.source must be one of {_SOURCES}")
        digest = self.sha256
        if digest is not None and (
            len(digest) < 8 or any(c not in "0123456789abcdef" for c in digest.lower())
        ):
            raise ConfigValueError(f"weights.{self.name}.sha256 must be >= 8 hex digits or null")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class WeightsRegistry:
    """Resolves registry names to verified files.

    Args:
        directory: the weights directory (None: none configured).
        entries: ``{name: {file, sha256, licence, used_by, source}}``.
        strict: absent or mismatching files raise even when a caller does not require them.
        hub_dir: torch's hub directory (None: ``torch.hub.get_dir()``).

    Example:
        >>> reg = WeightsRegistry(directory=None, entries={"x": {"file": "x.bin", "sha256": None,
        ...     "licence": "MIT", "used_by": "doc", "source": "weights_dir"}}, strict=False)
        >>> reg.resolve("x", required=False) is None, reg.reason("x")
        (True, 'skipped: weights x absent (no weights directory: set AVATAR_WEIGHTS_DIR or weights.dir)')
    """  # noqa: E501

    def __init__(
        self,
        *,
        directory: str | Path | None,
        entries: Mapping[str, Mapping[str, Any]],
        strict: bool,
        hub_dir: str | Path | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser() if directory else None
        self.specs = {name: WeightSpec(name=name, **dict(e)) for name, e in entries.items()}
        self.strict = bool(strict)
        self._hub_dir = Path(hub_dir) if hub_dir else None
        self._reasons: dict[str, str] = {}
        self._verified: dict[tuple[str, int, float], str] = {}

    def hub_checkpoints(self) -> Path:
        """torch's hub cache folder of checkpoints (``$TORCH_HOME/hub/checkpoints``)."""
        if self._hub_dir is None:
            import torch

            self._hub_dir = Path(torch.hub.get_dir())
        return self._hub_dir / "checkpoints"

    def candidates(self, name: str) -> list[Path]:
        """Where ``name`` is looked for, in order."""
        spec = self.spec(name)
        paths = [self.directory / spec.file] if self.directory else []
        if spec.source == "torch_hub":
            paths.append(self.hub_checkpoints() / Path(spec.file).name)
        return paths

    def spec(self, name: str) -> WeightSpec:
        if name not in self.specs:
            raise ConfigValueError(f"unknown weights {name!r}; registry has {sorted(self.specs)}")
        return self.specs[name]

    def _check(self, spec: WeightSpec, path: Path) -> str | None:
        """None when the file matches its pinned hash (or none is pinned), else the problem."""
        if spec.sha256 is None:
            log.warning(
                "weights %s at %s are not pinned (sha256: null in the registry)", spec.name, path
            )
            return None
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime)
        if key not in self._verified:
            self._verified[key] = _sha256(path)
        digest = self._verified[key]
        if not digest.startswith(spec.sha256.lower()):
            return f"sha256 of {path} is {digest[:16]}..., registry pins {spec.sha256}"
        return None

    def resolve(self, name: str, *, required: bool) -> Path | None:
        """The verified path of ``name``, or None (with :meth:`reason`) when it is absent.

        Args:
            name: registry key.
            required: raise instead of returning None (also when the registry is strict).

        Raises:
            WeightsMissingError: absent or hash mismatch, when required or strict.
        """
        spec = self.spec(name)
        tried = self.candidates(name)
        problem = None
        for path in tried:
            if path.is_file():
                problem = self._check(spec, path)
                if problem is None:
                    log.debug("weights %s: %s", name, path)
                    self._reasons.pop(name, None)
                    return path
                break
        if problem is None:
            where = ", ".join(str(p) for p in tried) or (
                "no weights directory: set AVATAR_WEIGHTS_DIR or weights.dir"
            )
            problem = f"absent ({where})"
        reason = f"skipped: weights {name} {problem}"
        self._reasons[name] = reason
        if required or self.strict:
            raise WeightsMissingError(
                f"weights {name} ({spec.file}, used by {spec.used_by}, licence: {spec.licence}) "
                f"{problem}"
            )
        log.info(reason)
        return None

    def reason(self, name: str) -> str | None:
        """Why the last :meth:`resolve` of ``name`` found nothing (None if it did)."""
        return self._reasons.get(name)

    def status(self) -> dict[str, str]:
        """``{name: "ok: path" | "skipped: ..."}`` for every entry (never raises)."""
        out = {}
        strict, self.strict = self.strict, False
        try:
            for name in self.specs:
                path = self.resolve(name, required=False)
                out[name] = f"ok: {path}" if path else str(self.reason(name))
        finally:
            self.strict = strict
        return out


def external_status(
    external: Mapping[str, str], registry: WeightsRegistry, implemented: Collection[str] = ()
) -> dict[str, str]:
    """Skip reasons of metrics that need external weights, ``{metric key: weights name}``.

    Metrics in ``implemented`` (keys of the suite's metrics) get no entry when their weights
    are present: they are scored (and skip with the registry's reason themselves otherwise).

    Raises:
        WeightsMissingError: the registry is strict and a file is absent or mismatching.
    """
    out = {}
    for key, name in external.items():
        path = registry.resolve(name, required=False)
        if path and key in implemented:
            continue
        out[key] = (
            f"skipped: weights {name} present ({path}) but this metric is not implemented yet"
            if path
            else str(registry.reason(name))
        )
    return out


_ACTIVE: list[WeightsRegistry] = []


def set_active_registry(registry: WeightsRegistry | None) -> None:
    """Makes ``registry`` (a run's configured one) what :func:`active_registry` returns."""
    _ACTIVE[:] = [registry] if registry is not None else []


def active_registry() -> WeightsRegistry:
    """The run's registry (:func:`set_active_registry`), else ``configs/weights/registry.yaml``.

    Metrics that load external weights by default resolve them here.
    """
    return _ACTIVE[0] if _ACTIVE else load_registry()


_ENV_INTERPOLATION = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")


def _resolve_env(value: Any, where: str) -> Any:
    """``value`` with ``${oc.env:NAME,default}`` resolved as OmegaConf would, recursively.

    The whole string must be the interpolation (the default is parsed as YAML, so ``null`` is
    None); any other ``${...}`` raises, rather than reaching a caller unresolved.
    """
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    match = _ENV_INTERPOLATION.fullmatch(value.strip())
    if match is None:
        raise ConfigValueError(f"{where}: only ${{oc.env:NAME,default}} is supported, got {value}")
    name, default = match.groups()
    if name in os.environ:
        return os.environ[name]
    if default is None:
        raise ConfigValueError(f"{where}: environment variable {name} is not set")
    return yaml.safe_load(default.strip())


def _read_registry_yaml(path: Path) -> dict[str, Any]:
    """The registry file as plain data (the Hydra group file, read without OmegaConf)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigValueError(f"{path} must hold a mapping, got {type(data).__name__}")
    return _resolve_env(data, "weights")  # type: ignore[no-any-return]


def load_registry(cfg: Mapping[str, Any] | None = None) -> WeightsRegistry:
    """A registry from a ``weights`` config node, or from ``configs/weights/registry.yaml``.

    Raises:
        ConfigValueError: the node lacks ``dir``, ``entries`` or ``strict`` (their one home is
            the registry file).
    """
    if cfg is None:
        from avatar.companion import configs_dir

        cfg = _read_registry_yaml(configs_dir() / "weights" / "registry.yaml")
    missing = sorted({"dir", "entries", "strict"} - set(cfg))
    if missing:
        raise ConfigValueError(f"weights config lacks {missing}")
    return WeightsRegistry(directory=cfg["dir"], entries=cfg["entries"], strict=cfg["strict"])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``list`` the registry as JSON, or ``hash NAME`` of a present file."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    reg = load_registry()
    if args[:1] == ["list"] or not args:
        status = reg.status()
        rows = {
            n: {
                "file": s.file,
                "sha256": s.sha256,
                "licence": s.licence,
                "used_by": s.used_by,
                "status": status[n],
            }
            for n, s in reg.specs.items()
        }
        sys.stdout.write(json.dumps({"dir": str(reg.directory), "entries": rows}, indent=2) + "\n")
        return 0
    if args[0] == "hash" and len(args) == 2:
        for path in reg.candidates(args[1]):
            if path.is_file():
                sys.stdout.write(f"{_sha256(path)}  {path}\n")
                return 0
        log.error("weights %s not found in %s", args[1], reg.candidates(args[1]))
        return 2
    sys.stderr.write("usage: python -m evals.weights [list | hash NAME]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
