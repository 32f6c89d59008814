"""One street of a district against a street alone (issue 19): per-street answers must not
slow down because the install holds other streets too.

Two demo databases are loaded in the same run with the same issues per street: a district of
``BENCH_STREETS`` adjacent streets (default 10) and a single street. A viewer token
scoped to the first street (layers.auth.scope: row-level security under the role
``sitewatch_street``) asks each answer for periods nobody asked before, over HTTP of the real
app in process; the district's time is reported as a ratio of the lone street's. Also: how
many monthly partitions a one-month list of issues reads (migration 0030), and the district
token's answers over every street, for context. In ``make bench`` the same two databases also
give bench.district's rows (the street ranking, the district map, a street's overview, the
workbook), so the district is loaded once.

Run alone: ``python -m bench.streets`` (``BENCH_STREETS`` streets sharing ``BENCH_ISSUES``;
``bench.harness.Sizes``).
"""

from __future__ import annotations

import gc
from datetime import date, datetime, time
from functools import partial
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from bench import district, tallies
from bench.harness import Results, Row, Sizes, demo_database, run_alone, timed
from bench.tallies import NOW, ZONE
from layers.auth import tokens
from layers.db.settings import Settings

# Never-seen periods, bench.tallies' (no stored result can answer) but the last ten days,
# too short for an emerging trend.
PERIODS = {label: days for label, days in tallies.PERIODS.items() if "ten days" not in label}


def _asks(first: str, last: str, street: str) -> dict[str, tuple[str, dict[str, str]]]:
    """What a street office reads for one period (``street``: its code)."""
    dates = {"since": first, "until": last}
    return {
        "overview page of the street": ("/maps/overview", {**dates, "street": street}),
        "REST hotspots (cells + areas)": ("/api/v1/hotspots", {"period": f"{first}/{last}"}),
        "REST emerging hotspots": ("/api/v1/hotspots/emerging",
                                   {"period": f"{first}/{last}"}),
        "scores by unit": ("/api/v1/scores", dates),
        "chronic sites": ("/api/v1/sites/chronic", dates),
        "issues list (first 100, with total)": (
            "/api/v1/issues", {"since": _local(first, time.min), "until": _local(last, time.max),
                               "limit": "100"}),
    }


def _local(day: str, at: time) -> str:
    """``day`` (YYYY-MM-DD) at ``at`` in the district's zone, as ISO 8601 with its offset."""
    return datetime.combine(date.fromisoformat(day), at.replace(microsecond=0), ZONE
                            ).isoformat()


def load(node: Any, name: str, streets: int, per_street: int) -> str:
    """A demo district of ``streets`` streets, ``per_street`` issues each; its conninfo."""
    return demo_database(node, name, issues=per_street, now=NOW, streets=streets)


def first_street(dsn: str) -> str:
    """The code of the district's first street."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT code FROM jurisdiction WHERE level = 'street'"
                           " ORDER BY code LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def _scoped_token(dsn: str) -> tuple[str, str]:
    """A viewer token of the first street, and a district one."""
    with psycopg.connect(dsn) as conn:
        street = tokens.create(conn, role="viewer", name="街道领导",
                               street_code=first_street(dsn))
        district = tokens.create(conn, role="viewer", name="区领导")
    return street, district


def answers(dsn: str, token: str) -> dict[str, float | None]:
    """The slowest never-seen period's seconds per answer, for the caller of ``token``; None
    for an answer refused over its budget (a whole district's space-time cube can be)."""
    worst: dict[str, float | None] = {}
    headers = {"Authorization": f"Bearer {token}"}
    street = first_street(dsn)
    with TestClient(create_app(Settings(database_url=dsn)), headers=headers) as client:
        # A process's first request pays for imports and the study grid: warm up on a period
        # no timed one starts or ends with (as bench.tallies).
        for path, params in _asks("2026-03-01", "2026-03-21", street).values():
            client.get(path, params=params)
        for first, last in PERIODS.values():
            for name, (path, params) in _asks(first, last, street).items():
                # A collection owed by the previous answers is not charged to this one (a
                # full one lasted a few tenths of a second, most of the spread between runs).
                gc.collect()
                seconds, answer = timed(partial(client.get, path, params=params))
                if answer.status_code == 422 and "too-large" in answer.text:
                    worst[name] = None
                    continue
                if answer.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {answer.status_code} {answer.text[:200]}")
                if name not in worst or (worst[name] or 0.0) < seconds:
                    worst[name] = seconds if worst.get(name, 0.0) is not None else None
    return worst


def _shown(seconds: float | None) -> str:
    return "refused (over the analysis budget)" if seconds is None else f"{seconds:.2f} s"


def partitions_read(dsn: str) -> tuple[int, int]:
    """Of the issue table's partitions, how many a one-month list reads (EXPLAIN ANALYZE:
    scans that never ran are pruned)."""
    with psycopg.connect(dsn) as conn:
        total = conn.execute("SELECT count(*) FROM pg_inherits"
                             " WHERE inhparent = 'issue'::regclass").fetchone()
        plan = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT public_id FROM issue"
            " WHERE reported_at >= '2026-09-01T00:00:00+08:00'"
            " AND reported_at < '2026-10-01T00:00:00+08:00'"
            " ORDER BY reported_at DESC LIMIT 100").fetchone()
    assert total is not None and plan is not None
    scanned = set()

    def walk(node: dict[str, Any]) -> None:
        relation = node.get("Relation Name")
        if relation and relation.startswith("issue") and node.get("Actual Loops", 0) > 0:
            scanned.add(relation)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0][0]["Plan"])
    return len(scanned), int(total[0])


# Alternated rounds of the lone street's and the district street's answers, the stored
# results cleared before each: the best of each answer is kept, so a burst of other work on
# this shared machine during one round does not decide the ratio.
ROUNDS = 3


def _cold(dsn: str) -> None:
    """Forget every stored analysis result, so the next answers are computed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM analysis_snapshot")


def _best(best: dict[str, float | None], found: dict[str, float | None]) -> None:
    """Keep the least time of each answer (None, refused over its budget, stays None)."""
    for name, seconds in found.items():
        before = best.get(name, seconds)
        best[name] = None if seconds is None or before is None else min(before, seconds)


def measure(results: Results, one: str, many: str, streets: int, per_street: int) -> None:
    """The rows: a street of the district ``many`` against the lone street ``one``."""
    lone_token = _scoped_token(one)[0]
    street_token, district_token = _scoped_token(many)
    lone: dict[str, float | None] = {}
    scoped: dict[str, float | None] = {}
    for _ in range(ROUNDS):
        for dsn, token, best in ((one, lone_token, lone), (many, street_token, scoped)):
            _cold(dsn)
            _best(best, answers(dsn, token))
    _cold(many)
    whole = answers(many, district_token)
    for name, seconds in scoped.items():
        alone_s = lone[name]
        ratio = (f"{seconds / alone_s:.2f}×" if seconds is not None and alone_s is not None
                 else "—")
        results.add(Row(
            f"{name}, one street of {streets} ({per_street:,} issues each)",
            _shown(seconds), f"the street alone {_shown(alone_s)}", ratio,
            "≈ 1× (as fast as one street)",
            f"street-scoped viewer token (row-level security); slowest of {len(PERIODS)}"
            f" periods never asked (stored results cleared), over HTTP in process, best of"
            f" {ROUNDS} alternated rounds; the district token over all"
            f" {streets} streets: {_shown(whole[name])}"))
    read, total = partitions_read(many)
    results.add(Row(f"one month's issues list, {streets * per_street:,} issues",
                    f"{read} partition(s) read", f"{total} partitions", f"{read}/{total}",
                    "only the month's", "EXPLAIN ANALYZE of the list's query for September"))


def run(results: Results, node: Any, streets: int, per_street: int) -> str:
    """Load both databases, then this module's rows and bench.district's (its pages, on the
    same two databases); the district's conninfo."""
    one = load(node, "bench_one_street", 1, per_street)
    many = load(node, "bench_streets", streets, per_street)
    district.measure(results, many, one, streets)
    measure(results, one, many, streets, per_street)
    return many


def alone(results: Results, node: Any, sizes: Sizes) -> str:
    """``python -m bench.streets``: ``BENCH_STREETS`` streets sharing ``BENCH_ISSUES`` evenly
    (as bench.district), and one street of one street's share."""
    return run(results, node, sizes.streets, sizes.issues // sizes.streets)


if __name__ == "__main__":
    run_alone(alone)
