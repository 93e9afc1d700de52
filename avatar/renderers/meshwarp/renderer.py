"""MeshWarpRenderer: zero-shot, CPU real-time talking head by warping one portrait.

Per frame: the motion channels weight precomputed displacement fields (face rig + head
rotation), the portrait is resampled once with ``cv2.remap``, and the opened mouth is painted
over the inner-lip polygon. Nothing is learned and nothing needs torch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from avatar.errors import ConfigValueError
from avatar.identity.types import AvatarIdentity
from avatar.motion.track import MotionTrack
from avatar.renderers.base import Renderer
from avatar.renderers.meshwarp.fields import HEAD_CHANNELS, WarpFields
from avatar.renderers.meshwarp.mouth import SourceMouth, paint_mouth
from avatar.renderers.meshwarp.rig import RIG_CHANNELS, vertex_bases

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    fields: WarpFields
    source_mouth: SourceMouth | None


def effective_channels(values: dict[str, float]) -> dict[str, float]:
    """Apply the non-linear couplings between mouth channels before the linear warp.

    Pressed lips (m, b, p) cancel the opening; a tucked lower lip (f, v) cancels the lip
    parting. The rest correction ``close_source`` is always on.

    >>> effective_channels({"jaw_open": 0.5, "lip_press": 1.0})["jaw_open"]
    0.05
    """
    out = dict(values)
    press = float(np.clip(values.get("lip_press", 0.0), 0.0, 1.0))
    tuck = float(np.clip(values.get("lower_lip_tuck", 0.0), 0.0, 1.0))
    out["jaw_open"] = round(values.get("jaw_open", 0.0) * (1.0 - 0.9 * press), 6)
    out["lip_open"] = values.get("lip_open", 0.0) * (1.0 - press) * (1.0 - tuck)
    out["close_source"] = 1.0
    return out


class MeshWarpRenderer(Renderer):
    """The default renderer.

    Args:
        size: output size S in pixels; identities must have been derived at this size.
        mouth_interior: paint teeth, tongue and cavity inside the opened mouth.
        max_cached_identities: how many identities' precomputed fields to keep.
    """

    def __init__(self, *, size: int, mouth_interior: bool = True, max_cached_identities: int = 4):
        if size < 64:
            raise ConfigValueError(f"renderer.size must be at least 64 pixels, got {size}")
        self.size = int(size)
        self.mouth_interior = mouth_interior
        self.max_cached = max_cached_identities
        self._cache: OrderedDict[str, _Prepared] = OrderedDict()

    def prepare(self, identity: AvatarIdentity) -> _Prepared:
        """Precompute (once per identity) the displacement fields; about 0.3 s at 512."""
        if identity.size != self.size:
            raise ConfigValueError(
                f"identity was derived at {identity.size}px but renderer.size is {self.size}px; "
                "derive it at the renderer's size"
            )
        key = identity.key or str(id(identity))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        prepared = _Prepared(
            WarpFields(identity.landmarks, self.size, vertex_bases(identity.landmarks)),
            SourceMouth.from_landmarks(
                identity.portrait, identity.landmarks, identity.eye_distance
            ),
        )
        self._cache[key] = prepared
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        log.debug("mesh-warp: prepared identity %s", key[:12])
        return prepared

    def render_frame(self, identity: AvatarIdentity, values: dict[str, float]) -> np.ndarray:
        """One (S, S, 3) uint8 RGB frame for a dict of channel values."""
        prepared = self.prepare(identity)
        coeffs = effective_channels(values)
        sample = prepared.fields.backward_map(coeffs)
        frame = cv2.remap(
            identity.portrait,
            sample[..., 0],
            sample[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if self.mouth_interior:
            paint_mouth(
                frame,
                prepared.fields.vertices(coeffs),
                identity.mouth,
                identity.eye_distance,
                prepared.source_mouth,
            )
        return frame

    def render(
        self,
        identity: AvatarIdentity,
        motion: MotionTrack,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield one frame per motion frame (audio is not used by this renderer)."""
        names = [c for c in RIG_CHANNELS + HEAD_CHANNELS if c in motion]
        columns = [motion.index(c) for c in names]
        self.prepare(identity)
        for row in motion.values[:, columns]:
            yield self.render_frame(identity, dict(zip(names, row.tolist(), strict=True)))
