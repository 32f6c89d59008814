"""A real uvicorn that a test may kill -9 and restart on the same port, and tokens for it.

Unlike ``tests/e2e``'s ``serve``, the process here outlives a ``with`` block on purpose: the
crash test kills it mid-load and starts a new one on the same database and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from layers.auth import tokens


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn api.app:create_app`` on ``dsn`` (one process, as a kill -9 must hit it all)."""

    def __init__(self, dsn: str, folder: Path, **env: str) -> None:
        self.dsn, self.folder, self.env = dsn, folder, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, healthy: bool = True) -> None:
        """Start the server; wait until it listens (and, if ``healthy``, answers 200)."""
        self.starts += 1
        log = (self.folder / f"uvicorn-{self.starts}.log").open("w")
        environment = {**os.environ, "DATABASE_URL": self.dsn,
                       "SITEWATCH_DATA_DIR": str(self.folder), **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env=environment, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                status = httpx.get(f"{self.base}/health", timeout=2).status_code
                if status == 200 or not healthy:
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + self.log())

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """A normal shutdown (if still running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def log(self) -> str:
        """Everything the server processes wrote."""
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.folder.glob("uvicorn-*.log")))


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Build servers (not started); every one is stopped after the test."""
    made: list[Server] = []

    def make(dsn: str, **env: str) -> Server:
        server = Server(dsn, tmp_path, **env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def make_bearer(dsn: str, role: str, name: str, unit: str | None = None) -> dict[str, str]:
    """Headers carrying a new token of ``role``."""
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role=role, name=name, unit_code=unit)
    return {"Authorization": f"Bearer {token}"}


def read_report_points(dsn: str, n: int = 500) -> list[tuple[str, float, float]]:
    """(category, lon, lat) of demo issues: places and categories a report may really have."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT category_code, ST_X(geom), ST_Y(geom) FROM issue"
                            " ORDER BY id LIMIT %s", [n]).fetchall()
    return [(str(c), float(x), float(y)) for c, x, y in rows]


# -- load ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP exchange as the client saw it (status 0: no answer, the connection failed)."""

    sent: float
    done: float
    method: str
    status: int
    content_type: str = ""
    code: str = ""


@dataclass
class Load:
    """Inspectors creating issues (each with its own Idempotency-Key) while supervisors move
    the created ones on (extend the deadline, then reject half of them).

    A create that got no answer, or a 503, is retried with the same key (as a phone does);
    ``retry=False`` gives up instead, leaving it unacknowledged. Everything a client saw is
    kept in ``answers``; what was acknowledged in ``created`` and ``moved``.
    """

    base: str
    inspectors: list[dict[str, str]]
    supervisors: list[dict[str, str]]
    points: list[tuple[str, float, float]]
    tag: str
    retry: bool = True
    answers: list[Answer] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> public id
    attempted: set[str] = field(default_factory=set)
    moved: dict[str, list[str]] = field(default_factory=dict)  # public id -> acked actions
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        """Run the clients in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the requests under way to be answered."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the load did not stop"

    def server_errors(self) -> list[Answer]:
        """Answers with a 5xx other than 503 (a 503 is the honest "try again")."""
        return [a for a in self.answers if a.status >= 500 and a.status != 503]

    async def _send(self, http: httpx.AsyncClient, method: str, path: str, body: Any,
                    headers: dict[str, str]) -> httpx.Response | None:
        sent = time.monotonic()
        try:
            response = await http.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            self.answers.append(Answer(sent, time.monotonic(), method, 0))
            return None
        kind = response.headers.get("content-type", "")
        code = response.json().get("code", "") if "json" in kind else ""
        self.answers.append(Answer(sent, time.monotonic(), method, response.status_code,
                                   kind, str(code)))
        return response

    async def _inspector(self, c: int, http: httpx.AsyncClient, queue: asyncio.Queue[Any]
                         ) -> None:
        rng = random.Random(c)
        n = 0
        while not self._stop.is_set():
            key = f"{self.tag}-{c}-{n}"
            n += 1
            category, lon, lat = self.points[rng.randrange(len(self.points))]
            body = {"category": category, "lon": lon + rng.uniform(-1e-4, 1e-4),
                    "lat": lat + rng.uniform(-1e-4, 1e-4), "description": key,
                    "source": "self_inspection"}
            headers = {**self.inspectors[c % len(self.inspectors)], "Idempotency-Key": key}
            self.attempted.add(key)
            while True:
                response = await self._send(http, "POST", "/api/v1/issues", body, headers)
                unanswered = response is None or response.status_code == 503
                if not (unanswered and self.retry and not self._stop.is_set()):
                    break
                await asyncio.sleep(0.2)
            if response is not None and response.status_code == 201:
                issue = response.json()
                self.created[key] = issue["id"]
                await queue.put(issue)

    async def _supervisor(self, s: int, http: httpx.AsyncClient, queue: asyncio.Queue[Any]
                          ) -> None:
        while not self._stop.is_set():
            try:
                issue = await asyncio.wait_for(queue.get(), timeout=0.2)
            except TimeoutError:
                continue
            public_id, props = issue["id"], issue["properties"]
            version, deadline = props["version"], props["deadline"]
            steps: list[tuple[str, dict[str, Any]]] = []
            if deadline:
                later = datetime.fromisoformat(deadline) + timedelta(days=1)
                steps.append(("extend_deadline", {"deadline": later.isoformat()}))
            if zlib.crc32(public_id.encode()) % 2:
                steps.append(("reject", {"note": "not our ground"}))
            for action, extra in steps:
                response = await self._send(
                    http, "POST", f"/api/v1/issues/{public_id}/transitions",
                    {"action": action, "version": version, **extra},
                    self.supervisors[s % len(self.supervisors)])
                if response is None or response.status_code != 200:
                    break
                self.moved.setdefault(public_id, []).append(action)
                version = response.json()["properties"]["version"]

    async def _main(self) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        clients = len(self.inspectors) + len(self.supervisors)
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        # Longer than the pool's 5 s wait for a connection: a hang shows as a timeout here.
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=15) as http:
            await asyncio.gather(
                *(self._inspector(c, http, queue) for c in range(len(self.inspectors))),
                *(self._supervisor(s, http, queue) for s in range(len(self.supervisors))))


def begin_load(dsn: str, base: str, *, inspector_clients: int = 12,
               supervisor_clients: int = 4, tag: str = "load", retry: bool = True) -> Load:
    """Start a :class:`Load` on the server at ``base`` with fresh tokens in ``dsn``."""
    points = read_report_points(dsn)
    inspectors = [make_bearer(dsn, "inspector", f"phone {c}") for c in range(inspector_clients)]
    supervisors = [make_bearer(dsn, "supervisor", f"supervisor {s}")
                   for s in range(supervisor_clients)]
    return Load(base, inspectors, supervisors, points, tag, retry=retry).start()


@pytest.fixture
def start_load(demo_dsn: str) -> Callable[..., Load]:
    """:func:`begin_load` on this test's demo copy: ``start_load(base, **options)``."""
    return functools.partial(begin_load, demo_dsn)


@pytest.fixture
def load_on() -> Callable[..., Load]:
    """:func:`begin_load` on any database: ``load_on(dsn, base, **options)``."""
    return begin_load


TRANSITIONS = ("assign", "rectify", "verify", "reopen", "reject", "mark_duplicate",
               "extend_deadline")


def read_stored(dsn: str, tag: str) -> dict[str, dict[str, Any]]:
    """The issues a load created (by description = key), each with its audit trail summary."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("""
            SELECT i.description, i.public_id, i.version, i.status, i.lead_unit_id IS NOT NULL,
                   coalesce(array_agg(e.action ORDER BY e.id)
                            FILTER (WHERE e.id IS NOT NULL), '{}')
            FROM issue i LEFT JOIN issue_event e ON e.issue_id = i.id
            WHERE i.description LIKE %s
            GROUP BY i.id, i.description, i.public_id, i.version, i.status, i.lead_unit_id
            ORDER BY i.id""", [f"{tag}-%"]).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for key, public_id, version, status, has_lead, actions in rows:
        assert key not in out, f"{key} stored twice"
        out[key] = {"id": public_id, "version": version, "status": status,
                    "has_lead": has_lead, "actions": list(actions)}
    return out


def check_complete(issue: dict[str, Any]) -> None:
    """An issue is whole: one report event, the engine's assign event iff it found a lead
    unit, and one transition event for every version step."""
    actions = issue["actions"]
    assert actions.count("report") == 1, issue
    assert (actions.count("assign") == 1) == issue["has_lead"], issue
    moves = [a for a in actions if a in TRANSITIONS and a != "assign"]
    assert issue["version"] == 1 + len(moves), issue


@pytest.fixture
def stored() -> Callable[[str, str], dict[str, dict[str, Any]]]:
    """:func:`read_stored`, for tests (conftest functions reach tests through fixtures)."""
    return read_stored


@pytest.fixture
def assert_complete() -> Callable[[dict[str, Any]], None]:
    """:func:`check_complete`, for tests."""
    return check_complete


@pytest.fixture
def bearer() -> Callable[..., dict[str, str]]:
    """:func:`make_bearer`, for tests: ``bearer(dsn, role, name)``."""
    return make_bearer


@pytest.fixture
def report_points() -> Callable[..., list[tuple[str, float, float]]]:
    """:func:`read_report_points`, for tests."""
    return read_report_points
