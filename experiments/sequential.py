"""Always-valid confidence sequences: look at an experiment every day, safely.

A fixed-horizon 95 % interval is right 95 % of the time *at one look*; checked
every day and stopped at the first "significant" day, it declares a winner in
an A/A test far more often than 5 % of the time. A confidence sequence is
valid at every look at once: the probability that it *ever* excludes the true
difference is at most ``alpha``.

This module uses the normal-mixture boundary (Robbins' mixture, Howard et al.
2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", and
its asymptotic form, Waudby-Smith et al. 2023, "Time-uniform central limit
theory"): after ``t`` units (customers) with standard deviation ``sigma`` per
unit, the half-width is

    sigma * sqrt( (t rho^2 + 1) / (t^2 rho^2) * log( (t rho^2 + 1) / alpha^2 ) )

``rho`` sets where the sequence is tightest; :func:`mixture_rho` picks it for a
planned number of units (the default: the final one, which is fixed by the
design, not by the outcomes). For a difference of two arms' means, ``t`` is the
number of customers in both arms and ``sigma^2 = t * (s_a^2 / n_a + s_b^2 /
n_b)``, so that ``sigma^2 / t`` is the Welch variance of the difference.

>>> round(float(mixture_radius(1000, 1.0, rho=mixture_rho(1000))) * 1000 ** 0.5, 2)
3.04
>>> round(float(mixture_radius(1000, 1.0, rho=mixture_rho(1000))) / (1.96 / 1000 ** 0.5), 2)
1.55
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

DEFAULT_ALPHA = 0.05


def mixture_rho(planned_units: float, alpha: float = DEFAULT_ALPHA) -> float:
    """The mixing parameter that makes the sequence tightest at ``planned_units``."""
    if planned_units <= 0:
        raise ValueError(f"planned_units must be positive, got {planned_units}")
    log_term = -2.0 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1.0)) / planned_units)


def mixture_radius(
    units: ArrayLike, sigma: ArrayLike, *, rho: float, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """Half-width of the always-valid ``1 - alpha`` confidence sequence after ``units``
    units of standard deviation ``sigma`` (arrays broadcast; ``inf`` where ``units`` is 0)."""
    t = np.asarray(units, dtype=float)
    s = np.asarray(sigma, dtype=float)
    r2 = rho * rho
    with np.errstate(divide="ignore", invalid="ignore"):
        width = s * np.sqrt((t * r2 + 1.0) / (t * t * r2) * np.log((t * r2 + 1.0) / alpha**2))
    return np.where(t > 0, width, np.inf)


def difference_sequence(
    mean_a: ArrayLike,
    var_a: ArrayLike,
    n_a: ArrayLike,
    mean_b: ArrayLike,
    var_b: ArrayLike,
    n_b: ArrayLike,
    *,
    planned_units: float,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Always-valid interval of ``mean_a - mean_b`` at each look (arrays, one per look).

    Returns ``(difference, low, high)``.
    """
    na, nb = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        welch = np.asarray(var_a, dtype=float) / na + np.asarray(var_b, dtype=float) / nb
    units = na + nb
    sigma = np.sqrt(np.maximum(welch, 0.0) * units)
    radius = mixture_radius(units, sigma, rho=mixture_rho(planned_units, alpha), alpha=alpha)
    diff = np.asarray(mean_a, dtype=float) - np.asarray(mean_b, dtype=float)
    radius = np.where(np.isfinite(welch), radius, np.inf)
    return diff, diff - radius, diff + radius


def fixed_interval(
    mean_a: ArrayLike,
    var_a: ArrayLike,
    n_a: ArrayLike,
    mean_b: ArrayLike,
    var_b: ArrayLike,
    n_b: ArrayLike,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The usual (fixed-horizon) Welch interval of ``mean_a - mean_b``, valid at one look
    only: ``(difference, low, high)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(
            np.asarray(var_a, dtype=float) / np.asarray(n_a, dtype=float)
            + np.asarray(var_b, dtype=float) / np.asarray(n_b, dtype=float)
        )
    z = stats.norm.ppf(1 - alpha / 2)
    diff = np.asarray(mean_a, dtype=float) - np.asarray(mean_b, dtype=float)
    se = np.where(np.isfinite(se), se, np.inf)
    return diff, diff - z * se, diff + z * se
