"""Inference-only copies of Lightning checkpoints: the network's weights and its config."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["export_checkpoint", "net_key"]


def net_key(key: str) -> str:
    """LitModule state-dict key -> the network's own (drops ``net.`` and torch.compile's prefix)."""
    return key.removeprefix("net.").replace("_orig_mod.", "")


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, config_key: str) -> Path:
    """Write the ``net.*`` weights and ``checkpoint[config_key]`` of ``src`` to ``dst``.

    Optimizer, scheduler and loop state are dropped; the file is written atomically.

    Raises:
        KeyError: ``src`` has no ``config_key`` (not written by the expected LitModule).
    """
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    if config_key not in ckpt:
        raise KeyError(f"{src}: no {config_key!r} in the checkpoint")
    state = {net_key(k): v.clone() for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    out = {config_key: ckpt[config_key], "state_dict": state}
    for key in ("epoch", "global_step"):
        if key in ckpt:
            out[key] = ckpt[key]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    torch.save(out, tmp)
    os.replace(tmp, dst)
    return dst
