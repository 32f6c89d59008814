"""PostgreSQL stopped and started under load: the API says 503 (problem+json, promptly)
while the database is away and recovers by itself within 5 s of its return.

The test stops a cluster of its own: stopping the session's shared cluster would fail every
other test running against it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers.db import migrate
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.io import demo

# Longer than the pool's first reconnection delays (1 s, 2 s, 4 s, ...): recovery must not
# wait for an exponential backoff that has grown as long as the outage.
DOWN_SECONDS = 8.0
RECOVERY_SECONDS = 5.0
# A request must be answered, not left hanging: the pool waits 5 s for a connection.
PROMPT_SECONDS = 8.0


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A private cluster holding the demo district, for this test alone to stop and start."""
    root = Path(tempfile.mkdtemp(prefix="sw-restart-"))
    root.chmod(0o755)
    node = Cluster(root, port=50000 + os.getpid() % 5000, database="sitewatch",
                   options=("fsync=off", "synchronous_commit=off", "full_page_writes=off"),
                   bindir=Settings().pg_bindir)
    node.start()
    try:
        migrate.apply(node.conninfo())
        with psycopg.connect(node.conninfo()) as conn:
            demo.load(conn, zone=Settings().zone)
        yield node
    finally:
        node.destroy()
        shutil.rmtree(root, ignore_errors=True)


def test_database_restart_under_load_gives_503_then_recovers_without_restarting_the_api(
        own_cluster: Cluster, make_server: Callable[..., Any], load_on: Callable[..., Any],
        stored: Callable[..., Any], assert_complete: Callable[..., Any]) -> None:
    dsn = own_cluster.conninfo()
    server = make_server(dsn)
    server.start()
    load = load_on(dsn, server.base, tag="restart")
    time.sleep(3)
    down = time.monotonic()
    own_cluster.stop()
    time.sleep(DOWN_SECONDS)
    own_cluster.start()
    up = time.monotonic()
    time.sleep(RECOVERY_SECONDS + 5)
    load.stop()

    answers = load.answers
    assert not load.server_errors(), load.server_errors()[:5]
    assert not [a for a in answers if a.status == 0], "a request got no answer (hung?)"
    outage = [a for a in answers if down + 0.5 < a.sent and a.done < up]
    assert outage and all(a.status == 503 for a in outage), outage[:5]
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, "the outage was not noticed"
    assert all(a.content_type.startswith("application/problem+json")
               and a.code == "database-unavailable" for a in unavailable)
    assert max(a.done - a.sent for a in answers) < PROMPT_SECONDS
    late = [a for a in answers if a.sent > up + RECOVERY_SECONDS]
    assert late and all(a.status != 503 for a in late), (
        f"still 503 {max(a.sent for a in late if a.status == 503) - up:.1f} s after the "
        "database came back")
    # Retried with the same Idempotency-Key: every acknowledged issue once, each whole.
    issues = stored(dsn, load.tag)
    assert {k: issues[k]["id"] for k in load.created} == load.created
    assert set(issues) <= load.attempted
    for issue in issues.values():
        assert_complete(issue)
