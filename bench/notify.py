"""Notifications: how soon a report's webhook reaches a local receiver while reports are
being ingested, and how many deliveries per second one worker sends.

Latency: the production server (``bench.ingest.serving``) and one ``sitewatch worker`` with
the default settings (a delivery round every ``SITEWATCH_DELIVER_EVERY`` = 5 s) on the demo
district; the busiest unit subscribes a loopback receiver in this process to
``issue.assigned``. 8 clients ingest reports on other units' ground (as fast as the server
takes them: their messages would otherwise queue up beyond what one worker sends, see the
throughput) while a probe sends one report on that unit's ground every 0.25 s; each probe's
time runs from sending its committing ``POST /api/v1/issues`` to its webhook's arrival. The
baseline is the worker's own schedule: a message waits on average half a round for it.

Throughput: ``layers.notify.deliveries.deliver_due`` (what the worker's deliver job runs)
sending 2,000 queued deliveries to a receiver that answers at once; the baseline, in the same
run, is the same number of plain HTTP POSTs of the same size to the same receiver from one
client, with no database (the sending loop's floor).

Run alone: ``python -m bench.notify`` (about 40 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import load
from bench.harness import Results, Row, fresh_database, percentile, run_alone
from bench.ingest import serving
from layers.auth import tokens
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.io import demo
from layers.notify import deliveries, outbox

LOAD_CLIENTS = 8
PROBE_EVERY = 0.25
THROUGHPUT_MESSAGES = 2000
# How long probes' webhooks may still come after the load stops (several rounds).
DRAIN_SECONDS = 30.0
Places = list[tuple[str, float, float]]  # (category, lon, lat) a report may have
# The subscriptions' signing key (a local receiver's; signing is part of each send's cost).
SECRET = "bench-key"  # noqa: S105 (a loopback receiver's key)


@dataclass
class Receiver:
    """A loopback webhook receiver answering 200 at once; when each issue's message came."""

    url: str = ""
    arrived: dict[str, float] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    """A :class:`Receiver` on a loopback port, in threads of this process."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            at = time.perf_counter()
            issue = json.loads(body).get("data", {}).get("issue")
            with state.lock:
                state.count += 1
                if issue:
                    state.arrived.setdefault(str(issue), at)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet: a line per request would be the benchmark's own cost."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def worker(dsn: str, folder: Path) -> Iterator[None]:
    """One ``sitewatch worker`` process with the default schedule, stopped with SIGTERM."""
    env = {**os.environ, "DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder),
           "SITEWATCH_WEBHOOK_ALLOW_PRIVATE": "1", "SITEWATCH_SNAPSHOT_INTERVAL": "0"}
    with (folder / "worker.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli.main", "worker"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _prepare(dsn: str) -> tuple[Places, Places, str, list[str]]:
    """Demo data; places where a report's lead unit is the busiest unit (the probes') and
    places where it is another (the load's); that unit's code; one inspector token per
    client and the probe's."""
    with psycopg.connect(dsn) as conn:
        demo.load(conn, zone=Settings().zone)
        rows = conn.execute("SELECT i.category_code, ST_X(i.geom), ST_Y(i.geom), u.code"
                            " FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                            " ORDER BY i.id").fetchall()
        inspectors = [tokens.create(conn, role="inspector", name=f"phone {c}")
                      for c in range(LOAD_CLIENTS + 1)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    unit = Counter(str(r[3]) for r in rows).most_common(1)[0][0]
    probe = [(str(c), float(x), float(y)) for c, x, y, u in rows if u == unit]
    other = [(str(c), float(x), float(y)) for c, x, y, u in rows if u != unit]
    return probe, other, unit, inspectors


def _subscribe(dsn: str, url: str, unit: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        outbox.add(conn, unit=unit, channel="webhook", target=url, secret=SECRET,
                   events=["issue.assigned"], created_by="bench")


def _probe(base: str, token: str, places: Places, unit: str, seconds: float
           ) -> dict[str, float]:
    """One report every PROBE_EVERY seconds for ``seconds``: issue id -> time sent, for the
    reports stored with ``unit`` as lead unit (so a message is owed)."""
    sent: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {token}"}
    stop_at = time.perf_counter() + seconds
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while time.perf_counter() < stop_at:
            category, lon, lat = places[(n * 7919) % len(places)]
            at = time.perf_counter()
            response = http.post("/api/v1/issues", headers=headers, json={
                "category": category, "lon": lon, "lat": lat,
                "description": f"probe {n}", "source": "self_inspection"})
            n += 1
            if response.status_code == 201 and response.json()["properties"]["lead_unit"] == unit:
                sent[str(response.json()["id"])] = at
            time.sleep(max(0.0, at + PROBE_EVERY - time.perf_counter()))
    return sent


def _latency(results: Results, node: Cluster, seconds: float) -> str:
    dsn = fresh_database(node, "bench_notify")
    probe_places, load_places, unit, inspectors = _prepare(dsn)
    per_client = [{"Authorization": f"Bearer {t}"} for t in inspectors[:LOAD_CLIENTS]]
    n = 0

    def report(c: int, i: int) -> tuple[str, str, object]:
        nonlocal n
        n += 1
        category, lon, lat = load_places[(n * 104729) % len(load_places)]
        return "POST", "/api/v1/issues", {"category": category, "lon": lon, "lat": lat,
                                          "description": f"load {c}-{i}",
                                          "source": "self_inspection"}

    with receiving() as receiver, tempfile.TemporaryDirectory(prefix="sw-bench-notify-") \
            as folder, serving(dsn, Path(folder)) as base, worker(dsn, Path(folder)):
        _subscribe(dsn, receiver.url, unit)
        print(f"notify latency: {LOAD_CLIENTS} ingest clients, a probe every {PROBE_EVERY} s,"
              f" {seconds:.0f} s", flush=True)
        probes: dict[str, float] = {}
        prober = threading.Thread(target=lambda: probes.update(
            _probe(base, inspectors[-1], probe_places, unit, seconds)))
        prober.start()
        ingest = load.run(base, report, per_client, warmup=0.0, seconds=seconds)
        prober.join()
        drain_until = time.perf_counter() + DRAIN_SECONDS
        while time.perf_counter() < drain_until and not set(probes) <= set(receiver.arrived):
            time.sleep(0.2)
        waits = [receiver.arrived[i] - t for i, t in probes.items() if i in receiver.arrived]
        missing = len(probes) - len(waits)
        if not waits:
            raise RuntimeError(f"no probe's webhook came ({len(probes)} probes, "
                               f"{receiver.count} messages): "
                               + (Path(folder) / "worker.log").read_text()[-3000:])
    every = Settings().deliver_every
    p50, p99 = percentile(waits, 50), percentile(waits, 99)
    results.add(Row(
        "report to webhook, while ingesting", f"p50 {p50:.2f} s, p99 {p99:.2f} s",
        f"delivery round every {every:.0f} s: {every / 2:.1f} s mean wait",
        f"{p50 / (every / 2):.1f}x the mean wait", "within seconds",
        f"{len(waits)} probes, {missing} missing; ingest {ingest.throughput:.0f} req/s from "
        f"{LOAD_CLIENTS} clients ({ingest.failures() or 'no failures'}); 1 worker, "
        f"default settings; from sending the committing POST to arrival"))
    return dsn


def _plain_posts(url: str, body: bytes, n: int) -> float:
    """Seconds for ``n`` sequential POSTs of ``body`` from one client, as a delivery run
    sends (layers.notify.channels.Courier keeps one client for the run)."""
    start = time.perf_counter()
    with httpx.Client(timeout=10, trust_env=False) as client:
        for _ in range(n):
            client.post(url, content=body, headers={"Content-Type": "application/json"})
    return time.perf_counter() - start


def _throughput(results: Results, node: Cluster) -> None:
    dsn = fresh_database(node, "bench_notify_rate")
    settings = Settings(database_url=dsn, webhook_allow_private=True)
    with receiving() as receiver:
        with psycopg.connect(dsn, autocommit=True) as conn:
            outbox.add(conn, unit=None, channel="webhook", target=receiver.url,
                       secret=SECRET, events=[], created_by="bench")
            conn.execute("""
                INSERT INTO outbox (kind, payload)
                SELECT 'issue.assigned', jsonb_build_object(
                    'event', 'issue.assigned', 'issue', 'B-' || g, 'category', 'CTY-05',
                    'category_zh', '暴露垃圾', 'description', '农贸市场北门暴露垃圾 ' || g,
                    'deadline', '2026-12-01T12:00:00+08:00', 'unit', 'C01',
                    'unit_name', '湖东社区', 'community', '湖东社区')
                FROM generate_series(1, %s) g""", [THROUGHPUT_MESSAGES])
            print(f"notify throughput: {THROUGHPUT_MESSAGES:,} deliveries", flush=True)
            took = time.perf_counter()
            done = deliveries.deliver_due(conn, settings, limit=THROUGHPUT_MESSAGES)
            took = time.perf_counter() - took
        body = json.dumps({"id": "x" * 36, "event": "issue.assigned", "data": {
            "issue": "B-1", "description": "农贸市场北门暴露垃圾"}, "text": "x" * 300},
            ensure_ascii=False).encode()
        plain = _plain_posts(receiver.url, body, THROUGHPUT_MESSAGES)
    rate, floor = done.delivered / took, THROUGHPUT_MESSAGES / plain
    results.add(Row(
        "deliveries per second, one worker", f"{rate:.0f}/s",
        f"plain POSTs to the same receiver: {floor:.0f}/s", f"{rate / floor:.0%} of the floor",
        "—", f"{done.delivered:,} delivered, {done.retrying} retrying; claim (SKIP LOCKED) + "
        f"render + sign + send + record, one transaction each, one kept-alive client; the "
        f"worker's job sends batches of {deliveries.BATCH} while they come full, for up to "
        f"{deliveries.BUDGET.total_seconds():.0f} s a run"))


def run(results: Results, node: Cluster, seconds: float = 15.0) -> str:
    """Both notification benchmarks on fresh databases of ``node``; the demo's dsn."""
    dsn = _latency(results, node, seconds)
    _throughput(results, node)
    return dsn


def main() -> None:
    """Run the notification benchmarks alone on a private cluster."""
    run_alone(lambda results, node, _: run(results, node))

if __name__ == "__main__":
    main()
