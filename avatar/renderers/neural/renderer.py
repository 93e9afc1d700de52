"""NeuralRenderer: warp-and-refine, mesh-warp's plain warp as the geometric prior and a trained
:class:`~avatar.modules.refine_unet.WarpRefineNet` painting what a warp cannot (the mouth's
inside, teeth, lip texture, shading, closing lids).

Per chunk of frames: mesh-warp renders the plain warp (no painted mouth or lids) on the CPU,
the region masks come from the same frames' warped landmarks, and the network refines the
whole chunk as one batch on the renderer's device. Nothing is kept between frames, so the
base :class:`~avatar.renderers.base.ChunkStream` streams it.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avatar.audio import Audio
from avatar.checkpoint import load_network
from avatar.errors import ConfigValueError, WeightsMissingError
from avatar.identity.types import AvatarIdentity
from avatar.modules.refine_unet import WarpRefineNet
from avatar.renderers.base import CHANNELS, Prepared, Renderer
from avatar.renderers.meshwarp import MeshWarpPrepared, MeshWarpRenderer
from avatar.renderers.meshwarp.renderer import WARPED, effective_channels
from avatar.renderers.neural.conditioning import audio_features, region_mask, resolve_device

log = logging.getLogger(__name__)

__all__ = ["NetInputs", "NeuralPrepared", "NeuralRenderer"]

_COLUMNS = [CHANNELS.index(c) for c in WARPED]


@dataclass(frozen=True)
class NeuralPrepared(Prepared):
    """One identity, ready to refine.

    Attributes:
        warp: mesh-warp's prepared state (the prior's fields and the portrait).
        source: (1, 3, S, S) float32 source portrait in [0, 1], on the renderer's device.
    """

    warp: MeshWarpPrepared
    source: torch.Tensor


@dataclass(frozen=True)
class NetInputs:
    """The network's inputs for T frames (all on the renderer's device, float32).

    Attributes:
        prior: (T, 3, S, S) plain mesh-warp frames in [0, 1].
        source: (T, 3, S, S) the source portrait in [0, 1] (an expanded view).
        region: (T, 1, S, S) region masks in [0, 1] (:func:`region_mask`).
        motion: (T, C) motion channel values in :data:`CHANNELS` order.
        audio: (T, A) audio features, or None for a net without audio.
    """

    prior: torch.Tensor
    source: torch.Tensor
    region: torch.Tensor
    motion: torch.Tensor
    audio: torch.Tensor | None

    def args(self) -> tuple[torch.Tensor, ...]:
        """Positional arguments of :meth:`WarpRefineNet.forward` / ``refine``."""
        base = (self.prior, self.source, self.region, self.motion)
        return base if self.audio is None else (*base, self.audio)


class NeuralRenderer(Renderer):
    """Warp-and-refine renderer (see the module docstring).

    Args:
        size: output size S in pixels (as mesh-warp's; divisible by ``2 ** net.depth``).
        ckpt_path: a :func:`avatar.checkpoint.save_network` checkpoint of a WarpRefineNet
            (inference or Lightning); needed unless ``net`` is given.
        net: the network itself (a notebook's, or :func:`avatar.load_renderer`'s from a
            renderer checkpoint); it wins over ``ckpt_path``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        chunk_frames: frames the network refines per batch (and per pipeline call).

    Raises:
        ConfigValueError: no ``ckpt_path`` and no ``net``, a ``net`` of another class or
            channel count, a size the net cannot take, a device that is not there.
        WeightsMissingError: ``ckpt_path`` is absent or holds another network.

    Example:
        >>> net = WarpRefineNet(motion_dim=len(CHANNELS), base_channels=4, depth=2)
        >>> r = NeuralRenderer(size=128, net=net, device="cpu", chunk_frames=4)
        >>> r.size, r.chunk_frames, r.renderer_config()["_target_"]
        (128, 4, 'avatar.renderers.neural.renderer.NeuralRenderer')
    """

    def __init__(
        self,
        *,
        size: int = 512,
        ckpt_path: str | Path | None = None,
        net: nn.Module | None = None,
        device: str = "cpu",
        chunk_frames: int = 8,
    ) -> None:
        self.prior = MeshWarpRenderer(size=size, mouth_interior=False, eyelids=False)
        self.size = self.prior.size
        ok = isinstance(chunk_frames, numbers.Integral) and not isinstance(chunk_frames, bool)
        if not (ok and chunk_frames >= 1):
            raise ConfigValueError(
                f"renderer.chunk_frames must be a whole number >= 1, got {chunk_frames!r}"
            )
        self.chunk_frames = int(chunk_frames)  # type: ignore[misc]  # per instance
        self.device = resolve_device(device)
        self.ckpt_path = None if ckpt_path is None else str(ckpt_path)
        self.net = self._network(net, ckpt_path).to(self.device).eval()
        if self.net.motion_dim != len(CHANNELS):
            raise ConfigValueError(
                f"the network takes {self.net.motion_dim} motion channels but renderers "
                f"give {len(CHANNELS)} ({', '.join(CHANNELS)})"
            )
        if self.size % 2**self.net.depth:
            raise ConfigValueError(
                f"renderer.size {self.size} must be divisible by 2**depth = "
                f"{2**self.net.depth} of the network (depth {self.net.depth})"
            )
        log.info(
            "neural renderer: %s on %s, %d px, %d frames per batch",
            self.ckpt_path or "given network",
            self.device,
            self.size,
            self.chunk_frames,
        )

    def _network(self, net: nn.Module | None, ckpt_path: str | Path | None) -> WarpRefineNet:
        if net is None:
            if ckpt_path is None:
                raise ConfigValueError(
                    "renderer.ckpt_path is null: the neural renderer needs a trained "
                    "WarpRefineNet checkpoint (renderer=neural renderer.ckpt_path=PATH)"
                )
            path = Path(ckpt_path)
            if not path.is_file():
                raise WeightsMissingError(f"renderer.ckpt_path {path} does not exist")
            return load_network(path, expected=WarpRefineNet, map_location=self.device)
        net = getattr(net, "_orig_mod", net)  # a torch.compile wrapper
        if not isinstance(net, WarpRefineNet):
            raise ConfigValueError(
                f"the neural renderer needs a WarpRefineNet, got {type(net).__name__}"
            )
        return net

    def renderer_config(self) -> dict[str, Any]:
        """This renderer's config without ``net``/``device``: pass it as ``renderer=`` to
        :func:`avatar.checkpoint.save_network` so :func:`avatar.load_renderer` rebuilds it."""
        return {
            "_target_": f"{type(self).__module__}.{type(self).__qualname__}",
            "size": self.size,
            "chunk_frames": self.chunk_frames,
        }

    def __getstate__(self) -> dict[str, Any]:
        if self.device.type != "cpu":  # render workers would each hold a CUDA context
            raise TypeError(
                f"a neural renderer on {self.device} does not pickle: it renders in the "
                "process that holds the device (threads, not render worker processes)"
            )
        return self.__dict__.copy()

    cache_name = MeshWarpRenderer.cache_name  # the prior's fields: the very same file

    def prepare(self, identity: AvatarIdentity) -> NeuralPrepared:
        """Mesh-warp's fields of the identity and its portrait on the device."""
        return self._prepared(identity, self.prior.prepare(identity))

    def prepared_arrays(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """Mesh-warp's displacement fields (the portrait tensor is quick to make again)."""
        return self.prior.prepared_arrays(self._check_prepared(prepared).warp)

    def restore_prepared(
        self, identity: AvatarIdentity, arrays: dict[str, np.ndarray]
    ) -> NeuralPrepared:
        """:meth:`prepare` with mesh-warp's fields read back instead of rasterised."""
        return self._prepared(identity, self.prior.restore_prepared(identity, arrays))

    def _prepared(self, identity: AvatarIdentity, warp: MeshWarpPrepared) -> NeuralPrepared:
        source = torch.from_numpy(np.ascontiguousarray(identity.portrait)).to(self.device)
        source = source.permute(2, 0, 1)[None].float().div_(255.0)
        return NeuralPrepared(key=identity.key, size=self.size, warp=warp, source=source)

    @staticmethod
    def _check_prepared(prepared: Prepared) -> NeuralPrepared:
        if not isinstance(prepared, NeuralPrepared):
            raise TypeError(
                f"neural renderer needs a NeuralPrepared, got {type(prepared).__name__}"
            )
        return prepared

    def _check_values(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float32)
        if values.ndim != 2 or values.shape[1] != len(CHANNELS):
            raise ValueError(f"values must be (T, {len(CHANNELS)}), got {values.shape}")
        return values

    def inputs(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> NetInputs:
        """The network's inputs for T frames: priors, region masks, motion, audio features.

        Args:
            prepared: from :meth:`prepare`.
            values: (T, len(CHANNELS)) float32 channel values.
            audio: the speech under exactly those T frames, or None.
        """
        prepared = self._check_prepared(prepared)
        values = self._check_values(values)
        t = len(values)
        feats = audio_features(audio, t, self.net.audio_dim)
        return self._inputs(prepared, values, feats)

    def _inputs(self, prepared: NeuralPrepared, values: np.ndarray, feats: np.ndarray) -> NetInputs:
        priors = self.prior.render_chunk(prepared.warp, values)  # (T, S, S, 3) uint8
        eye = prepared.warp.eye_distance
        regions = np.stack(
            [
                region_mask(
                    prepared.warp.fields,
                    effective_channels(dict(zip(WARPED, row.tolist(), strict=True))),
                    self.size,
                    eye,
                )
                for row in values[:, _COLUMNS]
            ]
        )
        dev = self.device
        prior = torch.from_numpy(priors).to(dev).permute(0, 3, 1, 2).float().div_(255.0)
        t = len(values)
        return NetInputs(
            prior=prior,
            source=prepared.source.expand(t, -1, -1, -1),
            region=torch.from_numpy(regions).to(dev)[:, None],
            motion=torch.from_numpy(np.ascontiguousarray(values)).to(dev),
            audio=torch.from_numpy(feats).to(dev) if self.net.audio_dim else None,
        )

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        """(T, len(CHANNELS)) float32 values (+ the chunk's audio) -> (T, S, S, 3) uint8 RGB,
        refined ``chunk_frames`` frames per network batch."""
        prepared = self._check_prepared(prepared)
        values = self._check_values(values)
        t = len(values)
        out = np.empty((t, self.size, self.size, 3), np.uint8)
        feats = audio_features(audio, t, self.net.audio_dim)
        with torch.inference_mode():
            for a in range(0, t, self.chunk_frames):
                b = min(a + self.chunk_frames, t)
                refined = self.net.refine(*self._inputs(prepared, values[a:b], feats[a:b]).args())
                frames = refined.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
                out[a:b] = frames.permute(0, 2, 3, 1).cpu().numpy()
        return out
