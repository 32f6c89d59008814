"""Analysis snapshots: the cheap data version, the serving rule, the refresher."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from layers.analysis import snapshots
from layers.analysis.snapshots import Refresher, Snapshots, Spec

INSERT_ISSUE = ("INSERT INTO issue (category_code, geom, description, source) SELECT code,"
                " ST_SetSRID(ST_MakePoint(120.6, 31.3), 4326), 'x', 'citizen'"
                " FROM category ORDER BY code LIMIT 1")


class Counting:
    """A spec whose computation counts issues and how often it ran."""

    def __init__(self, key: str = "test:count", pause: float = 0.0) -> None:
        self.calls = 0
        self.pause = pause
        self.spec = Spec(key, self.compute)

    def compute(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        self.calls += 1
        time.sleep(self.pause)
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
        assert row is not None
        return {"issues": int(row[0])}


def test_version_moves_once_per_committed_transaction(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        start = snapshots.data_version(conn)
        conn.execute(INSERT_ISSUE)
        conn.execute(INSERT_ISSUE)
        conn.execute("UPDATE issue SET description = 'y'")
        conn.commit()
        one = snapshots.data_version(conn)
        assert snapshots.issue_changes(conn) == 1
        conn.execute(INSERT_ISSUE)
        conn.rollback()
        assert snapshots.data_version(conn) == one
        conn.execute("UPDATE jurisdiction SET name = name")  # a layer statement, no rows
        conn.commit()
        assert snapshots.data_version(conn) not in (start, one)
        assert snapshots.issue_changes(conn) == 1


def test_concurrent_writers_do_not_queue_on_the_counter(dsn: str) -> None:
    # A single counter row would make the second writer wait for the first one's commit.
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        first.execute(INSERT_ISSUE)  # holds its shard until it commits
        second.execute("SET lock_timeout = '1s'")
        second.execute(INSERT_ISSUE)
        second.commit()
        first.commit()
        assert snapshots.issue_changes(first) == 2


def test_current_snapshot_is_served_without_computing(dsn: str) -> None:
    counting = Counting()
    with psycopg.connect(dsn) as conn:
        served = Snapshots().get(conn, counting.spec)
        conn.commit()
        assert (served.payload, served.current, counting.calls) == ({"issues": 0}, True, 1)
        again = Snapshots().get(conn, counting.spec)
        assert (again.payload, counting.calls) == ({"issues": 0}, 1)
        assert again.computed_at == served.computed_at


def test_stale_snapshot_is_served_and_refreshed_in_the_background(dsn: str) -> None:
    counting = Counting()
    served = Snapshots(snapshots.connector(dsn), min_interval=30)
    with psycopg.connect(dsn) as conn:
        served.get(conn, counting.spec)
        conn.execute(INSERT_ISSUE)
        conn.commit()
        # Younger than min_interval: served as it is, no refresh queued yet.
        assert served.get(conn, counting.spec).current is False
        assert counting.calls == 1
        conn.execute("UPDATE analysis_snapshot SET computed_at = now() - interval '31 s'")
        conn.commit()
        stale = served.get(conn, counting.spec)
        assert (stale.payload, stale.current) == ({"issues": 0}, False)
        conn.commit()
        served.close()  # waits for the queued refresh
        fresh = served.get(conn, counting.spec)
        assert (fresh.payload, fresh.current, counting.calls) == ({"issues": 1}, True, 2)


def test_too_old_or_no_background_means_computed_now(dsn: str) -> None:
    counting = Counting()
    with psycopg.connect(dsn) as conn:
        Snapshots().get(conn, counting.spec)
        conn.execute(INSERT_ISSUE)
        conn.commit()
        # The CLI (no background refresh) always gets the current result.
        assert Snapshots().get(conn, counting.spec).payload == {"issues": 1}
        conn.execute(INSERT_ISSUE)
        conn.commit()
        strict = Snapshots(snapshots.connector(dsn), max_stale=0)
        got = strict.get(conn, counting.spec)
        strict.close()
        assert (got.payload, got.current, counting.calls) == ({"issues": 2}, True, 3)


def test_old_current_snapshot_is_recomputed_for_the_clock(dsn: str) -> None:
    counting = Counting()
    with psycopg.connect(dsn) as conn:
        Snapshots().get(conn, counting.spec)
        conn.execute("UPDATE analysis_snapshot SET computed_at = now() - interval '2 hours'")
        conn.commit()
        got = Snapshots(max_age=3600).get(conn, counting.spec)
        assert counting.calls == 2
        assert got.age < 60


def test_concurrent_requests_compute_once(dsn: str) -> None:
    counting = Counting(pause=0.5)
    got: list[Any] = []

    def ask() -> None:
        with psycopg.connect(dsn) as conn:
            got.append(Snapshots().get(conn, counting.spec).payload)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [{"issues": 0}] * 3
    assert counting.calls == 1


def test_only_the_newest_adhoc_snapshots_are_kept_and_landing_ones_always(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        snapshots.write(conn, "landing", "1.0", {"n": -1}, 0.0)
        for n in range(snapshots.KEEP + 3):
            snapshots.write(conn, snapshots.ADHOC + f"k{n}", "1.0", {"n": n}, 0.0)
            conn.commit()
        row = conn.execute("SELECT count(*) FILTER (WHERE key LIKE 'adhoc:%%'),"
                           " count(*) FILTER (WHERE key = 'adhoc:k0')"
                           " FROM analysis_snapshot").fetchone()
        assert row == (snapshots.KEEP, 0)
        assert snapshots.read(conn, f"adhoc:k{snapshots.KEEP + 2}") is not None
        assert snapshots.read(conn, "landing") is not None


def test_refresher_keeps_landing_snapshots_current(dsn: str) -> None:
    one, two = Counting("test:one"), Counting("test:two")
    connect = snapshots.connector(dsn)

    def specs(_: psycopg.Connection[Any]) -> Iterator[Spec]:
        yield one.spec
        yield two.spec

    refresher = Refresher(connect, specs, interval=0)
    assert refresher.run_once() == 2
    assert refresher.run_once() == 0  # the data did not change
    with psycopg.connect(dsn) as conn:
        conn.execute(INSERT_ISSUE)
        conn.commit()
    # Refreshed less than an interval ago (as by another worker): not yet due.
    assert Refresher(connect, specs, interval=60).run_once() == 0
    assert refresher.run_once() == 2
    assert (one.calls, two.calls) == (2, 2)
    with psycopg.connect(dsn) as conn:
        found = snapshots.read(conn, "test:two")
        assert found is not None and found.payload == {"issues": 1}


def test_who_waited_for_a_computation_takes_its_result(dsn: str) -> None:
    # Reports keep moving the version: a request that waited for another's computation
    # must not compute again (each waiter would queue behind the one before).
    counting = Counting()
    lock = ("SELECT pg_advisory_xact_lock(hashtext('analysis_snapshot'), hashtext(%s))")
    got: list[Any] = []

    def ask() -> None:
        with psycopg.connect(dsn) as conn:
            got.append(Snapshots().get(conn, counting.spec))

    with psycopg.connect(dsn) as holder:
        holder.execute(lock, [counting.spec.key])
        waiter = threading.Thread(target=ask)
        waiter.start()
        time.sleep(0.5)  # the waiter is blocked on the lock
        snapshots.write(holder, counting.spec.key, snapshots.data_version(holder),
                        {"issues": -1}, 0.0)
        holder.execute(INSERT_ISSUE)
        holder.commit()  # publishes the snapshot and the change, frees the lock
        waiter.join()
    assert counting.calls == 0
    assert got[0].payload == {"issues": -1} and got[0].current is False
