"""Deliveries survive ``kill -9`` of the worker: 1,000 messages queued for a loopback webhook
receiver, a real ``sitewatch worker`` killed while a send is in flight, a second worker
started; every delivery arrives at least once, nothing arrives that was not owed, and the
database marks all delivered. Two workers at once deliver each message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers.notify import outbox
from tests.loopback import Answer, eventually, receiving

MESSAGES = 1000
# The receiver holds the send of this delivery (counting from 1) until the worker is dead.
HOLD_AT = 400
# Generous bounds on waiting for a process to do what it must (not timing assertions: a
# slow machine only waits longer, a broken worker fails).
PATIENCE_SECONDS = 120.0


@dataclass
class Receiver:
    """A loopback webhook receiver keeping every X-Sitewatch-Delivery id it was sent, in
    order; it may hold the ``hold_at``-th request unanswered until ``release`` is set."""

    url: str = ""
    hold_at: int = 0
    delay: float = 0.0
    ids: list[str] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self) -> list[str]:
        """The ids received so far (a copy)."""
        with self.lock:
            return list(self.ids)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    def count(request: BaseHTTPRequestHandler, _body: bytes) -> Answer:
        with state.lock:
            state.ids.append(request.headers["X-Sitewatch-Delivery"])
            hold = len(state.ids) == state.hold_at
        if hold:
            state.holding.set()
            state.release.wait(PATIENCE_SECONDS)
        time.sleep(state.delay)
        return Answer()

    with receiving(count) as url:
        state.url = f"{url}/hook"
        yield state
        state.release.set()


def _until(check: Callable[[], Any]) -> Any:
    return eventually(check, PATIENCE_SECONDS)


def _queue(dsn: str, url: str, n: int) -> set[str]:
    """A webhook subscription for the office and ``n`` outbox events (one INSERT, fanned out
    by the outbox trigger into one delivery each); the delivery ids owed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Only the queued kind: the workers' own jobs (the office's daily digest once its
        # local time has passed) must not add deliveries the count does not owe.
        outbox.add(conn, unit=None, channel="webhook", target=url, secret="kill-键",
                   events=["issue.assigned"], created_by="创建办")
        conn.execute("""
            INSERT INTO outbox (kind, payload)
            SELECT 'issue.assigned', jsonb_build_object(
                'event', 'issue.assigned', 'issue', 'KILL-' || g,
                'description', '暴露垃圾 ' || g, 'deadline', '2026-12-01T12:00:00+08:00')
            FROM generate_series(1, %s) g""", [n])
        rows = conn.execute("SELECT id::text FROM delivery").fetchall()
    return {str(r[0]) for r in rows}


def _states(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT state, count(*) FROM delivery GROUP BY state").fetchall()
    return {str(s): int(n) for s, n in rows}


class Workers:
    """``sitewatch worker`` processes on one database, delivering every 0.1 s."""

    def __init__(self, dsn: str, folder: Path) -> None:
        self.env = {**os.environ, "DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder),
                    "SITEWATCH_WORKER_TICK": "0.1", "SITEWATCH_DELIVER_EVERY": "0.1",
                    "SITEWATCH_WEBHOOK_ALLOW_PRIVATE": "1"}
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """One more worker process, its output in worker-N.log."""
        with (self.folder / f"worker-{len(self.procs)}.log").open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "api.cli.main", "worker"],
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> list[int]:
        """SIGTERM to those still running; every exit code (a killed one's is -9)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=PATIENCE_SECONDS))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def log(self) -> str:
        """What every worker wrote."""
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture
def workers(dsn: str, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(dsn, tmp_path)
    yield running
    running.stop_all()


def _beating(dsn: str, n: int) -> Callable[[], bool]:
    def workers_beating() -> bool:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM worker WHERE stopped_at IS NULL"
                               " AND heartbeat > started_at").fetchone()
        return row is not None and row[0] >= n
    return workers_beating


def test_a_worker_killed_mid_send_loses_no_delivery_and_invents_none(
        dsn: str, receiver: Receiver, workers: Workers) -> None:
    receiver.hold_at = HOLD_AT
    owed = _queue(dsn, receiver.url, MESSAGES)
    assert len(owed) == MESSAGES
    first = workers.start()
    assert receiver.holding.wait(PATIENCE_SECONDS), workers.log()
    held = receiver.seen()[HOLD_AT - 1]
    first.send_signal(signal.SIGKILL)  # mid-send: the receiver has it, unanswered
    assert first.wait(timeout=PATIENCE_SECONDS) == -signal.SIGKILL
    receiver.release.set()
    # It recorded each send once answered, one at a time: all before the held one.
    assert _states(dsn) == {"delivered": HOLD_AT - 1, "pending": MESSAGES - HOLD_AT + 1}

    workers.start()

    def all_delivered() -> bool:
        return _states(dsn) == {"delivered": MESSAGES}

    _until(all_delivered)
    assert workers.stop_all()[1] == 0, workers.log()
    arrived = Counter(receiver.seen())
    assert set(arrived) == owed  # each arrived at least once, none that was not owed
    # At least once: the send in flight at the kill was not recorded, so it went again;
    # nothing else did.
    assert {i: n for i, n in arrived.items() if n > 1} == {held: 2}


def test_two_workers_at_once_deliver_each_message_once(
        dsn: str, receiver: Receiver, workers: Workers) -> None:
    receiver.delay = 0.002  # each run outlasts a slot, so the next is the other worker's
    workers.start()
    workers.start()
    _until(_beating(dsn, 2))
    owed = _queue(dsn, receiver.url, MESSAGES)

    def all_delivered() -> bool:
        return _states(dsn) == {"delivered": MESSAGES}

    _until(all_delivered)
    assert workers.stop_all() == [0, 0], workers.log()
    arrived = Counter(receiver.seen())
    duplicates = sum(n - 1 for n in arrived.values())
    assert set(arrived) == owed
    assert duplicates == 0
    with psycopg.connect(dsn) as conn:
        senders = conn.execute(
            "SELECT count(DISTINCT worker) FROM job_run WHERE job = 'deliver'"
            " AND result NOT LIKE '0 delivered%%'").fetchone()
    # Both delivered, so the claim (FOR UPDATE SKIP LOCKED) was tested by two at once.
    assert senders == (2,), workers.log()
