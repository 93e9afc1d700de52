"""``load_renderer``: any renderer from a config, a YAML file or a trained checkpoint.

- a mapping ``{"_target_": "pkg.module.RendererClass", **kwargs}`` (a ``configs/renderer/``
  node) or the path of such a YAML file: the class is built with those arguments;
- a checkpoint written by :func:`avatar.checkpoint.save_network` with ``renderer=`` its
  config: the network is rebuilt from the file alone (no ``configs/`` needed) and handed to
  the renderer class as ``net``.

The class must be a :class:`~avatar.renderers.base.Renderer`; ``device`` is passed to
constructors that take one (a network renderer), so the same call serves CPU and GPU. Classes
are found with :mod:`importlib`, not Hydra, so serving needs no config tree.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from avatar.errors import ConfigValueError, WeightsMissingError
from avatar.renderers.base import Renderer

__all__ = ["load_renderer", "renderer_class"]

_YAML = (".yaml", ".yml")


def renderer_class(target: str) -> type[Renderer]:
    """The :class:`Renderer` subclass named ``pkg.module.Class``.

    Raises:
        ConfigValueError: the name does not import or is not a renderer class.
    """
    module, _, name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except ImportError as exc:
        raise ConfigValueError(f"renderer _target_ {target!r} does not import: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Renderer)):
        raise ConfigValueError(f"renderer _target_ {target!r} is not a Renderer class")
    return cls


def _build(config: Mapping[str, Any], source: str, **given: Any) -> Renderer:
    kwargs = dict(config)
    target = kwargs.pop("_target_", None)
    if not isinstance(target, str):
        raise ConfigValueError(f"{source}: a renderer config needs a '_target_' class name")
    cls = renderer_class(target)
    accepted = inspect.signature(cls).parameters
    for key, value in given.items():
        if key in accepted:
            kwargs[key] = value
        elif key == "net":
            raise ConfigValueError(f"{source}: {target} takes no trained network ('net')")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigValueError(f"{source}: cannot build {target}: {exc}") from exc


def load_renderer(
    source: str | os.PathLike[str] | Mapping[str, Any], *, device: str = "cpu"
) -> Renderer:
    """A renderer from a config mapping, a renderer YAML file or a renderer checkpoint.

    Args:
        source: see the module docstring.
        device: where a network renderer runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Raises:
        ConfigValueError: a config without ``_target_``, a target that is no renderer, or
            arguments its constructor refuses.
        WeightsMissingError: a path that does not exist, or a checkpoint that is not a
            renderer's (or whose weights do not fit its config).

    Example:
        >>> r = load_renderer({"_target_": "avatar.renderers.meshwarp.MeshWarpRenderer",
        ...                    "size": 256, "mouth_interior": True})
        >>> type(r).__name__, r.size
        ('MeshWarpRenderer', 256)
    """
    if isinstance(source, Mapping):
        return _build(source, "renderer config", device=device)
    path = Path(source)
    if not path.is_file():
        raise WeightsMissingError(f"renderer {path} does not exist")
    if path.suffix in _YAML:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(config, Mapping):
            raise ConfigValueError(f"{path}: a renderer YAML must hold a mapping")
        return _build(config, str(path), device=device)
    from avatar.checkpoint import load_network, read_renderer_config

    config = read_renderer_config(path)
    if config is None:
        raise WeightsMissingError(
            f"{path}: a network checkpoint without a renderer config (save it with "
            "avatar.checkpoint.save_network(..., renderer={...}))"
        )
    # read on the CPU: the renderer checks the device (a clear error without CUDA) and moves it
    return _build(config, str(path), net=load_network(path, map_location="cpu"), device=device)
