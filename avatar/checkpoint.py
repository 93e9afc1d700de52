"""Networks saved with their resolved config, loadable with nothing but torch and the file.

One on-disk format serves every network of the workbench (the audio-to-motion model, the sync
expert, renderers to come). A checkpoint is a ``torch.save``'d dict:

- ``"net_config"`` (:data:`CONFIG_KEY`): ``{"_target_": "pkg.module.Class", **kwargs}``, the
  class and the constructor keyword arguments that rebuild the network (:func:`net_config`);
- ``"state_dict"``: the network's weights, under its own keys in an inference checkpoint
  (:func:`save_network`, :func:`export_checkpoint`), or the LitModule's (``net.``-prefixed,
  with metrics and other parameters beside them) in a Lightning checkpoint;
- ``"format_version"`` (:data:`FORMAT_VERSION`) and, when known, ``"epoch"`` and
  ``"global_step"``.

LitModules store the first and third in ``on_save_checkpoint`` (:func:`store_net_config`),
so a Lightning checkpoint and an exported one load alike with :func:`load_network`. The class
is rebuilt with :mod:`importlib` (no Hydra, no ``configs/``), and files are read with
``torch.load(weights_only=True)``. This module never imports Lightning, Hydra or OmegaConf.

Example:
    >>> import tempfile
    >>> from avatar.modules.sync_expert import SyncExpert
    >>> net = SyncExpert(
    ...     sample_rate=16000, win_length=400, hop_length=160, n_mels=64, f_min=50.0, f_max=8000.0,
    ...     hops_per_frame=4, window=5, video_channels=(4,), crop_shape=(48, 96),
    ...     audio_channels=4, hidden=4, embed_dim=4,
    ... )
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_network(f"{tmp}/expert.ckpt", net)
    ...     type(load_network(path, expected=SyncExpert)).__name__, read_net_config(path)["hidden"]
    ('SyncExpert', 4)
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, overload

import torch
from torch import nn

from avatar.errors import WeightsMissingError

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_KEY",
    "FORMAT_VERSION",
    "RENDERER_KEY",
    "build_network",
    "export_checkpoint",
    "load_network",
    "net_config",
    "net_key",
    "read_net_config",
    "read_renderer_config",
    "save_network",
    "store_net_config",
]

CONFIG_KEY = "net_config"
"""Checkpoint key of the network's resolved config (``_target_`` + constructor kwargs)."""
FORMAT_VERSION = 1
"""Version of the layout above, stored under ``"format_version"``; newer files are refused."""
VERSION_KEY = "format_version"
RENDERER_KEY = "renderer"
"""Checkpoint key of a renderer's own config (``_target_`` + kwargs), in renderer checkpoints."""
_LOOP_KEYS = ("epoch", "global_step")

M = TypeVar("M", bound=nn.Module)


def _unwrap(net: nn.Module) -> nn.Module:
    """The module itself when ``net`` is a ``torch.compile`` wrapper."""
    return getattr(net, "_orig_mod", net)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def net_config(net: nn.Module) -> dict[str, Any]:
    """The config that rebuilds ``net``: ``{"_target_": "pkg.module.Class", **net.config}``.

    Args:
        net: a network exposing its constructor kwargs as ``net.config`` (plain Python values:
            ints, floats, strings, lists); a ``torch.compile`` wrapper is unwrapped.

    Raises:
        TypeError: ``net`` has no ``config`` dict.
    """
    net = _unwrap(net)
    config = getattr(net, "config", None)
    if not isinstance(config, Mapping):
        raise TypeError(f"{_qualname(type(net))} has no `config` dict of constructor kwargs")
    return {"_target_": _qualname(type(net)), **config}


def net_key(key: str) -> str:
    """LitModule state-dict key -> the network's own (drops ``net.`` and torch.compile's prefix)."""
    return key.removeprefix("net.").replace("_orig_mod.", "")


def store_net_config(checkpoint: dict[str, Any], net: nn.Module) -> None:
    """Put ``net``'s config and the format version in a Lightning checkpoint dict (in place).

    Call it from a LitModule's ``on_save_checkpoint`` with the injected network.
    """
    checkpoint[CONFIG_KEY] = net_config(net)
    checkpoint[VERSION_KEY] = FORMAT_VERSION


def _resolve(target: str) -> Any:
    """The object named ``pkg.module.Class`` (or ``pkg.module.Outer.Inner``), or None."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name, None)
        return obj
    return None


def build_network(
    config: Mapping[str, Any], *, expected: type[nn.Module] | None = None, source: str = "config"
) -> nn.Module:
    """A fresh network from :func:`net_config` output (random weights, train mode).

    Args:
        config: ``{"_target_": "pkg.module.Class", **constructor kwargs}``.
        expected: the class (or a base of it) the target must be; None: any ``nn.Module``.
        source: what ``config`` came from, for error messages (the checkpoint path).

    Raises:
        WeightsMissingError: no ``_target_``, a target that is not an ``nn.Module`` subclass
            or not ``expected``, or kwargs the constructor refuses.
    """
    kwargs = dict(config)
    target = kwargs.pop("_target_", None)
    if not isinstance(target, str) or not target:
        raise WeightsMissingError(f"{source}: the network config has no '_target_' class")
    cls = _resolve(target)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise WeightsMissingError(f"{source}: target {target!r} is not a torch nn.Module class")
    if expected is not None and not issubclass(cls, expected):
        raise WeightsMissingError(f"{source}: holds a {target}, not a {_qualname(expected)}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WeightsMissingError(
            f"{source}: cannot build {target} from its config: {exc}"
        ) from exc


def _read(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, checked for :data:`CONFIG_KEY` and ``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsMissingError(f"checkpoint {path} is absent")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling, zip and EOF errors alike: the file is no checkpoint
        raise WeightsMissingError(f"{path}: not a readable torch checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsMissingError(
            f"{path}: not a network checkpoint (needs {CONFIG_KEY!r} and 'state_dict'; "
            f"found {found})"
        )
    version = ckpt.get(VERSION_KEY, FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsMissingError(
            f"{path}: checkpoint format {version!r} is newer than this code's {FORMAT_VERSION}"
        )
    if not isinstance(ckpt[CONFIG_KEY], Mapping):
        raise WeightsMissingError(f"{path}: {CONFIG_KEY!r} is not a dict")
    return ckpt


def _network_state(
    state: Mapping[str, torch.Tensor], own_keys: set[str]
) -> dict[str, torch.Tensor]:
    """The network's part of a state dict: its own keys as they are, else the ``net.*`` ones."""
    state = {k.replace("_orig_mod.", ""): v for k, v in state.items()}
    if set(state) == own_keys:  # an inference checkpoint
        return state
    lit = {net_key(k): v for k, v in state.items() if k.startswith("net.")}
    return lit or state  # a LitModule's state dict, or mismatched weights (reported by the caller)


def _fit(net: nn.Module, ckpt: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """Load the checkpoint's weights into ``net`` (strict); returns the network's state dict."""
    state = _network_state(ckpt["state_dict"], set(net.state_dict()))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsMissingError(f"{path}: weights do not fit the stored config: {exc}") from exc
    return state


def read_net_config(path: str | os.PathLike) -> dict[str, Any]:
    """The ``{"_target_": ..., **kwargs}`` config stored in the checkpoint at ``path``.

    Raises:
        WeightsMissingError: the file is absent or not a checkpoint of this format.
    """
    return dict(_read(path)[CONFIG_KEY])


def read_renderer_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The renderer config stored in the checkpoint at ``path`` (None: a plain network).

    Raises:
        WeightsMissingError: the file is absent or not a checkpoint of this format.
    """
    entry = _read(path).get(RENDERER_KEY)
    if entry is not None and not isinstance(entry, Mapping):
        raise WeightsMissingError(f"{path}: {RENDERER_KEY!r} is not a dict")
    return dict(entry) if entry is not None else None


@overload
def load_network(
    path: str | os.PathLike, *, expected: type[M], map_location: str | torch.device = ...
) -> M: ...
@overload
def load_network(
    path: str | os.PathLike, *, expected: None = None, map_location: str | torch.device = ...
) -> nn.Module: ...
def load_network(
    path: str | os.PathLike,
    *,
    expected: type[nn.Module] | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """The network of an inference or Lightning checkpoint, in eval mode.

    Args:
        path: the checkpoint (see the module docstring for the format).
        expected: the class (or a base of it) the stored network must be; None: any.
        map_location: where the weights go (``torch.load``'s argument).

    Raises:
        WeightsMissingError: the file is absent, not a checkpoint of this format, holds a
            network of another class, or weights that do not fit the stored config.
    """
    path = Path(path)
    ckpt = _read(path, map_location)
    net = build_network(ckpt[CONFIG_KEY], expected=expected, source=str(path))
    _fit(net, ckpt, path)
    log.debug("loaded %s from %s", type(net).__name__, path)
    return net.to(torch.device(map_location)).eval()


def _write(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_network(
    path: str | os.PathLike,
    net: nn.Module,
    config: Mapping[str, Any] | None = None,
    *,
    epoch: int | None = None,
    global_step: int | None = None,
    renderer: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``net``'s weights and config to ``path`` (atomically) as an inference checkpoint.

    Args:
        path: destination file (parents are created).
        net: the network (a ``torch.compile`` wrapper is unwrapped).
        config: its ``{"_target_": ..., **kwargs}``; None: :func:`net_config` of ``net``.
        epoch: training epoch, stored when given.
        global_step: optimizer steps, stored when given.
        renderer: for a renderer's network, the renderer's ``{"_target_": ..., **kwargs}``
            (without ``net`` and ``device``), so :func:`avatar.load_renderer` rebuilds it.

    Returns:
        ``path``.
    """
    net = _unwrap(net)
    payload: dict[str, Any] = {
        CONFIG_KEY: dict(config if config is not None else net_config(net)),
        "state_dict": net.state_dict(),
        VERSION_KEY: FORMAT_VERSION,
    }
    for key, value in zip(_LOOP_KEYS, (epoch, global_step), strict=True):
        if value is not None:
            payload[key] = int(value)
    if renderer is not None:
        payload[RENDERER_KEY] = dict(renderer)
    return _write(path, payload)


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write an inference-only copy of a Lightning checkpoint (optimizer and loop state dropped).

    The network's tensors are copied as stored (dtype and values unchanged), after checking
    that they fit the network the config rebuilds.

    Args:
        src: a checkpoint written by a LitModule that calls :func:`store_net_config`.
        dst: the inference checkpoint to write (atomically).

    Returns:
        ``dst``.

    Raises:
        WeightsMissingError: as :func:`load_network`, for ``src``.
    """
    src = Path(src)
    ckpt = _read(src)
    net = build_network(ckpt[CONFIG_KEY], source=str(src))
    state = _fit(net, ckpt, src)
    payload: dict[str, Any] = {
        CONFIG_KEY: dict(ckpt[CONFIG_KEY]),
        "state_dict": {k: v.clone() for k, v in state.items()},
        VERSION_KEY: FORMAT_VERSION,
    }
    payload.update({k: ckpt[k] for k in (*_LOOP_KEYS, RENDERER_KEY) if k in ckpt})
    return _write(dst, payload)
