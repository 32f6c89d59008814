"""Chronic sites (顽疾): the same problem coming back at the same site soon after closure.

A **recurrence** is an issue at a site reported within ``window_days`` after the previous
issue of the same category at that site was closed as verified (a rejected or duplicate
report closed nothing). A site is
chronic for a category that recurs at least ``min_recurrences`` times and makes up at least
``min_share`` of all recurrences at the site: a chronic site is one problem that is not cured
at the root, whereas a place where many kinds of problem recur is a hotspot (the hotspot
analysis finds those). Pairs are ranked by recurrence count, then by the site's total.

Reports that arrive while the previous one is still open are not recurrences: they are the
same unsolved problem reported again (duplicates), not a problem that came back.

:func:`chronic_sites` ranks a frame of single issues; :func:`recurrence_gaps` and
:func:`rank_pairs` are its two halves, so that counts kept elsewhere (sitewatch's site
tallies, which look back over a site's whole history, so a problem closed just before a period
and back in it recurs in it) are ranked by the same rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_WINDOW_DAYS = 14
DEFAULT_CYCLE_DAYS = 10
DEFAULT_MIN_SHARE = 0.5
CHRONIC_COLUMNS = ["site_id", "category", "recurrences", "issues", "share", "site_recurrences",
                   "first_reported", "last_reported"]


def chronic_sites(issues: pd.DataFrame, *, window_days: float = DEFAULT_WINDOW_DAYS,
                  min_recurrences: int | None = None, cycle_days: float = DEFAULT_CYCLE_DAYS,
                  min_share: float = DEFAULT_MIN_SHARE) -> pd.DataFrame:
    """Rank chronic (site, category) pairs.

    Parameters
    ----------
    issues : columns ``site_id`` (missing: no site), ``category``, ``reported_at``,
        ``closed_at`` (missing while open) and ``status``; times tz-aware or naive alike.
    min_recurrences : by default one per inspection cycle (``cycle_days``, the supervision
        group's 10 days) over the span of the reports, at least 3: a problem that came back
        after closure on average every cycle.

    Returns
    -------
    pandas.DataFrame
        One row per chronic (site, category) with ``CHRONIC_COLUMNS``; ``site_recurrences``
        is the site's total over all its categories and ``share`` this category's part of
        it. Ordered most chronic first.

    Examples
    --------
    >>> t = pd.to_datetime(["2026-05-01", "2026-05-10", "2026-05-20", "2026-05-21"])
    >>> frame = pd.DataFrame({"site_id": [7, 7, 7, 7], "category": ["a"] * 4,
    ...     "reported_at": t, "status": ["verified", "verified", "verified", "reported"],
    ...     "closed_at": pd.to_datetime(["2026-05-05", "2026-05-15", "2026-05-25", None])})
    >>> chronic_sites(frame, min_recurrences=1)[["site_id", "recurrences"]].values.tolist()
    [[7, 2]]
    """
    frame = issues[issues["site_id"].notna()].copy()
    if frame.empty:
        return rank_pairs(pd.DataFrame(columns=PAIR_COLUMNS), span_days=0.0,
                          min_recurrences=min_recurrences, cycle_days=cycle_days,
                          min_share=min_share)
    span = frame["reported_at"].max() - frame["reported_at"].min()
    frame["site_id"] = frame["site_id"].astype(np.int64)
    gap = recurrence_gaps(frame)
    frame["recurs"] = (gap <= window_days).to_numpy(bool)  # NaN (no previous closure): False
    pairs = frame.groupby(["site_id", "category"], sort=False).agg(
        recurrences=("recurs", "sum"), issues=("recurs", "size"),
        first_reported=("reported_at", "min"), last_reported=("reported_at", "max"),
    ).reset_index()
    return rank_pairs(pairs, span_days=span / pd.Timedelta(days=1),
                      min_recurrences=min_recurrences, cycle_days=cycle_days,
                      min_share=min_share)


def recurrence_gaps(issues: pd.DataFrame) -> pd.Series[float]:
    """Each issue's gap in days from the closure, as verified, of the previous issue of its
    site and category (in report order, ties by position) to its report: NaN when there is
    no such closure or the report came before it (the problem was still open: a duplicate,
    not a recurrence). ``issues``: site-linked issues with the columns of
    :func:`chronic_sites`; the result has their index.

    Examples
    --------
    >>> t = pd.to_datetime(["2026-05-01", "2026-05-10", "2026-05-12"])
    >>> frame = pd.DataFrame({"site_id": [7, 7, 7], "category": ["a"] * 3, "reported_at": t,
    ...     "status": ["verified", "verified", "reported"],
    ...     "closed_at": pd.to_datetime(["2026-05-05", "2026-05-13", None])})
    >>> recurrence_gaps(frame).tolist()
    [nan, 5.0, nan]
    """
    order = issues.sort_values(["site_id", "category", "reported_at"], kind="stable")
    closed = order["closed_at"].where(order["status"] == "verified")
    previous_close = closed.groupby([order["site_id"], order["category"]]).shift()
    seconds = (order["reported_at"] - previous_close).dt.total_seconds().to_numpy(np.float64)
    gap = pd.Series(np.where(seconds >= 0, seconds / 86400.0, np.nan), index=order.index)
    return gap.reindex(issues.index)


# What :func:`rank_pairs` takes: per (site, category), its recurrences and issues in the period
# and its first and last report (times or days).
PAIR_COLUMNS = ["site_id", "category", "recurrences", "issues", "first_reported",
                "last_reported"]


def rank_pairs(pairs: pd.DataFrame, *, span_days: float, min_recurrences: int | None = None,
               cycle_days: float = DEFAULT_CYCLE_DAYS,
               min_share: float = DEFAULT_MIN_SHARE) -> pd.DataFrame:
    """The chronic pairs among ``pairs`` (``PAIR_COLUMNS``), ranked: the rule of
    :func:`chronic_sites` on counts already made, so that stored counts (the site tallies)
    and a frame of single issues are ranked alike. ``span_days``: from the period's first
    site-linked report to its last, which sets the default ``min_recurrences``."""
    if min_recurrences is None:
        min_recurrences = max(3, int(span_days / cycle_days))
    if pairs.empty:
        return pd.DataFrame(columns=CHRONIC_COLUMNS)
    pairs = pairs.copy()
    pairs["site_recurrences"] = pairs.groupby("site_id")["recurrences"].transform("sum")
    pairs["share"] = pairs["recurrences"] / pairs["site_recurrences"].where(
        pairs["site_recurrences"] > 0)
    chronic = pairs[(pairs["recurrences"] >= min_recurrences)
                    & (pairs["share"] >= min_share)]
    chronic = chronic.sort_values(["recurrences", "site_recurrences", "site_id"],
                                  ascending=[False, False, True], kind="stable")
    return chronic[CHRONIC_COLUMNS].reset_index(drop=True)
