"""The tallies (layers/analysis/tallies.py) equal a recount of the issue table after random
histories through the normal write paths, and the analyses read from them equal the
analyses of the raw points, cell for cell."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import class_row

from geo.hotspots import analyse, sites_per_cell
from geo.hotspots.chronic import rank_pairs, recurrence_gaps
from geo.hotspots.emerging import bin_times, emerging_hotspots, time_steps
from layers.analysis import hotspots, tallies
from layers.analysis.hotspots import HotspotQuery
from layers.assignment import load_assigner
from layers.auth import tokens
from layers.auth.tokens import Principal
from layers.catalog import jurisdictions, sites
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.issues import evidence, lifecycle, records
from layers.supervision import scores
from layers.vocab import DISMISSED_STATUSES
from layers.worker.jobs import JOBS
from tests import small_district

ZONE = Settings().zone
Key = tuple[Any, ...]


def recount(conn: psycopg.Connection[Any], zone: tzinfo, *, months: bool = False
            ) -> Counter[Key]:
    """The tallies as they should be, counted from the issue table (independently of the
    fold: SQL for the columns, h3 per point, a Counter)."""
    rows = conn.execute("""
        SELECT ST_X(geom), ST_Y(geom), (reported_at AT TIME ZONE %s)::date, category_code,
               jurisdiction_id, site_id, issue_is_open(status),
               deadline, closed_at, source, street_id
        FROM issue WHERE status NOT IN ('rejected', 'duplicate')""", [str(zone)]).fetchall()
    # Deadlines passed when the tallies were last folded stand as tallies.OVERDUE.
    compacted = conn.execute("SELECT compacted_to FROM tally_basis").fetchone()
    passed = compacted[0] if compacted and compacted[0] else datetime.min.replace(tzinfo=UTC)
    out: Counter[Key] = Counter()
    for (lon, lat, day, category, jurisdiction, site, is_open, deadline, closed, source,
         street) in rows:
        cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, tallies.RESOLUTION))
        late = not is_open and deadline is not None and closed > deadline
        due = (tallies.OVERDUE if deadline is not None and deadline < passed else deadline)
        out[(cell, day.replace(day=1) if months else day, category, jurisdiction, site,
             is_open, due if is_open else None, late,
             source == "external_assessment", street)] += 1
    return out


def per_cell(full: Counter[Key]) -> Counter[Key]:
    """A recount on the per-cell key (cell, day, open, deadline, street)."""
    out: Counter[Key] = Counter()
    for key, n in full.items():
        out[(key[0], key[1], key[5], key[6], key[9])] += n
    return out


def per_ground(full: Counter[Key]) -> Counter[Key]:
    """A recount on the per-jurisdiction key (tallies.GROUND_KEY)."""
    out: Counter[Key] = Counter()
    for key, n in full.items():
        out[(key[1], key[3], key[2], key[5], key[6], key[7], key[8], key[9])] += n
    return out


def recount_sites(conn: psycopg.Connection[Any], zone: tzinfo, *, months: bool = False
                  ) -> Counter[Key]:
    """The site tallies as they should be: each counted site-linked issue's gap from
    geo.hotspots.chronic over its pair's whole history, in whole days rounded up."""
    frame = pd.DataFrame(conn.execute("""
        SELECT site_id, category_code AS category, status, reported_at, closed_at,
               (reported_at AT TIME ZONE %s)::date AS day
        FROM issue WHERE site_id IS NOT NULL AND status <> ALL(%s)
        ORDER BY id""", [str(zone), list(DISMISSED_STATUSES)]).fetchall(),
        columns=["site_id", "category", "status", "reported_at", "closed_at", "day"])
    if frame.empty:
        return Counter()
    for column in ("reported_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    gaps = recurrence_gaps(frame)
    out: Counter[Key] = Counter()
    for day, site, category, gap in zip(frame["day"], frame["site_id"], frame["category"],
                                        gaps, strict=True):
        kept = None if np.isnan(gap) or gap > tallies.MAX_GAP_DAYS else math.ceil(gap)
        out[(site, category, day.replace(day=1) if months else day, kept)] += 1
    return out


KEYS = {"tally_cell": tallies.CELL_KEY, "ground": tallies.GROUND_KEY,
        "site": ("site_id", "category_code", "day", "gap"), "tally": tallies.KEY}


def stored(conn: psycopg.Connection[Any], table: str) -> Counter[Key]:
    key = next(k for prefix, k in KEYS.items() if table.startswith(prefix))
    rows = conn.execute(f"SELECT {', '.join(key)}, n FROM {table}").fetchall()
    assert all(row[-1] > 0 for row in rows), "a tally row with no issues was kept"
    return Counter({tuple(row[:-1]): row[-1] for row in rows})


def assert_tallies_equal_a_recount(conn: psycopg.Connection[Any], zone: tzinfo) -> None:
    assert stored(conn, "tally_day") == recount(conn, zone)
    assert stored(conn, "tally_month") == recount(conn, zone, months=True)
    assert stored(conn, "tally_cell_day") == per_cell(recount(conn, zone))
    assert stored(conn, "tally_cell_month") == per_cell(recount(conn, zone, months=True))
    assert stored(conn, "ground_day") == per_ground(recount(conn, zone))
    assert stored(conn, "ground_month") == per_ground(recount(conn, zone, months=True))
    assert stored(conn, "site_day") == recount_sites(conn, zone)
    assert stored(conn, "site_month") == recount_sites(conn, zone, months=True)


SUPERVISORS = ("extend_deadline", "verify", "reopen")


class History:
    """Random changes to the small district through the layers' own write paths."""

    def __init__(self, conn: psycopg.Connection[Any], seed: int, photo: Callable[[], str],
                 caller: Principal) -> None:
        self.conn, self.rng, self.photo, self.caller = conn, random.Random(seed), photo, caller
        self.bulk_days = tallies.BULK_DAYS
        supervisor = tokens.authenticate(conn, tokens.create(conn, role="supervisor",
                                                             name="督查组"))
        assert supervisor is not None
        self.supervisor = supervisor
        # A few categories, so that a site sees one category again and again.
        self.categories = [c for (c,) in conn.execute(
            "SELECT code FROM category WHERE active ORDER BY code LIMIT 4").fetchall()]
        self.now = datetime.now(UTC)

    def report(self) -> None:
        rng = self.rng
        new = [records.NewIssue(
            category=rng.choice(self.categories),
            lon=rng.uniform(small_district.WEST - 0.002, small_district.EAST + 0.002),
            lat=rng.uniform(small_district.SOUTH, small_district.NORTH),
            description="随机问题",
            source=rng.choice(["self_inspection", "supervision", "external_assessment"]),
            # Across three months, so whole months and edge days both hold issues.
            reported_at=self.now - timedelta(days=rng.uniform(0, 75)))
            for _ in range(rng.randint(1, 25))]
        records.create_many(self.conn, load_assigner(self.conn), new, actor="巡查员",
                            actor_role="inspector")

    def transition(self) -> None:
        row = self.conn.execute(
            "SELECT public_id, status, version, deadline FROM issue WHERE"
            " issue_is_open(status) ORDER BY public_id OFFSET %s LIMIT 1",
            [self.rng.randrange(3)]).fetchone()
        if row is None:
            return
        public_id, status, version, deadline = row
        options = {"reported": ["assign", "reject", "mark_duplicate"],
                   "assigned": ["rectify", "extend_deadline", "reject"],
                   "rectified": ["verify", "reopen"]}.get(status, [])
        if not options:
            return
        action = self.rng.choice(options)
        change = lifecycle.Transition(
            action, version, note="随机",
            unit=self.rng.choice(["E", "W"]) if action == "assign" else None,
            duplicate_of=self._other(public_id) if action == "mark_duplicate" else None,
            deadline=(max(deadline or self.now, self.now) + timedelta(days=3)
                      if action == "extend_deadline" else None),
            evidence=(self.photo(),) if action == "rectify" else ())
        if change.duplicate_of is None and action == "mark_duplicate":
            return
        lifecycle.apply(self.conn, public_id, change,
                        self.supervisor if action in SUPERVISORS else self.caller)

    def _other(self, public_id: str) -> str | None:
        row = self.conn.execute("SELECT public_id FROM issue WHERE public_id <> %s"
                                " AND status NOT IN ('rejected', 'duplicate') LIMIT 1",
                                [public_id]).fetchone()
        return None if row is None else str(row[0])

    def redraw(self) -> None:
        border = self.rng.uniform(small_district.WEST + 0.003, small_district.EAST - 0.003)
        jurisdictions.update(self.conn, "CW", {"geometry": small_district.box(
            small_district.WEST, border)}, actor="创建办")
        jurisdictions.update(self.conn, "CE", {"geometry": small_district.box(
            border, small_district.EAST)}, actor="创建办")

    def close_back(self) -> None:
        """An issue at a site closed as verified a few days after its report, as an import of
        an older system's records writes it (plain SQL): what makes later reports of its site
        and category recurrences."""
        self.conn.execute("""
            UPDATE issue SET status = 'verified',
                             closed_at = reported_at + %s * interval '1 day'
            WHERE id = (SELECT id FROM issue WHERE site_id IS NOT NULL
                        AND status <> ALL(%s) ORDER BY id OFFSET %s LIMIT 1)""",
                          [self.rng.uniform(0.2, 6), list(DISMISSED_STATUSES),
                           self.rng.randrange(40)])

    def deadline_passes(self) -> None:
        """An open issue's deadline is now up to two days past (as the clock would make it),
        or a second ahead, so that it passes between two folds."""
        self.conn.execute("""
            UPDATE issue SET deadline = now() + %s * interval '1 second'
            WHERE id = (SELECT id FROM issue WHERE issue_is_open(status) ORDER BY id
                        OFFSET %s LIMIT 1)""",
                          [self.rng.choice([-self.rng.uniform(0, 172_800), 1.0]),
                           self.rng.randrange(60)])

    def fold(self) -> None:
        tallies.fold(self.conn, ZONE, batch=self.rng.randint(1, 40), bulk_days=self.bulk_days)


# The third history's site tallies are counted again whole at every fold (tallies.BULK_DAYS
# passed: tallies.rebuild_sites), the others' day by day.
@pytest.mark.parametrize(("seed", "bulk_days"), [(1, tallies.BULK_DAYS), (2, tallies.BULK_DAYS),
                                                 (3, 0)])
def test_tallies_kept_through_random_histories_equal_a_recount(
        dsn: str, seed: int, bulk_days: int, tmp_path: Path, jpeg: Callable[..., bytes]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        small_district.build(conn)
        caller = tokens.authenticate(conn, tokens.create(conn, role="admin", name="创建办"))
        assert caller is not None

        def photo() -> str:
            return evidence.save(conn, tmp_path, jpeg(), zone=ZONE, uploader=evidence.Uploader(
                caller.token_id, caller.unit_id)).ref

        for code, west, east in (("M1", small_district.WEST + 0.001, small_district.MIDDLE),
                                  ("M2", small_district.MIDDLE + 0.002, small_district.EAST)):
            sites.create(conn, code=code, name=f"市场{code}", layer="market",
                         geometry=small_district.box(west, east))
        history = History(conn, seed, photo, caller)
        history.bulk_days = bulk_days
        steps = [history.report] * 4 + [history.transition] * 8 + [history.close_back] * 3 + [
            history.deadline_passes] * 2 + [history.redraw, history.fold]
        for _ in range(60):
            history.rng.choice(steps)()
        time.sleep(1.1)  # every deadline set a second ahead has passed: compared as overdue
        tallies.fold(conn, ZONE, bulk_days=bulk_days)
        assert_tallies_equal_a_recount(conn, ZONE)
        assert tallies.lag(conn) == timedelta(0)
        today = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
        assert assert_scores_equal_a_recount(conn, today - timedelta(days=80),
                                             today + timedelta(days=1),
                                             ("unit", "community")) > 20
        # The history touched what the tallies split by.
        shape = conn.execute("SELECT count(*) FILTER (WHERE open), count(*) FILTER (WHERE"
                             " NOT open), count(DISTINCT jurisdiction_id),"
                             " count(DISTINCT date_trunc('month', day)) FROM tally_day"
                             ).fetchone()
        assert shape is not None and shape[0] > 0 and shape[1] > 0 and shape[2] >= 2
        assert shape[3] >= 3
        # ... and what the site tallies split by: pairs, and issues that recur.
        pairs, recurring = conn.execute(
            "SELECT count(DISTINCT (site_id, category_code)), count(*) FILTER"
            " (WHERE gap IS NOT NULL) FROM site_day").fetchone() or (0, 0)
        assert pairs >= 4 and recurring >= 1


def test_a_deadline_that_passes_moves_to_the_overdue_stand_in_and_counts_stay_right(
        dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        district = small_district.build(conn)
        first = district.issues[0]
        conn.execute("UPDATE issue SET deadline = now() + interval '1 second'"
                     " WHERE public_id = %s", [first])
        tallies.fold(conn, ZONE)
        assert stored(conn, "tally_cell_day") == per_cell(recount(conn, ZONE))

        def overdue() -> int:
            return int(tallies.count(conn, tallies.Selection(), (), ("overdue",))
                       ["overdue"].iloc[0])

        exact = conn.execute("SELECT count(*) FROM tally_cell_day WHERE open AND deadline >"
                             " 'epoch'").fetchone()
        assert exact is not None and exact[0] >= 1
        before = overdue()
        time.sleep(1.2)
        assert overdue() == before + 1  # counted when read, before any fold
        tallies.fold(conn, ZONE)
        assert overdue() == before + 1
        assert conn.execute("SELECT count(*) FROM tally_cell_day WHERE open AND deadline"
                            " > 'epoch' AND deadline < now()").fetchone() == (0,)
        assert_tallies_equal_a_recount(conn, ZONE)
        # Closing it takes it out of the stand-in row it was moved to.
        conn.execute("UPDATE issue SET status = 'verified', closed_at = now()"
                     " WHERE public_id = %s", [first])
        tallies.fold(conn, ZONE)
        assert overdue() == before
        assert_tallies_equal_a_recount(conn, ZONE)


def test_a_change_waits_in_the_journal_until_folded_and_the_lag_says_so(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        small_district.build(conn)
        tallies.fold(conn, ZONE)
        assert tallies.lag(conn) == timedelta(0)
        conn.execute("UPDATE issue SET description = '改了描述' WHERE true")
        assert conn.execute("SELECT count(*) FROM tally_journal").fetchone() == (0,)
        conn.execute("UPDATE issue SET category_code = 'CTY-04' WHERE true")
        conn.execute("SELECT pg_sleep(0.05)")
        assert tallies.lag(conn) > timedelta(0)
        assert stored(conn, "tally_day") != recount(conn, ZONE)
        done = tallies.fold(conn, ZONE)
        assert done.rows == 10  # five issues, each out of its old key and into its new one
        assert_tallies_equal_a_recount(conn, ZONE)


def test_the_worker_runs_the_tally_job_on_its_own_connection(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        small_district.build(conn)
    settings = Settings(database_url=dsn)
    [job] = [j for j in JOBS if j.name == "tally"]
    with psycopg.connect(dsn) as runner:  # the runner's connection holds a transaction
        runner.execute("SELECT 1")
        assert job.run(runner, settings, datetime.now(UTC)) == "5 journal row(s) folded"
    with psycopg.connect(dsn) as conn:
        assert_tallies_equal_a_recount(conn, settings.zone)
        assert tallies.lag(conn) == timedelta(0)


def test_a_deleted_issue_leaves_the_tallies(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        small_district.build(conn)
        # A line of SQL, not the layers: an issue without events, which alone can be deleted
        # (the audit trail is append-only).
        conn.execute("INSERT INTO issue (public_id, category_code, geom, description, source,"
                     " status) VALUES ('T1', 'CTY-04', ST_SetSRID(ST_MakePoint(120.705,"
                     " 31.305), 4326), '测试数据', 'supervision', 'reported')")
        tallies.fold(conn, ZONE)
        before = stored(conn, "tally_day")
        conn.execute("DELETE FROM issue WHERE public_id = 'T1'")
        tallies.fold(conn, ZONE)
        after = stored(conn, "tally_day")
        assert sum(before.values()) - sum(after.values()) == 1
        assert_tallies_equal_a_recount(conn, ZONE)


def test_another_time_zone_rebuilds_the_tallies_in_its_days(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        small_district.build(conn)
        # Reported at 06:30 in Shanghai: 23:30 the day before in London.
        conn.execute("UPDATE issue SET reported_at = '2026-06-01 06:30+08'")
        tallies.fold(conn, ZONE)
        assert {k[1] for k in stored(conn, "tally_day")} == {date(2026, 6, 1)}
        london = Settings(timezone="Europe/London").zone
        assert tallies.fold(conn, london).rebuilt
        assert {k[1] for k in stored(conn, "tally_day")} == {date(2026, 6, 1) - timedelta(1)}
        assert_tallies_equal_a_recount(conn, london)
        assert not tallies.fold(conn, london).rebuilt


def raw_points(conn: psycopg.Connection[Any], query: HotspotQuery) -> dict[str, Any]:
    """The points the query selects, read from the issue table itself."""
    frame = hotspots.read_issues(conn, query, "ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,"
                                 " i.category_code AS category,"
                                 " extract(epoch FROM i.reported_at) AS t")
    return {"lon": frame["lon"].to_numpy(np.float64), "lat": frame["lat"].to_numpy(np.float64),
            "category": frame["category"].to_numpy(object), "t": frame["t"].to_numpy(np.float64)}


QUERIES = [
    HotspotQuery(),
    HotspotQuery(resolution=8, ring=1),
    HotspotQuery(since=datetime(2026, 6, 1, tzinfo=ZONE), until=datetime(2026, 9, 17,
                                                                          tzinfo=ZONE)),
    HotspotQuery(categories=("MKT-01", "MKT-02", "CTY-04")),
    HotspotQuery(layer="market", normalise="site"),
    HotspotQuery(normalise="km2", confidence=99, level="grid"),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_hotspots_from_the_tallies_equal_the_raw_points_cell_for_cell(
        module_demo_dsn: str, query: HotspotQuery) -> None:
    with psycopg.connect(module_demo_dsn) as conn:
        engine = load_assigner(conn)
        got = hotspots.hotspots(conn, engine, query)
        points = raw_points(conn, query)
        grid = hotspots.study_grid(engine, query)
        sites = None
        if query.normalise == "site":
            sites = sites_per_cell(grid, engine.s_geoms[engine.s_layer == query.layer])
        want = analyse(grid, points["lon"], points["lat"], points["category"], engine,
                       normalise=query.normalise, sites=sites, min_bin=query.min_bin,
                       level=query.level)
    assert [c.cell for c in got.cells] == list(want.cells["cell"])
    assert [c.count for c in got.cells] == list(want.cells["count"])
    assert sum(c.count for c in got.cells) > 0
    np.testing.assert_allclose([c.z for c in got.cells], want.cells["z"], rtol=1e-12)
    np.testing.assert_allclose([c.p_fdr for c in got.cells], want.cells["p_fdr"], rtol=1e-12)
    assert [c.gi_bin for c in got.cells] == list(want.cells["gi_bin"])
    assert [(a.cells, a.issue_count, a.categories) for a in got.areas] == [
        (list(cells), int(count), [tuple(c) for c in categories]) for cells, count, categories
        in zip(want.areas["cells"], want.areas["issue_count"], want.areas["categories"],
               strict=True)]
    assert got.outside == want.outside


def raw_chronic(conn: psycopg.Connection[Any], query: HotspotQuery, window_days: int,
                min_recurrences: int | None) -> pd.DataFrame:
    """Chronic pairs ranked from the issue table itself: gaps over each pair's whole history
    (geo.hotspots.chronic), the query's period, categories and layer, ranked by rank_pairs."""
    frame = pd.DataFrame(conn.execute("""
        SELECT i.site_id, i.category_code, i.status, i.reported_at, i.closed_at,
               (i.reported_at AT TIME ZONE %s)::date, s.layer
        FROM issue i JOIN site s ON s.id = i.site_id
        WHERE i.status <> ALL(%s) ORDER BY i.id""",
        [str(ZONE), list(DISMISSED_STATUSES)]).fetchall(),
        columns=["site_id", "category", "status", "reported_at", "closed_at", "day", "layer"])
    for column in ("reported_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["recurs"] = (recurrence_gaps(frame) <= window_days).to_numpy(bool)
    first, end = tallies.local_days(Period(query.since, query.until), ZONE)
    chosen = frame[(frame["day"] >= first) & (frame["day"] < end)]
    if query.categories:
        chosen = chosen[chosen["category"].isin(query.categories)]
    if query.layer:
        chosen = chosen[chosen["layer"] == query.layer]
    pairs = chosen.groupby(["site_id", "category"], sort=True).agg(
        recurrences=("recurs", "sum"), issues=("recurs", "size"),
        first_reported=("day", "min"), last_reported=("day", "max")).reset_index()
    span = (chosen["day"].max() - chosen["day"].min()).days
    return rank_pairs(pairs, span_days=span, min_recurrences=min_recurrences)


CHRONIC = [(HotspotQuery(), 14, None), (HotspotQuery(), 30, 2),
           (HotspotQuery(since=datetime(2026, 7, 1, tzinfo=ZONE),
                         until=datetime(2026, 10, 15, 12, tzinfo=ZONE)), 14, None),
           (HotspotQuery(layer="market"), 7, 1),
           (HotspotQuery(categories=("MKT-01", "CTY-04")), 365, 1)]


@pytest.mark.parametrize(("query", "window", "least"), CHRONIC, ids=range(len(CHRONIC)))
def test_chronic_sites_from_the_site_tallies_equal_the_issue_table(
        module_demo_dsn: str, query: HotspotQuery, window: int, least: int | None) -> None:
    with psycopg.connect(module_demo_dsn) as conn:
        got = hotspots.chronic(conn, query, window_days=window, min_recurrences=least)
        want = raw_chronic(conn, query, window, least)
    assert got, "the demo's planted chronic sites are found"
    assert [(r.site_id, r.category, r.recurrences, r.issues, r.site_recurrences,
             r.first_reported, r.last_reported) for r in got] == list(want[[
                 "site_id", "category", "recurrences", "issues", "site_recurrences",
                 "first_reported", "last_reported"]].itertuples(index=False, name=None))
    np.testing.assert_allclose([r.share for r in got], want["share"], rtol=1e-12)


@pytest.mark.parametrize("since", [datetime(2026, 5, 1, tzinfo=ZONE), None],
                         ids=["bounded", "from the first issue"])
def test_emerging_hotspots_from_the_tallies_equal_the_raw_cube(
        module_demo_dsn: str, since: datetime | None) -> None:
    until = datetime(2026, 10, 1, tzinfo=ZONE)
    query = HotspotQuery(since=since, until=until, categories=() if since else ("MKT-01",))
    with psycopg.connect(module_demo_dsn) as conn:
        engine = load_assigner(conn)
        got = hotspots.emerging(conn, engine, query)
        points = raw_points(conn, query)
    grid = got.grid
    # Whole 10-day steps of local days, ending with the period.
    first = since or datetime.fromtimestamp(points["t"].min(), ZONE).replace(
        hour=0, minute=0, second=0, microsecond=0)
    edges, steps = time_steps(first.timestamp(), until.timestamp(), 10 * 86400.0)
    np.testing.assert_array_equal(got.edges, edges)
    cell = grid.locate(points["lon"], points["lat"])
    step = bin_times(points["t"], edges)
    ok = (cell >= 0) & (step >= 0)
    cube = np.bincount(step[ok] * grid.size + cell[ok], minlength=steps * grid.size
                       ).reshape(steps, grid.size).T.astype(np.float64)
    want = emerging_hotspots(cube, grid.neighbours)
    assert cube.sum() > 50
    np.testing.assert_array_equal(got.result.category, want.category)
    np.testing.assert_allclose(got.result.trend_z, want.trend_z, rtol=1e-12)


def test_a_period_reads_whole_months_and_edge_days(module_demo_dsn: str) -> None:
    p = Period(datetime(2026, 5, 17, tzinfo=ZONE), datetime(2026, 8, 3, tzinfo=ZONE))
    with psycopg.connect(module_demo_dsn) as conn:
        got = tallies.count(conn, tallies.Selection(p), ())
        by_day = tallies.count(conn, tallies.Selection(p), ("step",),
                               steps=tallies.Steps(date(2026, 5, 17), 1))
        row = conn.execute("SELECT count(*) FROM issue WHERE status NOT IN ('rejected',"
                           " 'duplicate') AND reported_at >= %s AND reported_at < %s",
                           [p.since, p.until]).fetchone()
        assert row is not None and row[0] > 100
        assert len(by_day) == 78  # days from 17 May to 2 August
        assert int(got["issues"][0]) == int(by_day["issues"].sum()) == row[0]
        first, end = tallies.local_days(p, ZONE)
        _, params = tallies.period_source(first, end)
        assert (params["month0"], params["month1"]) == (date(2026, 6, 1), date(2026, 8, 1))


# The scores as counted from the issue table before the tallies (layers.supervision.scores
# until issue 17), the reference the tallies must equal.
RAW_MEASURES = """
    count(*) AS issues,
    count(*) FILTER (WHERE issue_is_open(i.status)) AS open,
    count(*) FILTER (WHERE issue_is_overdue(i.status, i.deadline, now())) AS overdue_open,
    coalesce(sum(c.points) FILTER (WHERE issue_is_open(i.status)), 0)::float8
        AS points_at_risk,
    coalesce(sum(c.points) FILTER (WHERE i.status NOT IN ('rejected', 'duplicate')
        AND (i.source = 'external_assessment'
             OR issue_ran_past_deadline(i.deadline, i.closed_at, now()))), 0)::float8
        AS points_lost,
    coalesce(sum(i.rework_count), 0)::int AS reworks,
    count(*) FILTER (WHERE i.rework_count > 0) AS reworked,
    count(*) FILTER (WHERE i.status IN ('rectified', 'verified') OR i.rework_count > 0)
        AS rework_cases,
    count(*) FILTER (WHERE i.status = 'verified' AND i.closed_at <= i.deadline) AS on_time,
    count(*) FILTER (WHERE i.status = 'verified') AS on_time_cases,
    round((avg(extract(epoch FROM r.first_at - i.reported_at)) / 3600)::numeric, 1)::float8
        AS avg_hours_to_rectify"""
RAW_FROM = """
    FROM issue i JOIN category c ON c.code = i.category_code
    LEFT JOIN LATERAL (SELECT min(e.at) AS first_at FROM issue_event e
                       WHERE e.issue_id = i.id AND e.action = 'rectify') r ON true"""
RAW = {
    "unit": f"""SELECT u.code, u.name, u.kind, NULL::text AS layer, {RAW_MEASURES} {RAW_FROM}
        JOIN unit u ON u.id = i.lead_unit_id
        WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
        GROUP BY u.code, u.name, u.kind""",
    "community": f"""SELECT m.code, m.name, 'community' AS kind, NULL::text AS layer,
        {RAW_MEASURES} {RAW_FROM}
        JOIN jurisdiction j ON j.id = i.jurisdiction_id
        JOIN jurisdiction m ON m.level = 'community' AND (m.id = j.id OR m.id = j.parent_id)
        WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
        GROUP BY m.code, m.name""",
    "site": f"""SELECT s.code, s.name, 'site' AS kind, s.layer, {RAW_MEASURES} {RAW_FROM}
        JOIN site s ON s.id = i.site_id
        WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
        GROUP BY s.id, s.code, s.name, s.layer""",
}


def assert_scores_equal_a_recount(conn: psycopg.Connection[Any], since: datetime,
                                  until: datetime, groups: tuple[scores.Group, ...]) -> int:
    """The scores from the tallies equal those counted from the issue table, group by group
    (rates, intervals and ranks included); the number of issues compared."""
    compared = 0
    for group in groups:
        with conn.cursor(row_factory=class_row(scores._Counts)) as cur:
            raw = cur.execute(sql.SQL("SELECT * FROM ({}) s ORDER BY code, name").format(
                sql.SQL(RAW[group])), {"since": since, "until": until}).fetchall()
        want = scores.ranked(scores.rated(raw), "points", 20)
        got = scores.ranking(conn, group=group, since=since, until=until)
        assert [(g.code, g.rank) for g in got] == [(w.code, w.rank) for w in want], group
        for g, w in zip(got, want, strict=True):
            assert g == w, (group, {k: (v, getattr(w, k)) for k, v in vars(g).items()
                                    if v != getattr(w, k)})
        compared += sum(w.issues for w in want)
    return compared


@pytest.mark.parametrize(("since", "until"), [
    (datetime(2026, 5, 1, tzinfo=ZONE), datetime(2026, 11, 21, tzinfo=ZONE)),
    (datetime(2026, 6, 17, tzinfo=ZONE), datetime(2026, 7, 9, tzinfo=ZONE))])
def test_scores_from_the_tallies_equal_the_issue_table(
        module_demo_dsn: str, since: datetime, until: datetime) -> None:
    with psycopg.connect(module_demo_dsn) as conn:
        assert assert_scores_equal_a_recount(conn, since, until, scores.GROUPS) > 200

