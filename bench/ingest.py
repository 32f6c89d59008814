"""Ingest and reads under load: ``POST /api/v1/issues`` from 32 concurrent clients against
the production server settings, next to a baseline route in the same processes that inserts
one plain row; then issue listings with bbox filters. (Map pages and tiles have their own
benchmarks, with the map work.)

The server is uvicorn with the app from ``bench.app`` (the production app plus the baseline
route), ``--workers`` as README recommends (one per core), on the demo district in a durable
private cluster. Every client has its own inspector token, as every phone in the field does.
Target (issue 6): ingest ≥ 50 % of the baseline's throughput, p99 < 100 ms at 32 clients.

Run alone: ``python -m bench.ingest`` (``BENCH_LOAD_SECONDS`` sets each run's length).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

from bench import load
from bench.app import PLAIN_TABLE
from bench.harness import Results, Row, fresh_database, run_alone
from layers.auth import tokens
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.io import demo

CLIENTS = 32


def workers() -> int:
    """README's recommendation: one uvicorn worker per core."""
    return os.cpu_count() or 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(dsn: str, folder: Path, extra: dict[str, str] | None = None) -> Iterator[str]:
    """uvicorn serving ``bench.app`` with the production worker count (and the settings
    ``extra`` adds to the environment); its base URL."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder), **(extra or {})}
    with (folder / "uvicorn.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.app:create_bench_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers()),
             "--log-level", "info"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.2)
            else:
                raise RuntimeError("the bench server did not start; see uvicorn.log")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def prepare(dsn: str) -> tuple[list[tuple[str, float, float]], list[str], str]:
    """Demo data, the plain table, reports to replay, one token per client and a reader's."""
    with psycopg.connect(dsn) as conn:
        demo.load(conn, zone=Settings().zone)
        conn.execute(PLAIN_TABLE)
        rows = conn.execute("SELECT category_code, ST_X(geom), ST_Y(geom) FROM issue"
                            " ORDER BY id").fetchall()
        inspectors = [tokens.create(conn, role="inspector", name=f"phone {c}")
                      for c in range(CLIENTS)]
        viewer = tokens.create(conn, role="viewer", name="bench reader")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return [(str(c), float(x), float(y)) for c, x, y in rows], inspectors, viewer


def reporting(reports: list[tuple[str, float, float]], rng: random.Random
              ) -> tuple[load.Request, load.Request]:
    """Requests of the ingest load: a report near one of ``reports`` (category, lon, lat),
    and the same body to the plain one-row insert (the baseline)."""

    def report(c: int, n: int) -> tuple[str, str, object]:
        category, lon, lat = reports[rng.randrange(len(reports))]
        return "POST", "/api/v1/issues", {
            "category": category, "lon": lon + rng.uniform(-2e-4, 2e-4),
            "lat": lat + rng.uniform(-2e-4, 2e-4), "description": f"bench {c}-{n}",
            "source": "self_inspection"}  # inspectors may not claim supervision

    def plain(c: int, n: int) -> tuple[str, str, object]:
        return "POST", "/bench/plain", report(c, n)[2]

    return report, plain


def _row(stats: load.Stats, note: str = "") -> str:
    failures = stats.failures()
    return (f"{stats.throughput:.0f} req/s, p50 {stats.ms(50):.0f} ms, p99 {stats.ms(99):.0f}"
            f" ms" + (f" ({failures})" if failures else "") + (f"; {note}" if note else ""))


def run(results: Results, node: Cluster, seconds: float) -> str:
    """Run baseline, ingest and reads on a fresh demo database; add the rows; return dsn."""
    dsn = fresh_database(node, "bench_ingest")
    reports, inspectors, viewer = prepare(dsn)
    rng = random.Random(6)  # noqa: S311 -- the shape of the load, not a secret
    per_client = [{"Authorization": f"Bearer {t}"} for t in inspectors]
    readers = [{"Authorization": f"Bearer {viewer}"}] * CLIENTS

    report, plain = reporting(reports, rng)

    def bbox(c: int, n: int) -> tuple[str, str, object]:
        _, lon, lat = reports[rng.randrange(len(reports))]
        box = f"{lon - 0.004:.6f},{lat - 0.003:.6f},{lon + 0.004:.6f},{lat + 0.003:.6f}"
        return "GET", f"/api/v1/issues?bbox={box}&limit=100", None

    with tempfile.TemporaryDirectory(prefix="sw-bench-serve-") as folder, \
            serving(dsn, Path(folder)) as base:
        print(f"ingest: {CLIENTS} clients, {workers()} uvicorn workers, {seconds:.0f} s a run",
              flush=True)
        # Alternated, half the time each, twice: the machine is shared and its speed drifts
        # over a minute; a baseline measured wholly before the ingest would carry the drift.
        half = seconds / 2
        base_stats = load.run(base, plain, per_client, seconds=half)
        ingest = load.run(base, report, per_client, seconds=half)
        base_stats += load.run(base, plain, per_client, seconds=half)
        ingest += load.run(base, report, per_client, seconds=half)
        reads = load.run(base, bbox, readers, seconds=seconds)
    ratio = ingest.throughput / base_stats.throughput
    results.add(Row(f"ingest POST /api/v1/issues, {CLIENTS} clients", _row(ingest),
                    f"plain one-row insert: {_row(base_stats)}",
                    f"{ratio:.0%} of baseline", ">= 50 %, p99 < 100 ms",
                    f"validate + assign + audit + nearby; {workers()} workers; "
                    f"met: {ratio >= 0.5 and ingest.ms(99) < 100 and not ingest.failures()}"))
    results.add(Row(f"read GET /api/v1/issues?bbox (~800x650 m), {CLIENTS} clients",
                    _row(reads), "—", "—", "—", "limit 100, GeoJSON with total"))
    return dsn


def main() -> None:
    """Run the ingest and read benchmarks alone on a private cluster."""
    run_alone(lambda results, node, sizes: run(results, node, sizes.load_seconds))

if __name__ == "__main__":
    main()
