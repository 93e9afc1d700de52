"""Frechet distance between Gaussian fits of two feature sets (FID's formula on any features).

``d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` (Dowson and Landau 1982), the
squared 2-Wasserstein distance between the Gaussians. Used on landmark or other per-frame feature
distributions (e.g. the aligned mouth shapes of two renderers, or of tonight's run and a baseline).
The trace of the matrix square root is computed as the sum of square roots of the eigenvalues of
``S_1^(1/2) S_2 S_1^(1/2)`` (symmetric, so stable without a general ``sqrtm``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_numpy

__all__ = ["frechet_distance", "gaussian_frechet"]


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    root: np.ndarray = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return root


def gaussian_frechet(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1: (D,) mean.
        sigma1: (D, D) covariance (symmetric positive semi-definite).
        mu2: (D,) mean.
        sigma2: (D, D) covariance.

    Returns:
        d^2 >= 0 (0 for identical Gaussians), in squared feature units.

    Example:
        >>> gaussian_frechet([0.0], [[1.0]], [3.0], [[4.0]])  # (3)^2 + (1 - 2)^2
        10.0
    """
    m1, m2 = np.atleast_1d(as_numpy(mu1)), np.atleast_1d(as_numpy(mu2))
    s1, s2 = np.atleast_2d(as_numpy(sigma1)), np.atleast_2d(as_numpy(sigma2))
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {m1.shape} {m2.shape}, S {s1.shape} {s2.shape}")
    r1 = _psd_sqrt(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0.0, None)).sum()
    scale = float(np.trace(s1) + np.trace(s2))
    value = float(((m1 - m2) ** 2).sum() + scale - 2.0 * cross)
    # rounding leaves ~1e-15 * scale for identical inputs: below that the distance is 0
    return value if value > 1e-12 * max(scale, 1.0) else 0.0


def _frechet_update(features: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Sufficient statistics of (N, D) features: (sum (D,), sum of outer products (D, D), N)."""
    x = as_numpy(features)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"features must be finite (N, D), got shape {x.shape}")
    return x.sum(axis=0), x.T @ x, float(len(x))


def _frechet_compute(
    sum_a: np.ndarray,
    outer_a: np.ndarray,
    n_a: float,
    sum_b: np.ndarray,
    outer_b: np.ndarray,
    n_b: float,
) -> float:
    """Frechet distance from the statistics of both sets (unbiased covariances, N >= 2 each)."""
    if n_a < 2 or n_b < 2:
        return float("nan")
    stats = []
    for s, o, n in ((sum_a, outer_a, n_a), (sum_b, outer_b, n_b)):
        mu = np.asarray(s, np.float64) / n
        cov = (np.asarray(o, np.float64) - n * np.outer(mu, mu)) / (n - 1)
        stats.append((mu, cov))
    return gaussian_frechet(stats[0][0], stats[0][1], stats[1][0], stats[1][1])


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Frechet distance between Gaussian fits (mean, unbiased covariance) of two feature sets.

    Args:
        features_a: (N_a, D) features, N_a >= 2.
        features_b: (N_b, D) features, N_b >= 2.

    Returns:
        Squared Frechet distance >= 0 (lower: more alike); NaN with fewer than 2 samples.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 3))
        >>> frechet_distance(x, x)
        0.0
    """
    return _frechet_compute(*_frechet_update(features_a), *_frechet_update(features_b))
