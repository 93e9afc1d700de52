"""The mesh-warp renderer: face rig + dense warp + painted mouth interior."""

from avatar.renderers.meshwarp.renderer import MeshWarpPrepared, MeshWarpRenderer

__all__ = ["MeshWarpPrepared", "MeshWarpRenderer"]
