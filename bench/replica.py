"""Read replicas: how far a hot standby falls behind under the ingest load, and read
throughput with and without it.

A standby of the private cluster is made as ``sitewatch db replica start`` makes one
(layers/db/standby.py: ``pg_basebackup -R``, streaming through a slot, durable settings like
the primary's). Then, on the demo district:

1. **lag under ingest**: 32 clients post reports (``POST /api/v1/issues``) for
   ``BENCH_LOAD_SECONDS`` while the primary's ``pg_stat_replication`` is sampled every
   0.1 s: bytes of WAL not yet replayed by the standby, and PostgreSQL's ``replay_lag`` (the
   time from a commit's flush on the primary to its replay on the standby);
2. **read throughput**: the same read mix (issue lists by bbox, one issue, OGC items, a
   vector tile) from 32 clients against the server without a replica and with one
   (``SITEWATCH_REPLICA_URL``), each for ``BENCH_LOAD_SECONDS``; where the reads went is
   counted in each server's own ``pg_stat_database``.

On one machine the standby shares the cores (two here) with the primary, the web workers and
the load generator, so a replica cannot add capacity: the figures show its overhead and its
lag, not the gain a second machine would bring. Run alone: ``python -m bench.replica``.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench import ingest, load
from bench.harness import Results, Row, fresh_database, run_alone
from layers.db import replicas, standby
from layers.db.cluster import Cluster

SAMPLE_SECONDS = 0.1
CATCH_UP_SECONDS = 120.0


def _sample_lag(primary_dsn: str, stop: threading.Event) -> tuple[list[int], list[float]]:
    """Bytes behind and replay lag (s) of the standby, every SAMPLE_SECONDS until ``stop``."""
    behind: list[int] = []
    lag: list[float] = []
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn)::bigint,"
                " extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication"
                " ORDER BY application_name LIMIT 1").fetchone()
            if row is not None and row[0] is not None:
                behind.append(int(row[0]))
                lag.append(float(row[1] or 0.0))
            stop.wait(SAMPLE_SECONDS)
    return behind, lag


def _transactions(node: Cluster, dbname: str) -> int:
    """Transactions ``node`` has counted in ``dbname`` (its own, not replayed ones)."""
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                           " WHERE datname = %s", [dbname]).fetchone()
    return int(row[0]) if row else 0


def _counted(primary: Cluster, node: standby.Standby, dbname: str,
             run: Callable[[], load.Stats]) -> tuple[load.Stats, int, int]:
    """``run()``'s stats, and the transactions the standby and the primary counted in it."""
    before = (_transactions(node, dbname), _transactions(primary, dbname))
    stats = run()
    time.sleep(1.5)  # sessions report their counts within a second or so
    return (stats, _transactions(node, dbname) - before[0],
            _transactions(primary, dbname) - before[1])


def _catch_up(primary_dsn: str, node: standby.Standby) -> None:
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        target = replicas.position(conn)
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        if not replicas.wait_replayed(conn, target, CATCH_UP_SECONDS):
            raise RuntimeError("the standby did not catch up")


def _reads(reports: list[tuple[str, float, float]], public_ids: list[str],
           rng: random.Random) -> load.Request:
    """The read mix: bbox lists, one issue, OGC items by bbox, a vector tile, in turn."""

    def read(c: int, n: int) -> tuple[str, str, object]:
        _, lon, lat = reports[rng.randrange(len(reports))]
        box = f"{lon - 0.004:.6f},{lat - 0.003:.6f},{lon + 0.004:.6f},{lat + 0.003:.6f}"
        kind = (c + n) % 4
        if kind == 0:
            return "GET", f"/api/v1/issues?bbox={box}&limit=100", None
        if kind == 1:
            return "GET", f"/api/v1/issues/{public_ids[rng.randrange(len(public_ids))]}", None
        if kind == 2:
            return "GET", f"/ogc/collections/issues/items?bbox={box}&limit=100", None
        return "GET", "/tiles/issues/16/54740/26761.mvt", None

    return read


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else 0.0


def run(results: Results, node: Cluster, seconds: float) -> str:
    """Make a standby of ``node``, measure lag under ingest and reads with and without it."""
    dsn = fresh_database(node, "bench_replica")
    name = str(conninfo_to_dict(dsn)["dbname"])
    reports, inspectors, viewer = ingest.prepare(dsn)
    with psycopg.connect(dsn) as conn:
        public_ids = [str(r[0]) for r in conn.execute(
            "SELECT public_id FROM issue ORDER BY id LIMIT 2000").fetchall()]
    root = Path(tempfile.mkdtemp(prefix="sw-bench-standby-"))
    root.chmod(0o755)
    node_standby = standby.of(node, root / "replica")
    started = time.perf_counter()
    node_standby.start()
    made = time.perf_counter() - started
    rng = random.Random(19)  # noqa: S311 -- the shape of the load, not a secret
    writers = [{"Authorization": f"Bearer {t}"} for t in inspectors]
    readers = [{"Authorization": f"Bearer {viewer}"}] * ingest.CLIENTS
    report, _ = ingest.reporting(reports, rng)
    read = _reads(reports, public_ids, rng)
    try:
        _catch_up(dsn, node_standby)
        replica_env = {"SITEWATCH_REPLICA_URL": node_standby.conninfo(name)}
        with tempfile.TemporaryDirectory(prefix="sw-bench-serve-") as folder, \
                tempfile.TemporaryDirectory(prefix="sw-bench-serve-") as other, \
                ingest.serving(dsn, Path(folder)) as without, \
                ingest.serving(dsn, Path(other), replica_env) as base:
            time.sleep(3)  # the replica checks of every worker have run once
            print(f"replica: reads without and with a replica, {seconds:.0f} s each",
                  flush=True)
            # Alternated, half the time each, twice (as bench.ingest does): the machine is
            # shared and its speed drifts over a minute.
            half = seconds / 2
            alone = load.run(without, read, readers, seconds=half)
            paired, on_replica, on_primary = _counted(node, node_standby, name, lambda: load.run(
                base, read, readers, seconds=half))
            alone += load.run(without, read, readers, seconds=half)
            more, replica_more, primary_more = _counted(node, node_standby, name, lambda: load.run(
                base, read, readers, seconds=half))
            paired, on_replica, on_primary = (paired + more, on_replica + replica_more,
                                              on_primary + primary_more)
            print(f"replica: ingest with lag sampled, {seconds:.0f} s", flush=True)
            stop = threading.Event()
            sampled: list[tuple[list[int], list[float]]] = []
            sampler = threading.Thread(
                target=lambda: sampled.append(_sample_lag(dsn, stop)), daemon=True)
            sampler.start()
            posted = load.run(base, report, writers, seconds=seconds)
            stop.set()
            sampler.join()
        behind, lag = sampled[0]
    finally:
        node_standby.destroy()
        shutil.rmtree(root, ignore_errors=True)
    ratio = paired.throughput / alone.throughput
    share = on_replica / max(on_replica + on_primary, 1)
    results.add(Row(
        f"replica lag under ingest ({ingest.CLIENTS} clients posting)",
        f"replay lag p50 {statistics.median(lag) * 1000:.0f} ms, p99 {_ms(lag, 99) * 1000:.0f}"
        f" ms, max {max(lag) * 1000:.0f} ms; WAL behind p50 {statistics.median(behind):,.0f}"
        f" B, max {max(behind):,} B",
        f"{posted.throughput:.0f} reports/s posted (p99 {posted.ms(99):.0f} ms)", "—",
        "< replica_max_lag (10 s)",
        f"{len(lag)} samples of pg_stat_replication every {SAMPLE_SECONDS} s; standby made "
        f"by pg_basebackup in {made:.1f} s; same 2-core machine"))
    results.add(Row(
        f"reads with a replica ({ingest.CLIENTS} clients: bbox lists, one issue, OGC items, "
        "a tile)",
        f"{paired.throughput:.0f} req/s, p50 {paired.ms(50):.0f} ms, p99 {paired.ms(99):.0f}"
        f" ms" + (f" ({paired.failures()})" if paired.failures() else ""),
        f"without: {alone.throughput:.0f} req/s, p50 {alone.ms(50):.0f} ms, p99 "
        f"{alone.ms(99):.0f} ms", f"{ratio:.0%}", "—",
        f"transactions in the run: {on_replica:,} on the standby, {on_primary:,} on the "
        f"primary ({share:.0%} on the standby; pg_stat_database of each); primary and standby "
        "share this machine's cores, so no gain is possible here"))
    return dsn


def main() -> None:
    """Run the replica benchmarks alone on a private cluster."""
    run_alone(lambda results, node, sizes: run(results, node, sizes.load_seconds))


if __name__ == "__main__":
    main()
