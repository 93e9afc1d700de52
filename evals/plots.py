"""Plots for eval runs: mouth aperture against the speech envelope over a clip."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["plot_sync"]


def plot_sync(
    aperture: np.ndarray,
    envelope: np.ndarray,
    fps: float,
    path: Path,
    *,
    title: str = "",
    offset_frames: float | None = None,
) -> Path | None:
    """Writes a PNG of the (T,) mouth aperture and (T,) speech envelope over time.

    Args:
        aperture: (T,) mouth aperture (NaN where no face).
        envelope: (T,) speech envelope in [0, 1].
        fps: frames per second (the x axis is in seconds).
        path: PNG to write.
        title: plot title.
        offset_frames: the measured A/V offset, shown in the legend.

    Returns:
        ``path``, or None when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot %s", path)
        return None
    t = np.arange(len(aperture)) / fps
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    ax.plot(t, envelope, color="0.6", lw=1.0, label="speech envelope")
    ax.set_ylabel("envelope [0, 1]")
    ax.set_xlabel("seconds")
    ax2 = ax.twinx()
    lag = "" if offset_frames is None else f" (offset {offset_frames:+.0f} frames)"
    ax2.plot(t, aperture, color="tab:red", lw=1.2, label=f"mouth aperture{lag}")
    ax2.set_ylabel("aperture")
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
