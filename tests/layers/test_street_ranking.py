"""Street rankings (街道排名): the same rules as the units' and communities' scores, so a street's
figures are its communities' sums and the streets' together the units'; ranked on points
lost, on-time closure and rework; every street listed, an unknown one refused."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest
from psycopg import sql

from layers.catalog import phases
from layers.db.settings import Settings
from layers.errors import NotFound
from layers.supervision import scores, street_ranking

ZONE = Settings().zone
SUMMED = ("issues", "open", "overdue_open", "points_at_risk", "points_lost", "reworks",
          "rework_cases", "on_time_cases")


@pytest.fixture(scope="module")
def conn(streets_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(streets_dsn) as connection:
        yield connection


@pytest.fixture(scope="module")
def period(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[datetime, datetime]:
    attack = phases.get(conn, "attack", 2026)
    return attack.since(ZONE), attack.until(ZONE)


def _sums(rows: list[scores.Score], key: dict[str, str] | None = None
          ) -> dict[str | None, dict[str, float]]:
    out: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        group = key[str(row.code)] if key is not None else None
        for name in SUMMED:
            out[group][name] += getattr(row, name)
    return {g: {k: round(v, 6) for k, v in m.items()} for g, m in out.items()}


def test_a_streets_figures_are_the_sums_of_its_communities(
    conn: psycopg.Connection[tuple[object, ...]], period: tuple[datetime, datetime]
) -> None:
    since, until = period
    streets = street_ranking.ranking(conn, since=since, until=until)
    communities = scores.ranking(conn, group="community", since=since, until=until)
    street_of = {str(c): str(s) for c, s in conn.execute(
        "SELECT c.code, s.code FROM jurisdiction c JOIN jurisdiction s ON s.id = c.parent_id"
        " WHERE c.level = 'community'").fetchall()}
    assert len(streets) == 3 and all(s.issues > 0 for s in streets)
    by_street = _sums(communities, street_of)
    for street in streets:
        assert {k: round(getattr(street, k), 6) for k in SUMMED} == by_street[street.code]


def test_the_streets_together_are_the_units(
    conn: psycopg.Connection[tuple[object, ...]], period: tuple[datetime, datetime]
) -> None:
    since, until = period
    streets = street_ranking.ranking(conn, since=since, until=until)
    units = scores.ranking(conn, group="unit", since=since, until=until)
    assert _sums(list(streets)) == _sums(units)


def test_points_lost_per_street_match_the_issues_themselves(
    conn: psycopg.Connection[tuple[object, ...]], period: tuple[datetime, datetime]
) -> None:
    since, until = period
    direct = {str(code): float(str(v)) for code, v in conn.execute(sql.SQL("""
        SELECT st.code, sum(c.points) FILTER (WHERE {lost})::float8
        FROM issue i JOIN category c ON c.code = i.category_code
        JOIN jurisdiction g ON g.id = i.jurisdiction_id
        JOIN jurisdiction m ON m.id = g.parent_id
        JOIN jurisdiction st ON st.id = m.parent_id
        WHERE i.reported_at >= %s AND i.reported_at < %s GROUP BY st.code""").format(
        lost=scores.LOST), [since, until]).fetchall()}
    streets = street_ranking.ranking(conn, since=since, until=until)
    assert {s.code: round(s.points_lost, 6) for s in streets} == {
        k: round(v, 6) for k, v in direct.items()}


def test_streets_are_ranked_on_each_measure_worst_first(
    conn: psycopg.Connection[tuple[object, ...]], period: tuple[datetime, datetime]
) -> None:
    since, until = period
    rows = street_ranking.ranking(conn, since=since, until=until, min_cases=1)
    assert [s.rank for s in rows] == [s.points_lost_rank for s in rows]
    assert [s.points_lost for s in rows] == sorted((s.points_lost for s in rows), reverse=True)

    def worst(rank: str, value: str, high: bool) -> float:
        first = next(s for s in rows if getattr(s, rank) == 1)
        values = [getattr(s, value) for s in rows]
        assert getattr(first, value) == (max(values) if high else min(values))
        return float(getattr(first, value))

    worst("points_lost_rank", "points_lost", high=True)
    worst("rework_rank", "rework_rate", high=True)
    worst("on_time_rank", "on_time_rate", high=False)
    by_rework = street_ranking.ranking(conn, since=since, until=until, by="rework_rate",
                                       min_cases=1)
    assert [s.rank for s in by_rework] == sorted(s.rework_rank or 0 for s in by_rework)
    assert {s.name_en for s in rows} >= {"Xinghu Sub-district Office"}


def test_every_street_is_listed_even_without_issues(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    rows = street_ranking.ranking(conn, since=datetime(2020, 1, 1, tzinfo=ZONE),
                                  until=datetime(2020, 2, 1, tzinfo=ZONE))
    assert sorted(s.code or "" for s in rows) == ["320571001", "320571002", "320571003"]
    assert all(s.issues == 0 and s.points_lost == 0.0 and s.points_lost_rank == 1
               for s in rows)
    assert all(s.on_time_rank is None and s.on_time_rate is None for s in rows)


def test_one_street_is_ranked_among_all_and_an_unknown_one_is_refused(
    conn: psycopg.Connection[tuple[object, ...]], period: tuple[datetime, datetime]
) -> None:
    since, until = period
    everyone = {s.code: s for s in street_ranking.ranking(conn, since=since, until=until)}
    [one] = street_ranking.ranking(conn, since=since, until=until, street="320571002")
    assert one == everyone["320571002"]
    with pytest.raises(NotFound, match="320571999"):
        street_ranking.ranking(conn, since=since, until=until, street="320571999")
