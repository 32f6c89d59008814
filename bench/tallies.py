"""Analyses from the tallies (issue 17), against reading the period's raw points.

Each page and answer is asked for periods nobody asked for before (no stored result can
answer), at the database's size, over HTTP of the real app in process: the hotspot page, the
overview page, the REST hotspot and emerging-hotspot answers and the scores, each against the
baseline of merely reading the period's points out of the issue table by COPY, in the same
run. Also: the tallies' size on disk against the issue table's, what the journal costs a
single report (the same reports with the journal trigger off), and how fast the worker folds
the journal.

Run alone: ``python -m bench.tallies`` (``BENCH_ISSUES`` sizes it, as ``make bench``).
"""

from __future__ import annotations

import statistics
from datetime import datetime
from functools import partial
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from bench.harness import Results, Row, Sizes, demo_database, run_alone, timed
from layers.analysis import hotspots, tallies
from layers.assignment import load_assigner
from layers.auth import tokens
from layers.catalog import periods
from layers.db.settings import Settings
from layers.issues import records

ZONE = Settings().zone
NOW = datetime.fromisoformat("2026-11-20T00:00:00+08:00")  # as bench.hotspots
# Never-seen periods (first and last day): what leaders ask for (this phase, the last ten
# days, the run-up to an assessment, most of the year), each starting on a day no other one
# starts on, so no stored result can answer.
PERIODS = {
    "a phase (92 days)": ("2026-06-03", "2026-09-02"),
    "the last ten days": ("2026-11-10", "2026-11-19"),
    "a month before an assessment": ("2026-09-14", "2026-10-13"),
    "the campaign so far (11 months)": ("2026-01-02", "2026-11-19"),
}
SINGLE_REPORTS = 500
TABLES = ("tally_day", "tally_month", "tally_cell_day", "tally_cell_month", "ground_day",
          "ground_month", "site_day", "site_month", "duty_day", "duty_month")


def _raw_read(conn: psycopg.Connection[Any], first: str, last: str) -> float:
    """The baseline: the period's points read out of the issue table by COPY."""
    p = periods.between(first, last, ZONE)
    query = hotspots.HotspotQuery(since=p.since, until=p.until)
    return timed(partial(hotspots.read_issues, conn, query,
                         "ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,"
                         " i.category_code AS category"))[0]


def _asks(first: str, last: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each page and answer for one period, as a reader asks for it."""
    dates = {"since": first, "until": last}
    return {
        "hotspot page": ("/maps/hotspots", dates),
        "overview page": ("/maps/overview", dates),
        "REST hotspots (cells + areas)": ("/api/v1/hotspots", {"period": f"{first}/{last}"}),
        "REST emerging hotspots": ("/api/v1/hotspots/emerging",
                                   {"period": f"{first}/{last}"}),
        "scores by unit": ("/api/v1/scores", dates),
    }


def analyses(results: Results, dsn: str, tag: str) -> None:
    """Each page and answer for each never-seen period, asked over HTTP of the real app (in
    process), against the raw read of that period; the slowest period is recorded."""
    worst: dict[str, tuple[float, float, str]] = {}
    refused: dict[str, list[str]] = {}
    headers = {"Authorization": f"Bearer {_token(dsn)}"}
    with psycopg.connect(dsn) as conn, TestClient(
            create_app(Settings(database_url=dsn)), headers=headers) as client:
        # A process's first request pays for imports, templates and the study grid (built
        # once per process and set of lines): ask everything once, for a period of three
        # weeks no timed period starts or ends with, as a server has by its first page.
        for path, params in _asks("2026-03-01", "2026-03-21").values():
            client.get(path, params=params)
        for label, (first, last) in PERIODS.items():
            read = _raw_read(conn, first, last)
            for name, (path, params) in _asks(first, last).items():
                if "emerging" in name and label == "the last ten days":
                    continue  # a trend needs three 10-day steps
                seconds, answer = timed(partial(client.get, path, params=params))
                if answer.status_code != 200:  # recorded, not fatal: a run is long
                    refused.setdefault(name, []).append(f"{label}: HTTP {answer.status_code}")
                    continue
                if name not in worst or seconds > worst[name][0]:
                    worst[name] = (seconds, read, label)
    for name, (seconds, read, label) in worst.items():
        results.add(Row(f"{name}, never-seen period, {tag}", f"{seconds:.2f} s",
                        f"raw read {read:.2f} s", f"{seconds / read:.2f}× the read",
                        "< 1 s cold", f"slowest of {len(PERIODS)} periods: {label}; over HTTP"
                        " (in process), computed in the request"
                        + "".join(f"; {r}" for r in refused.pop(name, []))))
    for name, reasons in refused.items():
        results.add(Row(f"{name}, never-seen period, {tag}", "refused", "—", "—",
                        "< 1 s cold", "; ".join(reasons)))


def _token(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return tokens.create(conn, role="viewer", name="bench")


def footprint(results: Results, dsn: str, tag: str) -> None:
    """The tallies' rows and size on disk against the issue table's."""
    with psycopg.connect(dsn) as conn:
        sizes = {table: conn.execute(
            sql.SQL("SELECT count(*), pg_total_relation_size(%s) FROM {}").format(
                sql.Identifier(table)), [table]).fetchone() for table in TABLES}
        row = conn.execute("SELECT count(*), pg_total_relation_size('issue') FROM issue"
                           ).fetchone()
    assert row is not None
    issues, issue_size = int(row[0]), int(row[1])
    size = sum(int(v[1]) for v in sizes.values() if v)
    rows = ", ".join(f"{t} {int(v[0]):,}" for t, v in sizes.items() if v)
    results.add(Row(f"tallies on disk, {tag}", f"{size / 2**20:,.0f} MB",
                    f"issue table {issue_size / 2**20:,.0f} MB", f"{size / issue_size:.2f}×",
                    "grows with cells × days × categories", f"rows: {rows}; {issues:,} issues"))


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
    dsn = demo_database(node, "bench_tallies", issues=sizes.issues, now=NOW)
    run(results, dsn)
    return dsn


if __name__ == "__main__":
    run_alone(alone)
