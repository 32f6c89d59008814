"""Honest rates for rankings: a unit's rework rate over 6 cases says much less than one over
206, so every rate in the scores comes with its 95 % Wilson score interval, a rate over fewer
than :data:`MIN_CASES` cases is not ranked, and an empirical-Bayes rate shrunk toward the
overall rate (more for fewer cases) is offered for ranking.

Pure functions on arrays of counts: the one place the scores, the workbook and the terminal
table take these numbers from.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Counts = npt.ArrayLike
Floats = npt.NDArray[np.float64]

# The default of Settings.rank_min_cases. At 20 cases one case moves a rate by 5 points and
# the 95 % interval around 50 % still spans 30-70 %; below that, the order of two rates is
# mostly the luck of a few cases. It is also the usual floor for the normal approximation
# (n·p and n·(1 - p) of at least 5 for the rates seen here, 25-75 %).
MIN_CASES = 20
CONFIDENCE = 0.95


def wilson(successes: Counts, trials: Counts, confidence: float = CONFIDENCE
           ) -> tuple[Floats, Floats]:
    """The Wilson score interval (Wilson 1927, without continuity correction) of each
    proportion ``successes / trials``; NaN where ``trials`` is 0.

    Written out rather than through ``scipy.stats.binomtest(...).proportion_ci("wilson")``,
    which gives the same bounds (tests/layers/test_rates.py holds them equal) but costs
    0.5 ms a call: 2 s for a site ranking of 2,000 rows and two rates.

    Parameters
    ----------
    successes, trials : array_like of int
        Cases counted (e.g. sent back) and cases in the denominator.
    confidence : float
        The interval's coverage, 0.95 by default.

    Returns
    -------
    low, high : ndarray of float
        The bounds, within [0, 1].

    Examples
    --------
    >>> low, high = wilson([0, 5, 10, 0], [10, 10, 10, 0])
    >>> np.round(low, 4).tolist(), np.round(high, 4).tolist()
    ([0.0, 0.2366, 0.7225, nan], [0.2775, 0.7634, 1.0, nan])
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True)
class Prior:
    """A beta prior of the groups' true rates: its ``mean`` (the overall rate) and its
    ``strength`` (α + β, in cases: how many cases a group needs before its own rate weighs as
    much as the overall one; ``inf`` when the groups differ no more than chance would make
    them, 0 when nothing can be pooled)."""

    mean: float
    strength: float


def beta_binomial_prior(successes: Counts, trials: Counts) -> Prior:
    """The beta prior of the groups' rates, by the method of moments (Kleinman 1973).

    With ``p̄`` the overall rate, ``N`` all cases, ``G`` the groups with cases and
    ``S = Σ nᵢ (pᵢ - p̄)²``, a beta-binomial with intra-class correlation ``ρ = 1 / (α + β + 1)``
    has ``E[S] = p̄ (1 - p̄) [(G - 1) + ρ (N - Σ nᵢ² / N - (G - 1))]``; ``ρ`` solves it with
    ``S`` observed, clipped to [0, 1].

    Examples
    --------
    >>> beta_binomial_prior([3, 7], [10, 10])  # 30 % and 70 %: apart beyond chance
    Prior(mean=0.5, strength=3.090909090909)
    >>> beta_binomial_prior([5, 5], [10, 10]).strength  # no spread beyond chance
    inf
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    x, n = x[n > 0], n[n > 0]
    total = float(n.sum())
    if total == 0:
        return Prior(float("nan"), 0.0)
    mean = float(x.sum()) / total
    groups = len(n)
    spread = (n * n).sum() / total
    if groups < 2 or mean in (0.0, 1.0) or total - spread - (groups - 1) <= 0:
        # One group, or every case alike, or one group holding nearly every case: nothing
        # to learn a spread from, so each group keeps its own rate.
        return Prior(mean, 0.0)
    observed = float((n * (x / n - mean) ** 2).sum()) / (mean * (1 - mean))
    rho = (observed - (groups - 1)) / (total - spread - (groups - 1))
    if rho <= 0:
        return Prior(mean, float("inf"))
    return Prior(mean, 0.0 if rho >= 1 else round(float(1 / rho - 1), 12))


def shrunk(successes: Counts, trials: Counts, prior: Prior | None = None) -> Floats:
    """Each group's empirical-Bayes rate: the posterior mean ``(x + α) / (n + α + β)`` of
    its rate under ``prior`` (by default :func:`beta_binomial_prior` of these groups), i.e.
    its own rate weighted ``n / (n + α + β)`` and the overall rate the rest; NaN without
    cases.

    Examples
    --------
    >>> np.round(shrunk([3, 2, 20, 45], [6, 30, 100, 150]), 3).tolist()  # overall 24.5 %
    [0.303, 0.138, 0.208, 0.293]
    >>> shrunk([3, 20], [6, 100], Prior(0.25, 0.0)).tolist()  # no pooling: the raw rates
    [0.5, 0.2]
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    prior = prior or beta_binomial_prior(x, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.isinf(prior.strength):
            return np.where(n > 0, prior.mean, np.nan)
        return (x + prior.mean * prior.strength) / (n + prior.strength)
