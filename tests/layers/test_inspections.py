"""Inspection rounds on the demo district: plan, store, history, visits, findings as issues."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from layers.assignment import load_assigner
from layers.db.settings import Settings
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.inspections import rounds, visits
from layers.inspections.rounds import PlanRequest
from layers.inspections.visits import Finding

DAY = date(2026, 12, 1)


@pytest.fixture
def demo(demo_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to this test's own copy of the demo district (autocommit, as the API)."""
    with psycopg.connect(demo_dsn, autocommit=True) as connection:
        yield connection


def count(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    row = conn.execute(query, list(params)).fetchone()
    assert row is not None
    return int(row[0])


def store(conn: psycopg.Connection[Any], now: datetime, **kwargs: Any) -> rounds.StoredPlan:
    return rounds.plan_and_store(conn, PlanRequest(now=now, **kwargs), zone=Settings().zone,
                                 created_by="test")


def test_a_proposal_is_reproducible_and_stores_nothing(demo: psycopg.Connection[Any],
                                                       demo_now: datetime) -> None:
    first = rounds.propose(demo, PlanRequest(seed=11, now=demo_now, planned_for=DAY),
                           zone=Settings().zone)
    again = rounds.propose(demo, PlanRequest(seed=11, now=demo_now, planned_for=DAY),
                           zone=Settings().zone)
    other = rounds.propose(demo, PlanRequest(seed=12, now=demo_now, planned_for=DAY),
                           zone=Settings().zone)
    ids = [s.site_id for s in first.stops]
    assert ids == [s.site_id for s in again.stops]
    assert ids != [s.site_id for s in other.stops]
    assert len(set(ids)) == 8 and first.size == 8
    # 12 communities and 3 layers within 3 rounds: ceil(12/3) + ceil(3/3).
    assert first.min_size == 5
    assert 0 < first.route_length_m <= first.greedy_length_m
    assert first.uncoverable == []
    assert count(demo, "SELECT count(*) FROM inspection_round") == 0


def test_stored_rounds_visit_every_community_and_layer_within_cover_rounds(
        demo: psycopg.Connection[Any], demo_now: datetime) -> None:
    communities = {str(r[0]) for r in demo.execute(
        "SELECT code FROM jurisdiction WHERE level = 'community'")}
    layers = {str(r[0]) for r in demo.execute("SELECT DISTINCT layer FROM site")}
    covered = []
    for seed in range(7):
        plan = store(demo, demo_now, size=5, cover_rounds=3, seed=seed)
        covered.append(({s.community for s in plan.stops},
                        {s.layer for s in plan.stops}))
    for first in range(len(covered) - 2):
        window = covered[first:first + 3]
        assert set().union(*(c for c, _ in window)) == communities, first
        assert set().union(*(v for _, v in window)) == layers, first
    dates = [r[0] for r in demo.execute(
        "SELECT planned_for FROM inspection_round ORDER BY planned_for")]
    assert [(b - a).days for a, b in itertools.pairwise(dates)] == [10] * 6


def test_risk_counts_the_sites_issues_and_falls_after_a_visit(
        demo: psycopg.Connection[Any], demo_now: datetime) -> None:
    sites = rounds.candidates(demo, now=demo_now).set_index("site_id")
    issues = demo.execute("SELECT site_id, status, deadline, reported_at FROM issue"
                          " WHERE site_id IS NOT NULL").fetchall()
    open_ = ("reported", "assigned", "rectified")
    for site_id, row in sites.iterrows():
        mine = [i for i in issues if i[0] == site_id]
        assert row["open"] == sum(i[1] in open_ for i in mine)
        assert row["overdue"] == sum(i[1] in open_ and i[2] is not None and i[2] < demo_now
                                     for i in mine)
        assert row["recent"] == sum(demo_now - timedelta(days=90) < i[3] <= demo_now
                                    for i in mine)
    assert sites["overdue"].sum() > 0 and sites["community"].notna().all()
    # Visiting a stop makes its site fresh: staleness (3, the cap, when never visited) drops
    # to about 0; nothing else about the site changes.
    plan = store(demo, demo_now, seed=3, planned_for=DAY)
    soon = datetime.now(UTC) + timedelta(minutes=1)
    before = rounds.candidates(demo, now=soon).set_index("site_id")
    visits.visit(demo, plan.id, 1, actor="test")
    after = rounds.candidates(demo, now=soon).set_index("site_id")
    site = plan.stops[0].site_id
    risk_before, risk_after = (float(frame["risk"].loc[site]) for frame in (before, after))
    assert risk_after == pytest.approx(risk_before - 3.0, abs=0.01)
    others = before.index != site
    assert (after["risk"][others] == before["risk"][others]).all()


def test_a_site_outside_every_community_is_planned_and_stored_with_nothing_missing_as_nan(
        demo: psycopg.Connection[Any], demo_now: datetime) -> None:
    # pandas holds a missing number as NaN; the plan's stops must say None, which psycopg
    # stores as NULL and JSON as null.
    demo.execute("""
        INSERT INTO site (layer, name, geom)
        SELECT 'market', '界外市场', ST_SetSRID(ST_MakePoint(ST_XMax(e) + 0.005,
                                                            ST_YMax(e) + 0.005), 4326)
        FROM (SELECT ST_Extent(geom) AS e FROM jurisdiction) x""")
    plan = store(demo, demo_now, size=count(demo, "SELECT count(*) FROM site"), seed=1,
                 planned_for=DAY)
    [outside] = [s for s in plan.stops if s.site_name == "界外市场"]
    assert (outside.site_code, outside.community_id, outside.community,
            outside.interval_days, outside.days_since_visit) == (None, None, None, None, None)
    [stored] = [s for s in visits.stops(demo, plan.id) if s.seq == outside.seq]
    assert (stored.site_name, stored.community) == ("界外市场", None)


def test_rounds_are_dated_in_order_one_a_day(demo: psycopg.Connection[Any],
                                             demo_now: datetime) -> None:
    store(demo, demo_now, seed=1, planned_for=DAY)
    with pytest.raises(Conflict, match="already planned"):
        store(demo, demo_now, seed=2, planned_for=DAY)
    with pytest.raises(ValidationFailed, match="date order"):
        store(demo, demo_now, seed=2, planned_for=DAY - timedelta(days=1))
    assert store(demo, demo_now, seed=2).planned_for == DAY + timedelta(days=10)
    assert store(demo, demo_now, seed=2, interval_days=7).planned_for == \
        DAY + timedelta(days=17)
    assert count(demo, "SELECT count(*) FROM inspection_round") == 3


def test_a_round_too_small_is_refused_naming_the_minimum(demo: psycopg.Connection[Any],
                                                         demo_now: datetime) -> None:
    with pytest.raises(ValidationFailed, match="at least 5 places"):
        store(demo, demo_now, size=4, cover_rounds=3)
    with pytest.raises(ValidationFailed) as bad:
        store(demo, demo_now, size=0, cover_rounds=60, seed=-1)
    assert isinstance(bad.value.details, list)
    assert {d["field"] for d in bad.value.details} == {"size", "cover_rounds", "seed"}
    assert count(demo, "SELECT count(*) FROM inspection_round") == 0
    assert count(demo, "SELECT count(*) FROM inspection_stop") == 0


def test_visits_move_the_round_from_planned_to_done(demo: psycopg.Connection[Any],
                                                    demo_now: datetime) -> None:
    plan = store(demo, demo_now, size=5, seed=4, planned_for=DAY)
    assert rounds.get_round(demo, plan.id).status == "planned"
    stop = visits.visit(demo, plan.id, 2, actor="巡查员甲")
    assert stop.visited_by == "巡查员甲" and stop.visited_at is not None
    assert rounds.get_round(demo, plan.id).status == "in_progress"
    with pytest.raises(Conflict, match="already visited"):
        visits.visit(demo, plan.id, 2, actor="巡查员乙")
    with pytest.raises(NotFound):
        visits.visit(demo, plan.id, 99, actor="x")
    with pytest.raises(NotFound):
        visits.visit(demo, plan.id + 1, 1, actor="x")
    for seq in (1, 3, 4, 5):
        visits.visit(demo, plan.id, seq, actor="巡查员甲")
    summary = rounds.get_round(demo, plan.id)
    assert (summary.status, summary.visited, summary.stops) == ("done", 5, 5)


def test_findings_become_supervision_issues_linked_to_the_round(
        demo: psycopg.Connection[Any], demo_now: datetime) -> None:
    plan = store(demo, demo_now, seed=5, planned_for=DAY)
    at = plan.stops[1]
    category = visits.checklist_for(visits.checklists(demo),
                                               at.layer)[0].code
    ids = visits.record_findings(demo, load_assigner(demo), plan.id, [
        Finding(category=category, lon=at.lon, lat=at.lat, description="督查发现问题",
                seq=2),
        Finding(category="CTY-05", lon=at.lon + 0.0005, lat=at.lat,
                description="两站之间暴露垃圾"),
    ], actor="督查组", actor_role="supervisor")
    assert len(ids) == 2
    rows = demo.execute(
        "SELECT i.public_id, i.source, i.status, i.lead_unit_id IS NOT NULL, i.site_id, f.seq"
        " FROM inspection_finding f JOIN issue i ON i.id = f.issue_id"
        " WHERE f.round_id = %s ORDER BY i.id", [plan.id]).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows] == [
        (ids[0], "supervision", "assigned", True, 2), (ids[1], "supervision", "assigned",
                                                       True, None)]
    assert rows[0][4] == at.site_id
    assert count(demo, "SELECT count(*) FROM issue_event e JOIN issue i ON i.id = e.issue_id"
                       " WHERE i.public_id = ANY(%s) AND e.action = 'report'", ids) == 2
    stops = visits.stops(demo, plan.id)
    assert stops[1].findings == [ids[0]] and stops[1].visited_by == "督查组"
    assert stops[0].visited_at is None
    assert rounds.get_round(demo, plan.id).findings == 2


def test_invalid_findings_store_nothing_and_name_each_problem(
        demo: psycopg.Connection[Any], demo_now: datetime) -> None:
    plan = store(demo, demo_now, seed=6, planned_for=DAY)
    at = plan.stops[0]
    issues_before = count(demo, "SELECT count(*) FROM issue")
    with pytest.raises(ValidationFailed) as bad:
        visits.record_findings(demo, load_assigner(demo), plan.id, [
            Finding(category="CTY-05", lon=at.lon, lat=at.lat, description="ok", seq=1),
            Finding(category="NOPE-01", lon=at.lon, lat=at.lat, description="x"),
            Finding(category="CTY-05", lon=at.lon, lat=at.lat, description="x", seq=42),
        ], actor="督查组", actor_role="supervisor")
    assert isinstance(bad.value.details, list)
    assert [(d["index"], d["field"]) for d in bad.value.details] == [(1, "category"),
                                                                     (2, "seq")]
    assert count(demo, "SELECT count(*) FROM issue") == issues_before
    assert count(demo, "SELECT count(*) FROM inspection_finding") == 0
    assert count(demo, "SELECT count(*) FROM inspection_stop WHERE visited_at IS NOT NULL") \
        == 0
    with pytest.raises(NotFound):
        visits.record_findings(demo, load_assigner(demo), plan.id + 1, [
            Finding(category="CTY-05", lon=at.lon, lat=at.lat, description="x")],
            actor="督查组", actor_role="supervisor")


def test_checklist_is_the_layers_categories_or_else_the_territorial_ones(
        demo: psycopg.Connection[Any]) -> None:
    demo.execute("INSERT INTO site_layer (code, name_zh, name_en)"
                 " VALUES ('back_street', '后街背巷', 'Back street')")
    demo.execute("UPDATE category SET active = false WHERE code = 'MKT-04'")
    lists = visits.checklists(demo)
    market = [c.code for c in visits.checklist_for(lists, "market")]
    assert market == ["MKT-01", "MKT-02", "MKT-03"]
    street = [c.code for c in visits.checklist_for(lists, "back_street")]
    assert street and all(c.startswith(("CTY-", "BEH-")) for c in street)
    first = lists["market"][0]
    assert first.name_zh and first.name_en and first.points > 0
