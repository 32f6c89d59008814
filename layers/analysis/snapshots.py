"""Analysis snapshots: results that take seconds at scale, stored with their data version.

A map page must be built in well under a second at a million issues, but some of what it
shows cannot be computed that fast: the overview's counts per cell and community scan every
issue (1.5–2 s at 1M), the hotspot analysis reads every point and runs Gi*, the space-time
cube and the chronic-site ranking (about 7 s at 1M). So pages show the newest **snapshot** of
such a result (table ``analysis_snapshot``), stamped with when it was computed:

- a snapshot of the current data version is served as is;
- a stale one (issues or layers changed since) is served while it is younger than
  ``max_stale`` seconds, and a refresh is started in the background, so the next view is
  current; the page says when its analysis was computed;
- with no snapshot, or one too old, the request computes and stores it (what every request
  did before snapshots). An advisory lock per key makes concurrent requests and server
  processes compute it once; the others wait and read the result.

:class:`Refresher` also keeps the default snapshots (the pages' landing views) current: the
worker runs it a few seconds after data change, so a leader opening a page rarely sees a
stale one.

Anyone may ask for a page of another period, so those snapshots are *ad hoc* (:func:`adhoc`,
keys under ``adhoc:``): only the :data:`KEEP` most recently computed of them are kept, and
they never push out the landing views, whose keys are bounded by construction (all time, the
year's phases, the hotspot page). Computing one in a request takes a slot of the caller's
gate (:meth:`Snapshots.get`), like any heavy analysis.

A street-scoped caller (layers.auth.scope) sees its street only, so its results are kept
under keys of their own (``street:<id>:...``, :func:`for_scope`), computed and refreshed in
its scope, and never served to the district or another street.

The data version is :func:`data_version`: the assignment inputs' counter and the issue
table's change counter (both moved by triggers in the writers' own transactions, migrations
0003 and 0011), so reading it costs two tiny queries instead of a scan of the issue table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from layers.auth import scope
from layers.db import replicas
from layers.errors import DomainError

log = logging.getLogger(__name__)

# How many ad-hoc snapshots are kept (the periods people asked for lately); landing views
# are kept besides them, whatever is asked.
KEEP = 64
ADHOC = "adhoc:"

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def connector(conninfo: str) -> Connect:
    """A ``Connect`` opening a new connection to ``conninfo`` each time (outside the app,
    which passes its pool's ``connection``)."""
    @contextmanager
    def connect() -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(conninfo) as conn:
            yield conn
    return connect


def data_version(conn: psycopg.Connection[Any]) -> str:
    """A value that changes whenever issues, their tallies (layers.analysis.tallies, a few
    seconds later) or the assignment inputs change (and only then)."""
    row = conn.execute("SELECT (SELECT version FROM layers_version),"
                       " (SELECT sum(n) FROM issue_change),"
                       " (SELECT folds FROM tally_basis)").fetchone()
    assert row is not None
    return f"{int(row[0] or 0)}.{int(row[1] or 0)}.{int(row[2] or 0)}"


def issue_changes(conn: psycopg.Connection[Any]) -> int:
    """How many transactions have changed the issue table (the version's issue part)."""
    row = conn.execute("SELECT sum(n) FROM issue_change").fetchone()
    return int(row[0] or 0) if row else 0


@dataclass(frozen=True)
class Snapshot:
    """A stored result; ``current`` says whether it matches the data version it was read at."""

    key: str
    data_version: str
    computed_at: datetime
    seconds: float  # how long computing it took
    payload: Any
    age: float = 0.0  # seconds since computed, when read
    current: bool = True


@dataclass(frozen=True)
class Spec:
    """What to snapshot: a key naming the result and how to compute it (JSON-able) on a
    connection. The key must name everything the result depends on besides the data."""

    key: str
    compute: Callable[[psycopg.Connection[Any]], Any]


def adhoc(key: str, compute: Callable[[psycopg.Connection[Any]], Any]) -> Spec:
    """A spec for a view someone asked for (not a landing view): evicted after :data:`KEEP`
    newer ad-hoc ones."""
    return Spec(ADHOC + key, compute)


def read(conn: psycopg.Connection[Any], key: str) -> Snapshot | None:
    """The stored snapshot for ``key`` (``current`` not yet judged), or None."""
    row = conn.execute("SELECT data_version, computed_at, seconds, payload,"
                       " extract(epoch FROM now() - computed_at)"
                       " FROM analysis_snapshot WHERE key = %s", [key]).fetchone()
    if row is None:
        return None
    return Snapshot(key, str(row[0]), row[1], float(row[2]), row[3], float(row[4]))


def fresh(found: Snapshot | None, version: str, max_age: float) -> bool:
    """True when ``found`` was computed from ``version`` less than ``max_age`` seconds ago
    (counts of overdue issues move with the clock, not only with the data)."""
    return found is not None and found.data_version == version and found.age <= max_age


def write(conn: psycopg.Connection[Any], key: str, version: str, payload: Any,
          seconds: float) -> Snapshot:
    """Store ``payload`` as the snapshot of ``key`` at ``version``; drop the least recently
    computed ad-hoc ones beyond :data:`KEEP`."""
    row = conn.execute("""
        INSERT INTO analysis_snapshot (key, data_version, computed_at, seconds, payload)
        VALUES (%s, %s, clock_timestamp(), %s, %s)
        ON CONFLICT (key) DO UPDATE SET data_version = excluded.data_version,
            computed_at = excluded.computed_at, seconds = excluded.seconds,
            payload = excluded.payload
        RETURNING computed_at""", [key, version, seconds, Jsonb(payload)]).fetchone()
    assert row is not None
    # Each scope keeps its own most recent ad-hoc results (a street's keys carry its prefix).
    adhoc_keys = key.partition(ADHOC)[0] + ADHOC if ADHOC in key else ADHOC
    conn.execute("DELETE FROM analysis_snapshot WHERE key IN (SELECT key FROM"
                 " analysis_snapshot WHERE starts_with(key, %s)"
                 " ORDER BY computed_at DESC OFFSET %s)", [adhoc_keys, KEEP])
    return Snapshot(key, version, row[0], seconds, payload)


def compute_and_write(conn: psycopg.Connection[Any], spec: Spec,
                      max_age: float = float("inf"),
                      source: psycopg.Connection[Any] | None = None) -> Snapshot:
    """Compute ``spec`` at the current data version and store it, once across processes:
    whoever holds the key's advisory lock computes; who waited reads the stored result.
    The lock is the transaction's: the caller's commit publishes the snapshot and frees it.
    ``source`` (a read replica's session) is where the data and its version are read, when
    not ``conn`` (the primary's, where the lock and the snapshot are)."""
    source = conn if source is None else source
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    asked = row[0] if row else None
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('analysis_snapshot'), hashtext(%s))",
                 [spec.key])
    # Read the version before the data: a change landing during the computation then makes
    # the stored snapshot look stale (computed again), never a stale one look current.
    version = data_version(source)
    found = read(conn, spec.key)
    if found is not None and fresh(found, version, max_age):
        return found
    if found is not None and asked is not None and found.computed_at >= asked:
        # Computed by whoever held the lock while this one waited: under a steady flow of
        # reports the version has moved again by now, but computing it once more for each
        # waiter would queue them one behind the other.
        return replace(found, current=found.data_version == version)
    started = time.perf_counter()
    payload = spec.compute(source)
    return write(conn, spec.key, version, payload, time.perf_counter() - started)


_STREET = "street:"


def street_key(street: int | None, key: str) -> str:
    """The key of a street's result ``key`` (None: the district's)."""
    return key if street is None else f"{_STREET}{street}:{key}"


def for_scope(conn: psycopg.Connection[Any], spec: Spec) -> Spec:
    """``spec`` as the scope of ``conn`` sees it: a street's under a key of its own. A spec
    already keyed by a street (a district caller's view of one street, computed from that
    street's rows alone) is that street's result for its office too."""
    street = scope.current(conn)
    if street is None or spec.key.startswith(_STREET):
        return spec
    return Spec(street_key(street, spec.key), spec.compute)


def _street_of(key: str) -> int | None:
    """The street a scoped key belongs to (None: the district's)."""
    if not key.startswith(_STREET):
        return None
    return int(key[len(_STREET):].partition(":")[0])


class Snapshots:
    """The serving rule above, for one process.

    ``connect`` opens a connection for background refreshes (None: never serve stale, e.g.
    the CLI); ``max_stale`` and ``max_age`` are in seconds (config.Settings explains them).
    """

    def __init__(self, connect: Connect | None = None, *, max_stale: float = 600.0,
                 max_age: float = 900.0, min_interval: float = 10.0) -> None:
        self._connect = connect
        self.max_stale = max_stale
        self.max_age = max_age
        # Under a steady flow of reports the data version moves every second: a snapshot
        # younger than this is served without queueing yet another refresh (the refresher
        # or a later view brings it up to date), so each result is computed at most once
        # per interval however many people look.
        self.min_interval = min_interval
        self._pending: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") \
            if connect is not None else None

    def get(self, conn: psycopg.Connection[Any], spec: Spec,
            gate: Callable[[], AbstractContextManager[object]] | None = None) -> Snapshot:
        """The snapshot a page should show now (see the module's rule); computing it here,
        in the request, happens within ``gate()`` (a slot of bounded concurrency)."""
        spec = for_scope(conn, spec)
        found = read(conn, spec.key)
        if found is not None:
            version = data_version(conn)
            if fresh(found, version, self.max_age):
                return found
            same = found.data_version == version
            if self._pool is not None and (same or found.age <= self.max_stale):
                if found.age >= self.min_interval:
                    self.refresh_later(spec)
                return replace(found, current=same)
        if gate is None:
            return self._compute(conn, spec)
        with gate():
            return self._compute(conn, spec)

    def current(self, conn: psycopg.Connection[Any], spec: Spec,
                gate: Callable[[], AbstractContextManager[object]] | None = None) -> Snapshot:
        """The snapshot of ``spec`` at the current data version, never a stale one (what the
        REST routes promise): the stored one when current, else computed here, within
        ``gate()``, and stored for everyone (pages included)."""
        spec = for_scope(conn, spec)
        found = read(conn, spec.key)
        if fresh(found, data_version(conn), self.max_age):
            assert found is not None
            return found
        if gate is None:
            return self._compute(conn, spec)
        with gate():
            return self._compute(conn, spec)

    def _compute(self, conn: psycopg.Connection[Any], spec: Spec) -> Snapshot:
        """Compute and store ``spec`` in the request: on a read replica's session the data
        is read there and the snapshot stored on the primary (``connect``), which a replica
        cannot write."""
        if self._connect is not None and replicas.is_read_only(conn):
            with self._connect() as primary:
                return compute_and_write(primary, spec, self.max_age, source=conn)
        return compute_and_write(conn, spec, self.max_age)

    def refresh_later(self, spec: Spec) -> None:
        """Refresh ``spec`` in the background unless a refresh of it is already queued."""
        if self._pool is None:
            return
        with self._lock:
            if spec.key in self._pending or self._closed:
                return
            self._pending.add(spec.key)
            self._pool.submit(self._refresh, spec)

    def _refresh(self, spec: Spec) -> None:
        assert self._connect is not None
        try:
            with self._connect() as conn:
                # A street's result is recomputed in that street's scope, as it was asked.
                scope.enter(conn, _street_of(spec.key))
                try:
                    compute_and_write(conn, spec, self.max_age)
                    conn.commit()
                finally:
                    scope.reset(conn)
        except Exception:  # a background job has no caller to tell; the next view retries
            log.exception("refreshing snapshot %s failed", spec.key)
        finally:
            with self._lock:
                self._pending.discard(spec.key)

    def close(self) -> None:
        """Stop taking refreshes and wait for the queued ones."""
        with self._lock:
            self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class Refresher:
    """Refreshes the default snapshots (``specs(conn)``) whose data changed, so landing pages
    are current before anyone asks; the worker's refresh-maps job runs a round every
    ``interval`` seconds (api.services.worker_jobs)."""

    def __init__(self, connect: Connect,
                 specs: Callable[[psycopg.Connection[Any]], Iterable[Spec]],
                 interval: float, max_age: float = 900.0, source: Connect | None = None
                 ) -> None:
        # ``source``: where the analyses read their data (a read replica, else ``connect``);
        # the snapshots are always stored through ``connect`` (the primary).
        self._source = source
        self._connect = connect
        self._specs = specs
        self.interval = interval
        self.max_age = max_age

    def run_once(self) -> int:
        """Refresh every default snapshot that is missing or stale; how many were."""
        done = 0
        with self._connect() as conn:
            wanted = list(self._specs(conn))
        for spec in wanted:
            try:
                done += self._refresh_due(spec)
            except DomainError as exc:  # e.g. over budget: the page computes what fits
                log.info("snapshot %s not refreshed: %s", spec.key, exc.message)
        return done

    def _compute(self, conn: psycopg.Connection[Any], spec: Spec) -> None:
        if self._source is None:
            compute_and_write(conn, spec, self.max_age)
            return
        with self._source() as source:
            # A street's result reads that street only, as the web's refresh does (_refresh).
            scope.enter(source, _street_of(spec.key))
            compute_and_write(conn, spec, self.max_age, source=source)

    def _refresh_due(self, spec: Spec) -> int:
        """Refresh ``spec`` when missing or stale; 1 if it was."""
        with self._connect() as conn:
            found = read(conn, spec.key)
            # Several workers may refresh: one that refreshed a key less than an interval
            # ago (another worker, or a page's background refresh) is enough.
            due = found is None or found.age >= self.interval
            done = 0
            if due and not fresh(found, data_version(conn), self.max_age):
                # Another process refreshing the same key holds its lock: skip it.
                got = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext("
                                   "'analysis_snapshot'), hashtext(%s))",
                                   [spec.key]).fetchone()
                if got and got[0]:
                    self._compute(conn, spec)
                    done = 1
            conn.commit()
        return done
