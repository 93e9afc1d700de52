"""A render's timeline on one time axis: waveform with phones, visemes, mouth, eyes, head.

Plotting only (matplotlib's object API, no pyplot state), so notebooks, evals and scripts share
it; :mod:`avatar.widgets` re-exports :func:`timeline_figure`.

Rows, each shown when the render holds its data:

- ``audio``: the waveform (amplitude, -1..1) with each phone's label at its start;
- ``viseme``: the dominant viseme per frame (the ``viseme.*`` channel with the largest weight);
- ``mouth``: the chosen mouth channels (0..1);
- ``blinks``: ``blink_l``, ``blink_r`` (0..1, 1 closed);
- ``gaze``: ``gaze_x``, ``gaze_y`` (-1..1, 0 looks at the camera);
- ``head``: ``head_yaw``, ``head_pitch``, ``head_roll`` (degrees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["dominant_visemes", "label_spans", "timeline_figure"]

MOUTH = ("jaw_open", "lip_open", "lip_round", "lip_press")
CHANNEL_ROWS = {
    "blinks": ("blink_l", "blink_r"),
    "gaze": ("gaze_x", "gaze_y"),
    "head": ("head_yaw", "head_pitch", "head_roll"),
}
"""Rows of channels drawn after the mouth, each when the track has any of its channels."""


def dominant_visemes(motion: Any) -> list[str] | None:
    """The name of the heaviest ``viseme.*`` channel at each frame (None without any)."""
    names = [c for c in motion.channels if c.startswith("viseme.")]
    if not names:
        return None
    weights = np.stack([motion[c] for c in names], axis=1)
    return [names[k].removeprefix("viseme.") for k in weights.argmax(axis=1)]


def label_spans(labels: Sequence[str], fps: float) -> list[tuple[str, float, float]]:
    """Runs of equal labels as (label, start s, end s), frames at ``fps``.

    >>> label_spans(["a", "a", "b"], 2.0)
    [('a', 0.0, 1.0), ('b', 1.0, 1.5)]
    """
    out: list[tuple[str, float, float]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((labels[start], start / fps, i / fps))
            start = i
    return out


def _rows(speech: Any, motion: Any, visemes: list[str] | None) -> list[str]:
    rows = ["audio"] if speech is not None else []
    rows += ["viseme"] if visemes else []
    if motion is not None:
        rows.append("mouth")
        rows += [r for r, chans in CHANNEL_ROWS.items() if set(chans) & set(motion.channels)]
    return rows


def _draw_audio(ax: Any, speech: Any) -> None:
    t = np.arange(len(speech.audio)) / speech.sample_rate
    ax.plot(t, speech.audio, lw=0.5, color="0.3")
    top = float(np.max(np.abs(speech.audio), initial=1e-3))
    for p in speech.timeline.phones:
        ax.axvline(p.start, color="tab:blue", lw=0.4, alpha=0.5)
        ax.text((p.start + p.end) / 2, top, p.phoneme, ha="center", va="bottom", fontsize=7)


def _draw_visemes(ax: Any, visemes: list[str], fps: float) -> None:
    for k, (name, start, end) in enumerate(label_spans(visemes, fps)):
        ax.axvspan(start, end, color=f"C{k % 10}", alpha=0.3)
        ax.text((start + end) / 2, 0.5, name, ha="center", va="center", fontsize=7)
    ax.set_yticks([])


def _draw_channels(ax: Any, motion: Any, channels: Sequence[str]) -> None:
    t = np.arange(len(motion)) / motion.fps
    for name in (c for c in channels if c in motion.channels):
        ax.plot(t, motion[name], label=name)
    ax.legend(loc="upper right", fontsize=7, ncol=3)


def timeline_figure(result: Any, *, channels: Sequence[str] = MOUTH, width: float = 10.0) -> Figure:
    """Waveform (with phones), visemes, mouth channels, blinks, gaze and head of a render.

    Args:
        result: anything with ``speech`` (a :class:`~avatar.speech.tts.Speech` or None) and
            ``motion`` (a :class:`~avatar.motion.track.MotionTrack` or None), such as a
            :class:`~avatar.render_result.RenderResult`.
        channels: the mouth channels drawn in the ``mouth`` row.
        width: figure width in inches (each row is 1.6 in high).

    Returns:
        A :class:`matplotlib.figure.Figure` outside pyplot (no global state): a notebook shows
        it as a PNG by ending a cell with it; ``fig.savefig(path)`` writes it. Rows are named
        by their y labels (see the module).
    """
    from matplotlib.figure import Figure

    motion, speech = result.motion, result.speech
    visemes = dominant_visemes(motion) if motion is not None else None
    rows = _rows(speech, motion, visemes)
    if not rows:
        raise ValueError("timeline_figure: the render holds neither speech nor motion")
    fig = Figure(figsize=(width, 1.6 * len(rows)), layout="constrained")
    grid = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    axes = dict(zip(rows, grid, strict=True))
    for row, ax in axes.items():
        ax.set_ylabel(row)
        if row == "audio":
            _draw_audio(ax, speech)
        elif row == "viseme":
            _draw_visemes(ax, visemes, motion.fps)
        else:
            _draw_channels(ax, motion, channels if row == "mouth" else CHANNEL_ROWS[row])
    axes[rows[-1]].set_xlabel("seconds")
    return fig
