"""A district of several streets (issue 19): loading it, the street ranking, the district map
page and one street's public overview, against a one-street install of the same per-street
size. (bench.streets times the street-scoped answers.)

``python -m bench.district``: ``BENCH_STREETS`` streets (default 10) sharing ``BENCH_ISSUES``
issues evenly (default 1,000,000: 100,000 a street; 10,000,000 gives the issue's ten streets of
a million each), loaded by ``sitewatch demo --streets`` (layers.io.demo.load); then a one-street
demo of one street's share as the baseline. Each page or answer is asked over HTTP of the real
app in process, once to warm the process and its snapshots as a server has, then timed as the
median of :data:`REPEAT` asks.
"""

from __future__ import annotations

import statistics
from functools import partial
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from bench.harness import Results, Row, Sizes, fresh_database, run_alone, timed
from layers.auth import tokens
from layers.db.settings import Settings
from layers.io import demo

REPEAT = 5
PHASE = {"phase": "attack", "year": "2026"}
PAGE_PHASE = {"phase": "attack:2026"}


def _load(results: Results, dsn: str, streets: int, per_street: int, label: str) -> None:
    with psycopg.connect(dsn) as conn:
        seconds, counts = timed(lambda: demo.load(conn, zone=Settings().zone,
                                                  n_issues=per_street, streets=streets))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    issues = counts["issues"]
    results.add(Row(f"demo load, {label}", f"{seconds:.0f} s", "—", "—", "minutes",
                    f"{issues:,} issues ({issues / seconds:,.0f}/s), {counts['jurisdictions']:,}"
                    f" jurisdictions, {counts['sites']:,} sites: generate, assign, COPY,"
                    " audit trail, tallies folded"))


def _median(client: TestClient, path: str, params: dict[str, str]) -> float | None:
    """The median seconds of the answer; None when it is refused over the analysis budget
    (the workbook's hand-over sheet reads the period's events, not tallies)."""
    first = client.get(path, params=params)
    if first.status_code == 422 and "too-large" in first.text:
        return None
    if first.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {first.status_code} {first.text[:200]}")
    return statistics.median(timed(partial(client.get, path, params=params))[0]
                             for _ in range(REPEAT))


def _client(dsn: str) -> TestClient:
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role="viewer", name="bench")
    return TestClient(create_app(Settings(database_url=dsn)),
                      headers={"Authorization": f"Bearer {token}"})


def _asks(street: str | None) -> dict[str, tuple[str, dict[str, str]]]:
    """The answers timed: with ``street``, on the district (one street's overview among
    them); without, the same answers of the one-street install, as the baseline."""
    asks = {"scores workbook (three sheets with 街道排名)": ("/api/v1/scores.xlsx", PHASE),
            "overview page": ("/maps/overview", PAGE_PHASE)}
    if street:
        asks |= {"overview page": ("/maps/overview", {**PAGE_PHASE, "street": street}),
                 "street ranking (JSON)": ("/api/v1/scores/streets", PHASE),
                 "district map page": ("/maps/district", PAGE_PHASE)}
    return asks


def measure(results: Results, district: str, single: str, streets: int) -> None:
    """The district's pages against the one-street install's, medians over HTTP."""
    with _client(single) as client:
        base = {name: _median(client, path, params)
                for name, (path, params) in _asks(None).items()}
    with _client(district) as client:
        for name, (path, params) in _asks("320571001").items():
            seconds = _median(client, path, params)
            baseline = base.get(name)
            results.add(Row(
                f"{name}, {streets} streets" + (" (one street's view)"
                                               if "street" in params else ""),
                "refused over the analysis budget" if seconds is None
                else f"{seconds * 1000:.0f} ms",
                f"one street {baseline * 1000:.0f} ms" if baseline else "—",
                f"{seconds / baseline:.2f}×" if baseline and seconds is not None else "—",
                "as fast as one street" if baseline else "< 1 s",
                f"median of {REPEAT} after a warm-up ask; the attack phase; over HTTP"
                " (in process)"))


def alone(results: Results, node: Any, sizes: Sizes) -> str:
    """``python -m bench.district``."""
    streets = sizes.streets
    per_street = sizes.issues // streets
    district = fresh_database(node, "bench_district")
    _load(results, district, streets, per_street, f"{streets} streets × {per_street:,}")
    single = fresh_database(node, "bench_one_street")
    _load(results, single, 1, per_street, f"one street × {per_street:,}")
    measure(results, district, single, streets)
    return district


if __name__ == "__main__":
    run_alone(alone)
