"""The worker as a process: ``serve`` starts one as its child and takes it down with it (a
clean stop, or by itself when serve is killed); /health shows its heartbeat and the backlog
of undelivered messages."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.worker import runner, status
from tests.loopback import eventually

# Generous bounds on waiting for a process to do what it must (not timing assertions: a
# slow machine only waits longer, a broken stop fails).
PATIENCE_SECONDS = 60.0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _until(check: Callable[[], Any]) -> Any:
    return eventually(check, PATIENCE_SECONDS, every=0.1)


def _fresh_heartbeat(base: str) -> Callable[[], bool]:
    def heartbeat_shown() -> bool:
        beat = httpx.get(f"{base}/health", timeout=10).json()["worker"]
        return beat["heartbeat"] is not None and not beat["stale"]
    return heartbeat_shown


def _running_worker(dsn: str) -> tuple[str, int] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT name, pid FROM worker WHERE stopped_at IS NULL").fetchone()
    return (str(row[0]), int(row[1])) if row else None


@contextlib.contextmanager
def _serve(serving: Callable[..., Any], dsn: str, folder: Path
           ) -> Iterator[tuple[str, Any]]:
    env = {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder),
           "SITEWATCH_WORKER_TICK": "0.2"}
    with serving(["api.cli.main", "serve"], env, folder) as running:
        yield running


@pytest.mark.slow  # starts a real server and its worker
def test_serve_starts_a_worker_and_stopping_serve_stops_it(
        dsn: str, tmp_path: Path, serving: Callable[..., Any]) -> None:
    with _serve(serving, dsn, tmp_path) as (base, proc):
        _until(_fresh_heartbeat(base))
        name, pid = _until(lambda: _running_worker(dsn))
        assert _parent_of(pid) == proc.pid
    assert not _alive(proc.pid)
    _until(lambda: not _alive(pid))
    with psycopg.connect(dsn) as conn:
        stopped = conn.execute("SELECT stopped_at IS NOT NULL FROM worker WHERE name = %s",
                               [name]).fetchone()
    assert stopped == (True,)  # a clean stop, not a kill


@pytest.mark.slow  # starts a real server and its worker
def test_a_killed_serve_leaves_no_orphan_worker(
        dsn: str, tmp_path: Path, serving: Callable[..., Any]) -> None:
    with _serve(serving, dsn, tmp_path) as (_, proc):
        _, pid = _until(lambda: _running_worker(dsn))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _until(lambda: not _alive(pid))


@pytest.mark.slow  # starts a real server
def test_serve_without_worker_starts_none(dsn: str, tmp_path: Path,
                                          serving: Callable[..., Any]) -> None:
    env = {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(tmp_path),
           "SITEWATCH_WORKER_TICK": "0.2"}
    with serving(["api.cli.main", "serve", "--no-worker"], env, tmp_path) as (base, proc):
        assert httpx.get(f"{base}/health", timeout=10).json()["worker"]["heartbeat"] is None
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children == []


def test_health_shows_the_newest_heartbeat_and_when_it_is_stale(client: TestClient,
                                                                 dsn: str) -> None:
    assert client.get("/health").json()["worker"] == {
        "heartbeat": None, "age_seconds": None, "stale": True}
    with psycopg.connect(dsn, autocommit=True) as conn:
        runner.beat(conn, "w1")
        fresh = client.get("/health").json()["worker"]
        conn.execute("UPDATE worker SET heartbeat = now() - interval '1 hour'")
        old = client.get("/health").json()["worker"]
        runner.stopped(conn, "w1")
        gone = client.get("/health").json()["worker"]
    assert fresh["heartbeat"] is not None and fresh["stale"] is False
    assert old["stale"] is True and old["age_seconds"] >= 3600
    assert gone["heartbeat"] is None


def test_backlog_counts_pending_deliveries_only_where_the_outbox_exists(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS delivery, outbox CASCADE")
        assert status.backlog(conn) is None
        conn.execute("CREATE TABLE outbox (id int)")
        conn.execute("CREATE TABLE delivery (state text, created_at timestamptz)")
        assert status.backlog(conn) == status.Backlog(0, None)
        conn.execute("INSERT INTO delivery VALUES ('pending', '2026-11-20T08:00:00Z'), "
                     "('pending', '2026-11-20T09:00:00Z'), ('delivered', '2026-11-19T00:00Z')")
        waiting = status.backlog(conn)
    assert waiting is not None and waiting.queued == 2
    assert waiting.oldest is not None and waiting.oldest.isoformat().startswith("2026-11-20")


@pytest.mark.slow  # starts two worker processes
def test_two_worker_processes_share_the_slots_and_stop_on_sigterm(dsn: str,
                                                                  tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(tmp_path),
           "SITEWATCH_WORKER_TICK": "0.1"}
    logs = [(tmp_path / f"worker{i}.log").open("w") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "api.cli.main", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        def both_beating() -> bool:
            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT count(*) FROM worker WHERE stopped_at IS NULL "
                                   "AND heartbeat > started_at").fetchone()
            return row == (2,)

        _until(both_beating)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=PATIENCE_SECONDS) for proc in procs]
    finally:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    assert codes == [0, 0]
    with psycopg.connect(dsn) as conn:
        escalations = conn.execute("SELECT count(*) FROM job_run WHERE job = 'escalate'"
                                   ).fetchone()
        # The 5-minute slots the two workers' lives touched (one, unless the test ran
        # across a boundary): each escalated once, though both workers ticked many times.
        spanned = conn.execute(
            "SELECT floor(extract(epoch FROM max(stopped_at)) / 300)"
            " - floor(extract(epoch FROM min(started_at)) / 300) + 1 FROM worker").fetchone()
        stopped = conn.execute("SELECT count(*) FROM worker WHERE stopped_at IS NOT NULL"
                               ).fetchone()
    assert escalations is not None and spanned is not None
    assert 1 <= escalations[0] <= int(spanned[0]) <= 2
    assert stopped == (2,)
