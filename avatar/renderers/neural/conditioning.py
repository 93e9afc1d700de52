"""What the neural renderer's network sees per frame, besides the prior: the region mask, the
audio features, and the device the renderer runs on.

The region mask ``R`` (B, 1, S, S) in [0, 1] marks where a warp cannot create content: the
mouth (the warped outer-lip polygon, grown by a fifth of the eye distance to take in the jaw's
opening and the lips' shading) and the eyes (the warped eye contours, grown by a tenth). It is
computed from mesh-warp's deformed landmarks of the same frame, so it follows the opened jaw
and the turned head, unlike the identity's static ``masks`` (made on the source face, closed
mouth). Its edge is feathered over about a tenth of the eye distance.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from avatar.audio import Audio
from avatar.errors import ConfigValueError
from avatar.identity import topology as topo
from avatar.renderers.meshwarp.fields import WarpFields

log = logging.getLogger(__name__)

__all__ = ["audio_features", "region_mask", "resolve_device"]

MOUTH_GROW = 0.2  # fraction of the eye distance the mouth polygon is grown by
EYE_GROW = 0.1  # same, for the eye contours
FEATHER = 0.1  # Gaussian sigma of the edge, fraction of the eye distance


def region_mask(
    fields: WarpFields, coeffs: dict[str, float], size: int, eye_distance: float
) -> np.ndarray:
    """(S, S) float32 region mask in [0, 1] of one frame (see the module docstring).

    Args:
        fields: the identity's mesh-warp fields (:class:`MeshWarpPrepared`'s ``fields``).
        coeffs: the frame's :func:`avatar.renderers.meshwarp.renderer.effective_channels`.
        size: S, pixels.
        eye_distance: outer eye-corner distance of the source face, pixels.
    """
    vertices = fields.vertices(coeffs)  # (478, 2) output pixels
    mask = np.zeros((size, size), np.uint8)
    contours = ((topo.LIPS_OUTER, MOUTH_GROW), (topo.EYE_L, EYE_GROW), (topo.EYE_R, EYE_GROW))
    for contour, grow in contours:
        shape = np.zeros_like(mask)
        hull = cv2.convexHull(np.round(vertices[list(contour)]).astype(np.int32))
        cv2.fillPoly(shape, [hull], 255)
        radius = max(round(grow * eye_distance), 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = np.maximum(mask, cv2.dilate(shape, kernel))
    sigma = max(FEATHER * eye_distance, 0.5)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)


def audio_features(audio: Audio | None, n_frames: int, dim: int) -> np.ndarray:
    """(T, A) float32 log band energies of the audio under each of ``n_frames`` frames.

    The audio is cut into ``n_frames`` equal spans; each span's power spectrum is pooled into
    ``dim`` bands spaced evenly on a log-frequency axis from 80 Hz to 8 kHz (or Nyquist) and
    reported as ``log10(energy + 1e-6)``. No audio (None) gives silence's features.

    >>> audio_features(Audio(np.zeros(1600, np.float32), 16000), 2, 4).shape
    (2, 4)
    """
    if dim <= 0:
        return np.zeros((n_frames, 0), np.float32)
    if audio is None or len(audio.samples) < n_frames:
        return np.full((n_frames, dim), -6.0, np.float32)
    samples = audio.mono
    span = len(samples) // n_frames
    frames = samples[: span * n_frames].reshape(n_frames, span).astype(np.float64)
    power = np.abs(np.fft.rfft(frames * np.hanning(span), axis=1)) ** 2 / max(span, 1)
    freqs = np.fft.rfftfreq(span, 1.0 / audio.sample_rate)
    top = min(8000.0, audio.sample_rate / 2)
    edges = np.geomspace(80.0, top, dim + 1)
    band = np.clip(np.searchsorted(edges, freqs, side="right") - 1, -1, dim)
    out = np.zeros((n_frames, dim))
    for k in range(dim):
        sel = band == k
        if sel.any():
            out[:, k] = power[:, sel].sum(axis=1)
    return np.log10(out + 1e-6).astype(np.float32)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        ConfigValueError: an unknown device, or CUDA asked for where there is none.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigValueError(
            f"renderer.device must be auto, cpu, cuda or cuda:N, got {device!r}"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigValueError(
                f"renderer.device={device!r} but CUDA is not available here "
                "(use renderer.device=cpu or auto)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigValueError(
                f"renderer.device={device!r} but only {torch.cuda.device_count()} CUDA devices"
            )
    elif dev.type != "cpu":
        raise ConfigValueError(f"renderer.device must be auto, cpu or cuda[:N], got {device!r}")
    return dev
