"""Analyses from the tallies (issue 17), against reading the period's raw points.

Each analysis is asked for periods nobody asked for before (no stored result can answer),
at the database's size: the Gi* hotspots, the emerging hotspots and the overview's counts
(cells at three resolutions, the community choropleth), each against the baseline of merely
reading the period's points out of the issue table by COPY, in the same run. The scores are
still counted from the issue table and are timed the same way. Also: the tallies' size on
disk against the issue table's, what the journal costs a single report (the same reports
with the journal trigger off), and how fast the worker folds the journal.

Run alone: ``python -m bench.tallies`` (``BENCH_ISSUES`` sizes it, as ``make bench``).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from bench.harness import Results, Row, Sizes, fresh_database, run_alone, timed
from layers.analysis import hotspots, tallies
from layers.assignment import load_assigner
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.io import demo
from layers.issues import records
from layers.supervision import scores
from layers.views import mapviews

ZONE = Settings().zone
NOW = datetime.fromisoformat("2026-11-20T00:00:00+08:00")  # as bench.hotspots
DAY = timedelta(days=1)
# Never-seen periods: what leaders ask for (this phase, the last ten days, the run-up to an
# assessment, most of the year), each starting on a day no other one starts on.
PERIODS = {
    "a phase (92 days)": (datetime(2026, 6, 3, tzinfo=ZONE), datetime(2026, 9, 3, tzinfo=ZONE)),
    "the last ten days": (NOW - 10 * DAY, NOW),
    "a month before an assessment": (datetime(2026, 9, 14, tzinfo=ZONE),
                                     datetime(2026, 10, 14, tzinfo=ZONE)),
    "the campaign so far (11 months)": (datetime(2026, 1, 2, tzinfo=ZONE), NOW),
}
SINGLE_REPORTS = 500


def _raw_read(conn: psycopg.Connection[Any], since: datetime, until: datetime) -> float:
    query = hotspots.HotspotQuery(since=since, until=until)
    return timed(lambda: hotspots.read_issues(
        conn, query, "ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.category_code AS category"))[0]


def overview_counts(conn: psycopg.Connection[Any], period: Period) -> Any:
    """What the overview page reads for a period."""
    return mapviews.issue_cells(conn, period), mapviews.community_measures(conn, period)


def analyses(results: Results, dsn: str, tag: str) -> None:
    """Each analysis for each never-seen period, against the raw read of that period."""
    worst: dict[str, tuple[float, float, str]] = {}
    with psycopg.connect(dsn) as conn:
        engine = load_assigner(conn)
        for label, (since, until) in PERIODS.items():
            read = _raw_read(conn, since, until)
            query = hotspots.HotspotQuery(since=since, until=until)
            period = Period(since, until)
            timings = {
                "hotspots (Gi*+FDR+areas)": timed(
                    partial(hotspots.hotspots, conn, engine, query))[0],
                "overview counts (cells 8-10 + choropleth)": timed(
                    partial(overview_counts, conn, period))[0],
                "scores by unit (issue table)": timed(
                    partial(scores.ranking, conn, since=since, until=until))[0],
            }
            if until - since >= timedelta(days=30):  # three 10-day steps at least
                timings["emerging hotspots (10-day steps)"] = timed(
                    partial(hotspots.emerging, conn, engine, query))[0]
            for name, seconds in timings.items():
                if name not in worst or seconds > worst[name][0]:
                    worst[name] = (seconds, read, label)
    for name, (seconds, read, label) in worst.items():
        target = "—" if "issue table" in name else "< 1 s cold"
        results.add(Row(f"{name}, never-seen period, {tag}", f"{seconds:.2f} s",
                        f"raw read {read:.2f} s", f"{seconds / read:.2f}× the read", target,
                        f"slowest of {len(PERIODS)} periods: {label}"))


def footprint(results: Results, dsn: str, tag: str) -> None:
    """The tallies' rows and size on disk against the issue table's."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""
            SELECT (SELECT count(*) FROM tally_day), (SELECT count(*) FROM tally_month),
                   pg_total_relation_size('tally_day') + pg_total_relation_size('tally_month'),
                   (SELECT count(*) FROM issue), pg_total_relation_size('issue')""").fetchone()
    assert row is not None
    days, months, size, issues, issue_size = (int(v) for v in row)
    results.add(Row(f"tallies on disk, {tag}", f"{size / 2**20:,.0f} MB",
                    f"issue table {issue_size / 2**20:,.0f} MB", f"{size / issue_size:.2f}×",
                    "grows with cells × days × categories", f"{days:,} day rows, {months:,}"
                    f" month rows for {issues:,} issues"))


def write_cost(results: Results, dsn: str) -> None:
    """Single reports with the journal trigger on and off; then the fold of their journal."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        engine = load_assigner(conn)
        cats = [c for (c,) in conn.execute("SELECT code FROM category WHERE active"
                                           " ORDER BY code").fetchall()]
        spot = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM issue LIMIT 1").fetchone()
        assert spot is not None

        def reports(n: int) -> list[float]:
            out = []
            for i in range(n):
                new = records.NewIssue(category=cats[i % len(cats)], lon=spot[0] + i * 1e-6,
                                       lat=spot[1], description="基准测试")
                out.append(timed(partial(records.create_many, conn, engine, [new],
                                         actor="bench", actor_role="inspector"))[0] * 1000)
            return out

        tallies.fold(conn, ZONE, budget_s=float("inf"))
        conn.execute("ALTER TABLE issue DISABLE TRIGGER issue_journal_insert")
        without = reports(SINGLE_REPORTS)
        conn.execute("ALTER TABLE issue ENABLE TRIGGER issue_journal_insert")
        with_journal = reports(SINGLE_REPORTS)
        fold_s, done = timed(lambda: tallies.fold(conn, ZONE, budget_s=float("inf")))
    on, off = statistics.median(with_journal), statistics.median(without)
    results.add(Row("one report with the tally journal (p50)", f"{on:.2f} ms",
                    f"journal trigger off {off:.2f} ms", f"+{on - off:.2f} ms",
                    "small against the report", f"{SINGLE_REPORTS} single reports each way;"
                    f" the worker then folded their {done.rows} journal rows in"
                    f" {fold_s * 1000:.0f} ms ({fold_s / max(done.rows, 1) * 1e6:.0f} µs a row)"))


def fold_after_bulk(results: Results, dsn: str) -> None:
    """Fold whatever the journal holds (after the reassignment benchmark: two rows for every
    issue it moved) and record the rate."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        waiting = conn.execute("SELECT count(*) FROM tally_journal").fetchone()
        seconds, done = timed(lambda: tallies.fold(conn, ZONE, budget_s=float("inf")))
    assert waiting is not None
    if done.rows:
        results.add(Row("tally job folding a bulk change", f"{done.rows / seconds:,.0f} rows/s",
                        "—", "—", "within seconds of a report",
                        f"{int(waiting[0]):,} journal rows (the reassignment benchmark's) in"
                        f" {seconds:.1f} s, batches of {tallies.BATCH:,}"))


def run(results: Results, dsn: str, label: str = "") -> None:
    """Every benchmark of this module on the database at ``dsn``."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
    tag = label or f"{int(row[0]) if row else 0:,} issues"
    fold_after_bulk(results, dsn)
    analyses(results, dsn, tag)
    footprint(results, dsn, tag)
    write_cost(results, dsn)


def alone(results: Results, node: Any, sizes: Sizes) -> str:
    """``python -m bench.tallies``: a demo district of ``sizes.issues`` issues."""
    dsn = fresh_database(node, "bench_tallies")
    with psycopg.connect(dsn) as conn:
        demo.load(conn, zone=ZONE, n_issues=sizes.issues, now=NOW)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    run(results, dsn)
    return dsn


if __name__ == "__main__":
    run_alone(alone)
