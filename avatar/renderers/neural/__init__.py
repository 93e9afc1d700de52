"""The neural renderer: mesh-warp's plain warp refined by a trained U-Net (warp-and-refine)."""

from avatar.renderers.neural.conditioning import audio_features, region_mask, resolve_device
from avatar.renderers.neural.renderer import NetInputs, NeuralPrepared, NeuralRenderer

__all__ = [
    "NetInputs",
    "NeuralPrepared",
    "NeuralRenderer",
    "audio_features",
    "region_mask",
    "resolve_device",
]
