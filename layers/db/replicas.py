"""Read replicas: which hot standby may answer a read now, and how far behind each one is.

A replica is **usable** when it answers, is a standby (in recovery) and has replayed the
primary's WAL to within ``max_lag`` seconds. The state of every replica is checked at most
every ``check_interval`` seconds by one background thread (:class:`ReplicaSet`), never per
request; reads pick a usable one in turn, else the primary answers. Nothing here fails a
read because a replica is away: a replica that cannot give a connection at once is marked
down until the next check and the primary answers.

**Read-your-writes**: after a write commits, the caller learns the primary's WAL insert
position (:func:`position`); a later read by that caller waits on the chosen replica until
``pg_last_wal_replay_lsn()`` has passed it (:func:`wait_replayed`), at most ``wait`` seconds,
else the primary answers.

**Writes never go to a replica**: replica sessions start with
``default_transaction_read_only=on`` (:func:`read_only`), so a write is refused even on a
server that is not a standby (a DSN that names a primary by mistake), and a standby refuses
writes anyway. :class:`ReplicaWriteRefused` is the error a request then gets.

Lag in seconds is ``now() - pg_last_xact_replay_timestamp()`` on the replica while it has
not replayed the primary's current position, and 0 once it has: an idle primary writes
no transactions, so the replay timestamp alone would call a caught-up standby "behind".
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from layers.errors import DomainError

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
# Seconds a check waits for a replica to answer before calling it down.
PROBE_TIMEOUT = 2
# Seconds a read waits for a connection from a replica's pool before the primary answers.
ACQUIRE_SECONDS = 0.5
# How often a read waiting for its caller's own write polls the replica's replay position.
POLL_SECONDS = 0.01


class ReplicaWriteRefused(DomainError, status=500, code="write-on-replica",
                          title="Write refused on a read replica"):
    """Something tried to write through a read replica's connection: a read-only route that
    writes is a bug, refused rather than half done."""


def parse_lsn(text: str) -> int | None:
    """A WAL position (``pg_lsn`` text) as a byte offset; None when ``text`` is not one.

    >>> parse_lsn("0/3000148")
    50331976
    >>> parse_lsn("1/0") == 2**32
    True
    >>> parse_lsn("x/1; DROP") is None
    True
    """
    match = _LSN.fullmatch(text.strip())
    if match is None:
        return None
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


def format_lsn(value: int) -> str:
    """A byte offset as ``pg_lsn`` text.

    >>> format_lsn(50331976)
    '0/3000148'
    """
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def read_only(conninfo: str) -> str:
    """``conninfo`` whose sessions refuse writes (``default_transaction_read_only``), options
    already there kept."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    return make_conninfo(conninfo, options=f"{options} -c default_transaction_read_only=on"
                         .strip())


def describe(conninfo: str) -> str:
    """Where a replica is, safe to show (``/health``, logs): host, port and database, never
    the user or password.

    >>> describe("postgresql://app:secret@db2.example:5433/sitewatch")
    'db2.example:5433/sitewatch'
    """
    parts = conninfo_to_dict(conninfo)
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/" \
           f"{parts.get('dbname') or ''}"


def is_read_only(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn`` is a replica's session (read-only or on a standby), without a query:
    PostgreSQL 14+ reports both settings to the client."""
    return "on" in (conn.info.parameter_status("in_hot_standby"),
                    conn.info.parameter_status("default_transaction_read_only"))


def position(conn: psycopg.Connection[Any]) -> int:
    """The primary's WAL insert position now: past the commit of every transaction committed
    on it so far (the *write* position may not be, with synchronous_commit off)."""
    row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    value = parse_lsn(str(row[0]))
    assert value is not None
    return value


def wait_replayed(conn: psycopg.Connection[Any], lsn: int, timeout: float) -> bool:
    """Wait until the replica of ``conn`` has replayed ``lsn``, at most ``timeout`` seconds;
    whether it has."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                           [format_lsn(lsn)]).fetchone()
        if row is not None and row[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class ReplicaState:
    """What the last check learnt of one replica. ``reason`` says why it is not usable
    (``down``, ``not a standby``, ``lagging``); lags are None when unknown."""

    name: str
    usable: bool
    reason: str | None = None
    replay_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    checked_at: float = field(default_factory=time.monotonic)


# WAL a caught-up standby of an idle primary may lack: less than a page of records not yet
# streamed (the primary's insert position runs ahead of what it has sent).
IDLE_TAIL_BYTES = 8192


def probe(conninfo: str, primary_lsn: int | None, max_lag: float) -> ReplicaState:
    """Check one replica now (a connection of its own, so a busy pool does not matter)."""
    name = describe(conninfo)
    try:
        with psycopg.connect(conninfo, connect_timeout=PROBE_TIMEOUT, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " pg_last_wal_receive_lsn()::text,"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
            ).fetchone()
    except psycopg.Error as exc:
        log.info("replica %s is down: %s", name, type(exc).__name__)
        return ReplicaState(name, usable=False, reason="down")
    assert row is not None
    standby, replay_text, receive_text, since_replay = row
    if not standby:
        return ReplicaState(name, usable=False, reason="not a standby")
    replay = parse_lsn(replay_text or "")
    receive = parse_lsn(receive_text or "")
    behind = (primary_lsn - replay if primary_lsn is not None and replay is not None
              else None)
    caught_up = behind <= 0 if behind is not None else receive == replay
    if (not caught_up and since_replay is None and receive is not None and receive == replay
            and behind is not None and behind <= IDLE_TAIL_BYTES):
        # A standby just started on an idle primary has replayed no transaction yet (no
        # replay time) and everything it received; the few bytes it lacks are the primary's
        # records not yet streamed (40 bytes seen in CI), not lag.
        caught_up = True
    lag = 0.0 if caught_up else (float(since_replay) if since_replay is not None
                                 else float("inf"))
    usable = lag <= max_lag
    return ReplicaState(name, usable=usable, reason=None if usable else "lagging",
                        replay_lsn=replay_text, lag_bytes=max(behind, 0)
                        if behind is not None else None, lag_seconds=round(lag, 3))


def primary_position(connect: Connect) -> int | None:
    """The primary's WAL position for lag, or None when it cannot be read now."""
    try:
        with connect() as conn:
            return position(conn)
    except (psycopg.Error, PoolTimeout):
        return None


class Replica:
    """One replica: its pool (read-only sessions) and its last checked state."""

    def __init__(self, conninfo: str, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        self.conninfo = conninfo
        self.pool = pool
        self.state = ReplicaState(describe(conninfo), usable=False, reason="not checked yet")
        self.served = 0  # reads it answered (tests and benchmarks read it)


class ReplicaSet:
    """The web process's replicas: their pools, a checker thread, and the choice of one.

    ``primary`` opens a connection to the primary (the app's pool) for the lag check.
    """

    def __init__(self, conninfos: Sequence[str], primary: Connect, *, max_lag: float,
                 check_interval: float,
                 pool: Callable[[str], ConnectionPool[psycopg.Connection[Any]]]) -> None:
        self.replicas = [Replica(c, pool(read_only(c))) for c in conninfos]
        self._primary = primary
        self.max_lag = max_lag
        self.check_interval = check_interval
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __bool__(self) -> bool:
        return bool(self.replicas)

    def open(self) -> None:
        """Open the pools (in the background) and start checking."""
        if not self.replicas:
            return
        for replica in self.replicas:
            replica.pool.open(wait=False)
        self._thread = threading.Thread(target=self._check_forever, name="replica-check",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop checking and close the pools."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT * 2)
        for replica in self.replicas:
            replica.pool.close()

    def check_now(self) -> list[ReplicaState]:
        """Check every replica now (the thread does it every ``check_interval`` seconds)."""
        primary_lsn = primary_position(self._primary)
        for replica in self.replicas:
            replica.state = probe(replica.conninfo, primary_lsn, self.max_lag)
        return self.states()

    def states(self) -> list[ReplicaState]:
        """The last checked state of every replica, in configured order."""
        return [r.state for r in self.replicas]

    def _check_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_now()
            except Exception:  # a checker has no caller to tell; the next round retries
                log.exception("checking the replicas failed")
            self._stop.wait(self.check_interval)

    def _usable_in_turn(self) -> list[Replica]:
        usable = [r for r in self.replicas if r.state.usable]
        if not usable:
            return []
        start = next(self._turn) % len(usable)
        return usable[start:] + usable[:start]

    def acquire(self, after: int | None, wait: float, busy_wait: float = ACQUIRE_SECONDS
                ) -> tuple[ExitStack, psycopg.Connection[Any]] | None:
        """A connection of a usable replica that has replayed ``after`` (waiting at most
        ``wait`` seconds), held by the returned stack (close it to give the connection back:
        commit, or rollback on an exception); None when the primary must answer.

        A pool with all its connections open and busy is queued on for up to ``busy_wait``
        seconds (the primary's pool is as busy under that load: sending the overflow there
        after a short wait only added the wait); one still connecting gets ACQUIRE_SECONDS,
        so a replica that went away costs a read half a second at most."""
        for replica in self._usable_in_turn():
            stack = ExitStack()
            full = replica.pool.get_stats().get("pool_size", 0) >= replica.pool.max_size
            try:
                conn = stack.enter_context(replica.pool.connection(
                    timeout=max(busy_wait, ACQUIRE_SECONDS) if full else ACQUIRE_SECONDS))
                if after is not None and not wait_replayed(conn, after, wait):
                    stack.close()
                    return None  # behind the caller's own write: the primary has it
            except (PoolTimeout, psycopg.OperationalError):
                stack.close()
                # Busy or away: this read goes elsewhere; the next check judges it again.
                if replica.pool.get_stats().get("pool_size", 0) < replica.pool.max_size:
                    replica.state = ReplicaState(replica.state.name, usable=False,
                                                 reason="down")
                continue
            replica.served += 1
            return stack, conn
        return None


def read_connector(primary_conninfo: str, conninfos: Sequence[str], max_lag: float) -> Connect:
    """A ``Connect`` for work outside the web process that only reads (the worker's
    analyses): each connection goes to the first replica usable at that moment, else to the
    primary."""
    @contextmanager
    def connect() -> Iterator[psycopg.Connection[Any]]:
        target = primary_conninfo
        if conninfos:
            with psycopg.connect(primary_conninfo, autocommit=True) as primary:
                primary_lsn = position(primary)
            for conninfo in conninfos:
                if probe(conninfo, primary_lsn, max_lag).usable:
                    target = read_only(conninfo)
                    break
        with psycopg.connect(target) as conn:
            yield conn
    return connect
