"""Renderers: the shared interface and the implementations (mesh-warp is the default)."""

from avatar.renderers.base import RenderedFrame, Renderer

__all__ = ["RenderedFrame", "Renderer"]
