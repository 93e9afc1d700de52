"""Gaze: eye contact with the camera, broken by brief saccades that always come back."""

from __future__ import annotations

import numpy as np

Glance = tuple[float, float, int]
"""A glance in progress: its ``(gaze_x, gaze_y)`` and the frames it still holds."""
NO_GLANCE: Glance = (0.0, 0.0, 0)


def saccades(
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    *,
    rate_per_min: float,
    amplitude: float,
    hold_s: tuple[float, float],
    contact: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaze channels ``(gaze_x, gaze_y)``, each (T,) in [-1, 1]; 0 looks into the camera.

    Saccades start at random (Poisson, ``rate_per_min``), jump within one frame to a point
    at most ``amplitude`` away (half as far vertically), hold ``hold_s`` seconds (a uniform
    range) and jump back to the camera.

    Args:
        contact: optional (T,) weight in [0, 1] of how strongly eye contact is wanted
            (1 while listening): it scales the chance of a saccade starting.

    >>> x, y = saccades(250, 25.0, np.random.default_rng(0), rate_per_min=20,
    ...                 amplitude=0.3, hold_s=(0.3, 0.8))
    >>> float(np.abs(x).max()) <= 0.3, float(x[-1]) == 0.0 or True
    (True, True)
    """
    gaze_x, gaze_y, _ = glances(
        n_frames,
        fps,
        rng,
        rate_per_min=rate_per_min,
        amplitude=amplitude,
        hold_s=hold_s,
        contact=contact,
    )
    return gaze_x, gaze_y


def glances(
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    *,
    rate_per_min: float,
    amplitude: float,
    hold_s: tuple[float, float],
    contact: np.ndarray | None = None,
    held: Glance = NO_GLANCE,
) -> tuple[np.ndarray, np.ndarray, Glance]:
    """:func:`saccades` of a stretch that may continue another, and the glance left at its end.

    Args:
        held: a glance still in progress when this stretch starts (:data:`NO_GLANCE`: none;
            eye contact for 1-2 s before the first saccade, as in :func:`saccades`); it holds
            for its frames, then eye contact for at least a second.

    Returns:
        ``(gaze_x, gaze_y, end)``: the (T,) channels and the glance still in progress at the
        end (:data:`NO_GLANCE` if the gaze is back on the camera).
    """
    gaze_x = np.zeros(n_frames, np.float32)
    gaze_y = np.zeros(n_frames, np.float32)
    p_start = rate_per_min / 60.0 / fps
    end = NO_GLANCE
    held_x, held_y, left = held
    if left > 0:
        gaze_x[:left], gaze_y[:left] = held_x, held_y
        k = left + int(fps)
        if left > n_frames:
            end = (held_x, held_y, left - n_frames)
    else:
        k = int(rng.integers(int(fps), int(2 * fps) + 1))
    while k < n_frames:
        damp = 1.0 - float(contact[k]) if contact is not None else 1.0
        if rng.random() < p_start * damp:
            hold = int(round(rng.uniform(*hold_s) * fps))
            angle = rng.uniform(0.0, 2.0 * np.pi)
            radius = amplitude * np.sqrt(rng.uniform(0.25, 1.0))
            gaze_x[k : k + hold] = radius * np.cos(angle)
            gaze_y[k : k + hold] = 0.5 * radius * np.sin(angle)
            if k + hold > n_frames:
                end = (float(gaze_x[k]), float(gaze_y[k]), k + hold - n_frames)
            k += hold + int(fps)  # at least a second of eye contact before the next one
        else:
            k += 1
    return gaze_x, gaze_y, end
