"""Motion: phoneme timings and behaviour to per-frame channels (MotionTrack)."""

from avatar.motion.track import CHANNELS, MotionTrack

__all__ = ["CHANNELS", "MotionTrack"]
