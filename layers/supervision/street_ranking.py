"""Street rankings (街道排名) for a period or a campaign phase, as the district's assessors rank
streets: points lost (扣分), on-time closure rate (按期办结率) and rework rate (返工率), each
street ranked on each, worst first.

The figures are :func:`layers.supervision.scores.ranking` by street, counted from the same
tallies by the same rules as the units' and communities' scores (one engine per rule), so a
street's figures are the sums of its communities' and the streets' together the units'. The
rates are ranked raw, as the assessors publish them, over the streets with at least
``min_cases`` cases for the rate (Settings.rank_min_cases; a street below it is unranked on
that rate); a street without issues in the period is listed with zeros.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg

from layers.errors import NotFound
from layers.supervision import rates, scores
from layers.supervision.scores import Score, Sort

Measure = Literal["points_lost", "on_time_rate", "rework_rate"]
MEASURES: tuple[Measure, ...] = get_args(Measure)
# The scores' sort behind each measure: points lost breaks its ties by points at risk.
_SORTS: dict[Measure, Sort] = {"points_lost": "points", "on_time_rate": "on_time_rate",
                               "rework_rate": "rework_rate"}


@dataclass(frozen=True)
class StreetScore(Score):
    """One street's scores with its rank on each measure; ``rank`` is its rank on the measure
    the ranking is ordered by. ``name_en``: the street office's English name."""

    name_en: str | None
    points_lost_rank: int | None
    on_time_rank: int | None
    rework_rank: int | None


def _streets(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    return conn.execute(
        "SELECT j.code, j.name, u.name_en FROM jurisdiction j"
        " LEFT JOIN unit u ON u.id = j.unit_id"
        " WHERE j.level = 'street' AND j.parent_id IS NULL ORDER BY j.code").fetchall()


def ranking(conn: psycopg.Connection[Any], *, since: datetime, until: datetime,
            by: Measure = "points_lost", min_cases: int = rates.MIN_CASES,
            street: str | None = None) -> list[StreetScore]:
    """Every street ranked on the three measures, ordered by ``by`` worst first (unranked
    streets last); with ``street`` (a code), that street's row alone, ranked among all
    (NotFound for an unknown street)."""
    known = _streets(conn)
    if street is not None and street not in {code for code, _, _ in known}:
        raise NotFound(f"没有街道 {street!r} / no street {street!r}")
    counted = {s.code: s for s in scores.ranking(conn, group="street", since=since,
                                                  until=until, min_cases=min_cases)}
    rows = [counted.get(code) or scores.empty(code, name, "street") for code, name, _ in known]
    ranks = {m: {s.code: s.rank for s in scores.ranked(rows, _SORTS[m], min_cases)}
             for m in MEASURES}
    english = {code: en for code, _, en in known}
    ordered = scores.ranked(rows, _SORTS[by], min_cases)
    out = [StreetScore(**asdict(s), name_en=english[str(s.code)],
                       points_lost_rank=ranks["points_lost"][s.code],
                       on_time_rank=ranks["on_time_rate"][s.code],
                       rework_rank=ranks["rework_rate"][s.code]) for s in ordered]
    return [s for s in out if street is None or s.code == street]
