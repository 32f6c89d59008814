"""Inspection rounds planned the way assessors inspect: random, small, risk-weighted, stratified.

National assessors come unannounced, in small teams, many times a year, and may stop anywhere.
The supervision group (督查指导组) imitates them every 10 days with a small sample of sites:

* **Risk-weighted.** A site is drawn with probability growing with its risk score
  (:func:`risk_scores`), so places that keep producing problems are seen more often, while the
  baseline of 1 keeps every site possible, as it is for an assessor.
* **Stratified with a coverage guarantee.** Every community (社区, "whose ground, whose
  responsibility") and every site layer must be visited at least once in every
  ``cover_rounds`` consecutive rounds. Each round first serves, in each family of strata
  (communities; layers), the ``ceil(strata / cover_rounds)`` strata visited least recently
  (never visited first; ties in a seeded random order), with one risk-weighted site inside
  each. The remaining places are drawn by risk-weighted sampling without replacement.
* **Reproducible.** The same candidates, history and seed give the same round (numpy's
  ``default_rng(seed)``; candidates are taken in site-id order, whatever order they came in).

Why the least recently visited strata rather than only those already due: serving only due
strata fails as soon as more come due at once than there are places (on the first round every
stratum is "due"). Serving the ``q = ceil(m / K)`` oldest of ``m`` strata every round is a
rotation that cannot miss: while a stratum waits, every round moves ``q`` strata from ahead of
it to behind it, and nothing moves back ahead, so after ``ceil(m / q) <= K`` rounds it is
served. Extra visits by the weighted draw only move strata behind, which never delays anyone.
The guarantee thus needs ``size >= ceil(communities / K) + ceil(layers / K)``
(:func:`min_round_size`); a smaller round is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from geo.route import walking_route

__all__ = ["RiskWeights", "RoundPlan", "RoundTooSmall", "Stratum", "min_round_size",
           "plan_round", "risk_scores"]

FloatArray = NDArray[np.float64]
#: ``("community", code)`` or ``("layer", code)``.
Stratum = tuple[str, str]
FAMILIES = ("community", "layer")
CANDIDATE_COLUMNS = ("site_id", "layer", "community", "x", "y", "risk")
#: The campaign's rhythm: the supervision group inspects at least every 10 days.
DEFAULT_INTERVAL_DAYS = 10


class RoundTooSmall(ValueError):
    """The round is too small for the coverage guarantee; ``minimum`` is what it needs."""

    def __init__(self, message: str, minimum: int) -> None:
        super().__init__(message)
        self.minimum = minimum


@dataclass(frozen=True)
class RiskWeights:
    """Weights of the risk score; see :func:`risk_scores`."""

    recent: float = 1.0
    open: float = 1.0
    overdue: float = 2.0
    stale: float = 1.0
    #: A site unvisited for this many inspection intervals counts no staler than that.
    stale_cap: float = 3.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"risk weight {name} must be a finite number >= 0")


def risk_scores(recent: ArrayLike, open_: ArrayLike, overdue: ArrayLike,
                days_since_visit: ArrayLike, interval_days: ArrayLike,
                weights: RiskWeights | None = None) -> FloatArray:
    """Risk of each site: how much an inspection there is worth now.

    ``risk = 1 + w_recent·ln(1 + recent) + w_open·ln(1 + open) + w_overdue·ln(1 + overdue)
    + w_stale·min(days_since_visit / interval_days, stale_cap)``

    The logarithms damp counts, so one site with a hundred issues does not take every draw;
    overdue issues weigh double by default because they are the points about to be lost;
    staleness counts inspection intervals since the last visit (never visited: the cap).

    Parameters
    ----------
    recent : issues at the site reported recently (e.g. in the last 90 days).
    open_ : its open issues (reported, assigned or rectified).
    overdue : its open issues past their deadline.
    days_since_visit : days since a round last visited it; NaN for never.
    interval_days : the site's inspection interval in days (NaN: 10, the campaign's rhythm).
    weights : :class:`RiskWeights`; the defaults above when None.

    Examples
    --------
    >>> risk_scores([0, 0], [0, 0], [0, 0], [0, float("nan")], [10, 10]).tolist()
    [1.0, 4.0]
    >>> round(float(risk_scores([0], [1], [1], [20], [10])[0]), 3)  # 1 + ln 2 + 2 ln 2 + 2
    5.079
    """
    w = weights or RiskWeights()
    interval = np.asarray(interval_days, dtype=np.float64)
    interval = np.where(np.isfinite(interval) & (interval > 0), interval, DEFAULT_INTERVAL_DAYS)
    stale = np.asarray(days_since_visit, dtype=np.float64) / interval
    stale = np.where(np.isnan(stale), w.stale_cap, np.clip(stale, 0.0, w.stale_cap))
    return np.asarray(
        1.0 + w.recent * np.log1p(_counts(recent)) + w.open * np.log1p(_counts(open_))
        + w.overdue * np.log1p(_counts(overdue)) + w.stale * stale, dtype=np.float64)


def _counts(values: ArrayLike) -> FloatArray:
    return np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, None)


def min_round_size(n_communities: int, n_layers: int, cover_rounds: int) -> int:
    """The smallest round that keeps the coverage guarantee.

    Examples
    --------
    >>> min_round_size(12, 3, 3)
    5
    """
    return math.ceil(n_communities / cover_rounds) + math.ceil(n_layers / cover_rounds)


@dataclass(frozen=True)
class RoundPlan:
    """A planned round: stops in walking order and the route's length.

    ``stops`` has the candidate columns plus ``seq`` (1, 2, ... in walking order) and
    ``reason``: ``{"why": "stratum", "stratum": "community"|"layer", "code": ...,
    "rounds_since": n or None (never)}`` when it was drawn to cover a stratum, or
    ``{"why": "risk"}`` when drawn by risk alone.
    """

    stops: pd.DataFrame
    route_length_m: float
    greedy_length_m: float
    min_size: int


def plan_round(candidates: pd.DataFrame, *, size: int, seed: int, cover_rounds: int,
               rounds_since: Mapping[Stratum, int] | None = None,
               start: ArrayLike | None = None) -> RoundPlan:
    """Draw the next round's sample and order it into a walking route.

    Parameters
    ----------
    candidates : pandas.DataFrame
        One row per site that may be inspected: ``site_id`` (unique), ``layer``,
        ``community`` (code, or None when the site lies in none), ``x``, ``y`` (metres, a
        local metric CRS) and ``risk`` (> 0, see :func:`risk_scores`).
    size : int
        Places to visit; at most every candidate once.
    seed : int
        Seed of the random draw (>= 0).
    cover_rounds : int
        Every community and layer is visited at least once in this many consecutive rounds.
    rounds_since : mapping, optional
        For each stratum, rounds since a round last visited it (1: the previous round).
        Strata missing from it were never visited.
    start : array_like, optional
        Where the walk begins (x, y in the same CRS); default: the best end of the route.

    Raises
    ------
    RoundTooSmall
        When ``size`` is below :func:`min_round_size`; the message names the minimum.
    ValueError
        When the input is malformed.

    Examples
    --------
    >>> sites = pd.DataFrame({"site_id": [1, 2, 3, 4], "layer": ["market", "market",
    ...     "old_compound", "old_compound"], "community": ["A", "B", "A", "B"],
    ...     "x": [0.0, 100.0, 0.0, 100.0], "y": [0.0, 0.0, 100.0, 100.0],
    ...     "risk": [1.0, 2.0, 1.0, 5.0]})
    >>> plan = plan_round(sites, size=2, seed=7, cover_rounds=2)
    >>> len(plan.stops), plan.min_size, plan.route_length_m >= 100
    (2, 2, True)
    >>> plan_round(sites, size=1, seed=7, cover_rounds=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo.sampling.RoundTooSmall: a round of 1 cannot visit every one of ... at least 4 places
    """
    frame = _checked(candidates, size=size, seed=seed, cover_rounds=cover_rounds)
    since = dict(rounds_since or {})
    strata = {family: sorted(set(frame[family].dropna())) for family in FAMILIES}
    minimum = min_round_size(len(strata["community"]), len(strata["layer"]), cover_rounds)
    if size < minimum:
        raise RoundTooSmall(
            f"a round of {size} cannot visit every one of {len(strata['community'])} "
            f"communities and {len(strata['layer'])} layers within {cover_rounds} round(s); "
            f"it needs at least {minimum} places", minimum)
    size = min(size, len(frame))
    rng = np.random.default_rng(seed)
    risk = frame["risk"].to_numpy(np.float64)
    picked: list[int] = []
    reasons: list[dict[str, Any]] = []
    for family in FAMILIES:
        values = frame[family].to_numpy(object)
        for code in _least_recent(strata[family], family, since, cover_rounds, rng):
            members = values == code
            if members[picked].any():
                continue  # already visited by an earlier pick (a community's site, its layer)
            choice = _weighted(rng, np.flatnonzero(members), risk, 1)[0]
            picked.append(choice)
            reasons.append({"why": "stratum", "stratum": family, "code": code,
                            "rounds_since": since.get((family, code))})
    rest = np.setdiff1d(np.arange(len(frame)), picked)
    for choice in _weighted(rng, rest, risk, size - len(picked)):
        picked.append(choice)
        reasons.append({"why": "risk"})
    return _routed(frame, picked, reasons, start, minimum)


def _checked(candidates: pd.DataFrame, *, size: int, seed: int, cover_rounds: int
             ) -> pd.DataFrame:
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates]
    if missing:
        raise ValueError(f"candidates lack columns {missing}")
    if candidates.empty:
        raise ValueError("there are no sites to inspect")
    if size < 1 or cover_rounds < 1 or seed < 0:
        raise ValueError("size and cover_rounds must be at least 1 and seed at least 0")
    if candidates["site_id"].duplicated().any():
        raise ValueError("each site may be a candidate once")
    risk = candidates["risk"].to_numpy(np.float64)
    if not (np.isfinite(risk).all() and (risk > 0).all()):
        raise ValueError("risk must be a finite number > 0 for every site")
    frame = candidates.sort_values("site_id", kind="stable").reset_index(drop=True)
    # None and NaN alike mean "in no community"; the stratum code itself stays a string.
    frame["community"] = frame["community"].astype(object).where(frame["community"].notna(),
                                                                 None)
    return frame


def _least_recent(codes: list[str], family: str, since: Mapping[Stratum, int],
                  cover_rounds: int, rng: np.random.Generator) -> list[str]:
    """The ``ceil(len(codes) / cover_rounds)`` strata visited least recently."""
    quota = math.ceil(len(codes) / cover_rounds)
    age = np.array([since.get((family, c), math.inf) for c in codes], dtype=np.float64)
    tie_break = rng.random(len(codes))
    order = np.lexsort((tie_break, -age))
    return [codes[i] for i in order[:quota]]


def _weighted(rng: np.random.Generator, pool: NDArray[Any], risk: FloatArray, k: int
              ) -> list[int]:
    """``k`` of ``pool`` without replacement, each draw proportional to risk."""
    if k <= 0 or len(pool) == 0:
        return []
    weights = risk[pool] / risk[pool].sum()
    return [int(i) for i in rng.choice(pool, size=min(k, len(pool)), replace=False,
                                       p=weights)]


def _routed(frame: pd.DataFrame, picked: list[int], reasons: list[dict[str, Any]],
            start: ArrayLike | None, minimum: int) -> RoundPlan:
    stops = frame.iloc[picked].reset_index(drop=True)
    stops["reason"] = pd.Series(reasons, index=stops.index, dtype=object)
    order, length, greedy = walking_route(stops[["x", "y"]].to_numpy(np.float64), start)
    stops = stops.iloc[order].reset_index(drop=True)
    stops.insert(0, "seq", np.arange(1, len(stops) + 1))
    return RoundPlan(stops=stops, route_length_m=length, greedy_length_m=greedy,
                     min_size=minimum)
