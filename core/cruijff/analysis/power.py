"""How many samples detect a difference, and the smallest difference a number of samples
detects: the normal approximations the analysis plans with (``compare``) and ``cruijff plan``
warns with (an evaluation too small for ``experiment.min_effect``).

Standard library only (``statistics.NormalDist``'s quantile, Wichura's AS 241, as accurate as
scipy's ``ndtri``): a plan must not pay a second for importing scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

TWO_PROPORTIONS = "two-proportion normal approximation"
PAIRED_NORMAL = "paired normal approximation"

_NORMAL = NormalDist()


def _z(alpha: float, power: float) -> tuple[float, float]:
    return _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)


def samples_for_power(
    p1: float, p2: float, *, power: float = 0.8, alpha: float = 0.05
) -> int | None:
    """Roughly how many samples (per run) a two-sided test at level ``alpha`` needs to detect
    proportions ``p1`` and ``p2`` apart with probability ``power``: the two-proportion normal
    approximation without continuity correction (Fleiss),
    ``n = (z_{1-alpha/2} sqrt(2 p q) + z_power sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2`` with ``p``
    the mean of the two; None when they are equal."""
    if p1 == p2:
        return None
    z_alpha, z_power = _z(alpha, power)
    p = (p1 + p2) / 2
    spread = z_alpha * math.sqrt(2 * p * (1 - p)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil((spread / (p1 - p2)) ** 2)


def samples_for_power_paired(
    delta: float, sd: float, *, power: float = 0.8, alpha: float = 0.05
) -> int | None:
    """Roughly how many paired samples a two-sided test at level ``alpha`` needs to detect a mean
    difference ``delta`` whose paired differences spread by ``sd``, with probability ``power``:
    the normal approximation ``n = ((z_{1-alpha/2} + z_power) sd / delta)^2`` (for metrics that
    are not proportions); None when ``delta`` is 0."""
    if delta == 0:
        return None
    z_alpha, z_power = _z(alpha, power)
    return max(1, math.ceil(((z_alpha + z_power) * sd / delta) ** 2))


def detectable_difference(
    n: int, p: float = 0.5, *, power: float = 0.8, alpha: float = 0.05
) -> float:
    """The smallest absolute difference in a proportion that ``n`` samples (per run) detect:
    the smallest ``d`` with ``samples_for_power(p, p + d, power=power, alpha=alpha) <= n``, the
    very approximation the analysis plans with, toward higher accuracy (``p`` the control's).

    The samples needed fall as ``d`` grows, in whole steps (``samples_for_power`` rounds up),
    so bisection over ``(0, 1 - p]`` finds the step from more than ``n`` to at most ``n`` to
    within 1e-15. ``inf`` when not even ``d = 1 - p`` (a perfect score) is detectable with
    ``n`` samples; ValueError for ``n`` below 1 or ``p`` outside ``[0, 1)``.
    """
    if n < 1:
        raise ValueError(f"detectable_difference needs at least one sample, not {n}")
    if not 0 <= p < 1:
        raise ValueError(f"p must be a proportion below 1, not {p}")

    def detects(d: float) -> bool:
        needed = samples_for_power(p, min(1.0, p + d), power=power, alpha=alpha)
        return needed is not None and needed <= n

    low, high = 0.0, 1 - p  # not detected at low (0 detects nothing), detected at high
    if not detects(high):
        return math.inf
    while high - low > 1e-15:
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (low, middle) if detects(middle) else (middle, high)
    return high
