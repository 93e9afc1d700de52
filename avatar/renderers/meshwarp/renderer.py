"""MeshWarpRenderer: zero-shot, CPU real-time talking head by warping one portrait.

Per frame: the motion channels weight precomputed displacement fields (face rig + head
rotation), the region that moves is resampled once from the portrait with ``cv2.remap`` (fixed
point maps) into a copy of it, and the opened mouth is painted over the inner-lip polygon.
Nothing is learned and nothing needs torch.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from avatar.audio import Audio
from avatar.errors import ConfigValueError
from avatar.identity.types import AvatarIdentity
from avatar.renderers.base import CHANNELS, Prepared, Renderer
from avatar.renderers.meshwarp.fields import COARSE, HEAD_CHANNELS, Box, WarpFields
from avatar.renderers.meshwarp.lids import EYES, LidLook, lid_look, paint_lids
from avatar.renderers.meshwarp.mouth import SourceMouth, paint_mouth
from avatar.renderers.meshwarp.mouth_colours import MouthInterior, mouth_interior
from avatar.renderers.meshwarp.rig import RIG_CHANNELS, vertex_bases

log = logging.getLogger(__name__)

WARPED = RIG_CHANNELS + HEAD_CHANNELS
"""The channels mesh-warp animates, in the order their fields are summed (float32 sums are
order-dependent: this order is part of the renderer's output)."""
_COLUMNS = [CHANNELS.index(c) for c in WARPED]
MIN_SIZE, MAX_SIZE = 64, 2048
"""Accepted ``renderer.size`` in pixels: below 64 the face rig has too few pixels; above 2048
the per-identity displacement fields (float32, up to S x S per animated channel) and every frame
grow with S squared, far past a CPU's real time."""


@dataclass(frozen=True)
class MeshWarpPrepared(Prepared):
    """One identity, ready to warp: about 0.3 s to make at 512 px.

    Attributes:
        portrait: (S, S, 3) uint8 RGB source portrait (read only).
        fields: the rig's and the head's displacement fields.
        mouth: where the mouth is and its interior colours.
        eye_distance: outer eye-corner distance in pixels (sets teeth size).
        source_mouth: the portrait's own open mouth (real teeth), or None.
        lids: the colours of the closed lids.
    """

    portrait: np.ndarray
    fields: WarpFields
    mouth: MouthInterior
    eye_distance: float
    source_mouth: SourceMouth | None
    lids: LidLook


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
    """The default renderer (stateless: everything per identity is in its ``Prepared``).

    Args:
        size: output size S in pixels, even, in [MIN_SIZE, MAX_SIZE]; identities must have
            been derived at this size.
        mouth_interior: paint teeth, tongue and cavity inside the opened mouth, and the line
            where the lips meet.
        eyelids: paint closing upper lids as skin with a lash line (else the warp's stretch).
    """

    chunk_frames = 1  # one frame per call: no batching gain on a CPU, finest cancellation

    def __init__(self, *, size: int, mouth_interior: bool, eyelids: bool = True) -> None:
        ok = isinstance(size, numbers.Integral) and not isinstance(size, bool)
        if not (ok and MIN_SIZE <= size <= MAX_SIZE and size % 2 == 0):
            raise ConfigValueError(
                f"renderer.size must be an even number of pixels, at least {MIN_SIZE} and at "
                f"most {MAX_SIZE} (H.264 frames need even sides), got {size!r}"
            )
        self.size = int(size)
        for key, flag in (("mouth_interior", mouth_interior), ("eyelids", eyelids)):
            if not isinstance(flag, bool):
                raise ConfigValueError(f"renderer.{key} must be true or false, got {flag!r}")
        self.mouth_interior, self.eyelids = mouth_interior, eyelids

    cache_name = f"meshwarp-fields-v2-coarse{COARSE}"

    def prepare(self, identity: AvatarIdentity) -> MeshWarpPrepared:
        """Precompute the identity's displacement fields (most of the 0.3-0.8 s at 512 px) and
        mouth measurements."""
        self._check_size(identity)
        fields = WarpFields(identity.landmarks, self.size, vertex_bases(identity.landmarks))
        return self._prepared(identity, fields)

    def prepared_arrays(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """The displacement fields (the rest is quick to make again)."""
        if not isinstance(prepared, MeshWarpPrepared):
            raise TypeError(f"mesh-warp needs a MeshWarpPrepared, got {type(prepared).__name__}")
        return prepared.fields.to_arrays()

    def restore_prepared(
        self, identity: AvatarIdentity, arrays: dict[str, np.ndarray]
    ) -> MeshWarpPrepared:
        """:meth:`prepare` with the fields read back instead of rasterised."""
        self._check_size(identity)
        return self._prepared(
            identity, WarpFields.from_arrays(arrays, identity.landmarks, self.size)
        )

    def _check_size(self, identity: AvatarIdentity) -> None:
        if identity.size != self.size:
            raise ConfigValueError(
                f"identity was derived at {identity.size}px but renderer.size is {self.size}px; "
                "derive it at the renderer's size"
            )

    def _prepared(self, identity: AvatarIdentity, fields: WarpFields) -> MeshWarpPrepared:
        portrait = identity.portrait.copy()
        portrait.setflags(write=False)
        prepared = MeshWarpPrepared(
            key=identity.key,
            size=self.size,
            portrait=portrait,
            fields=fields,
            mouth=mouth_interior(portrait, identity.landmarks),
            eye_distance=identity.eye_distance,
            source_mouth=SourceMouth.from_landmarks(
                portrait, identity.landmarks, identity.eye_distance
            ),
            lids=lid_look(portrait, identity.landmarks),
        )
        log.debug("mesh-warp: prepared identity %s", identity.key[:12])
        return prepared

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        """(T, len(CHANNELS)) float32 values -> (T, S, S, 3) uint8 (audio is not used)."""
        if not isinstance(prepared, MeshWarpPrepared):
            raise TypeError(f"mesh-warp needs a MeshWarpPrepared, got {type(prepared).__name__}")
        values = np.asarray(values, np.float32)
        if values.ndim != 2 or values.shape[1] != len(CHANNELS):
            raise ValueError(f"values must be (T, {len(CHANNELS)}), got {values.shape}")
        out = np.empty((len(values), self.size, self.size, 3), np.uint8)
        for t, row in enumerate(values[:, _COLUMNS]):
            out[t] = self._frame(prepared, dict(zip(WARPED, row.tolist(), strict=True)))
        return out

    def _frame(self, prepared: MeshWarpPrepared, values: dict[str, float]) -> np.ndarray:
        coeffs = effective_channels(values)
        frame = resample(prepared.portrait, prepared.fields.backward_map(coeffs))
        paint_features(frame, prepared, coeffs, mouth=self.mouth_interior, eyelids=self.eyelids)
        return frame


def paint_features(
    frame: np.ndarray,
    prepared: MeshWarpPrepared,
    coeffs: dict[str, float],
    *,
    mouth: bool = True,
    eyelids: bool = True,
) -> None:
    """Paint what a warp cannot make into the warped ``frame`` (S, S, 3) uint8, in place: the
    closing upper lids, and the line where the lips meet or the inside of the open mouth.

    Args:
        coeffs: the frame's :func:`effective_channels`.
    """
    if not (mouth or eyelids):
        return
    vertices = prepared.fields.vertices(coeffs)
    if eyelids and any(coeffs.get(channel, 0.0) > 0.01 for *_, channel in EYES):
        eyes_open = prepared.fields.vertices({**coeffs, "blink_l": 0.0, "blink_r": 0.0})
        blur = prepared.mouth.blur_px
        paint_lids(frame, eyes_open, vertices, prepared.lids, prepared.eye_distance, blur)
    if mouth:
        paint_mouth(frame, vertices, prepared.mouth, prepared.eye_distance, prepared.source_mouth)


def resample(portrait: np.ndarray, moved: tuple[Box, np.ndarray] | None) -> np.ndarray:
    """A copy of the (S, S, 3) uint8 ``portrait`` with the region that moves resampled.

    Args:
        portrait: the source portrait.
        moved: :meth:`WarpFields.backward_map`'s ``(box, (h, w, 2) source positions)``, or
            None when nothing moves.
    """
    frame = portrait.copy()
    if moved is not None:
        (y0, x0, y1, x1), sample = moved
        whole, fraction = cv2.convertMaps(sample, None, cv2.CV_16SC2)  # what remap does anyway
        frame[y0:y1, x0:x1] = cv2.remap(
            portrait, whole, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return frame
