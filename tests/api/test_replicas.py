"""Read replicas on a real hot standby of the test cluster, made by layers/db/standby.py.

One standby per module streams from the session's cluster (every test database is on it).
The standby's replay is paused (``pg_wal_replay_pause()``) where a test needs a replica that
is behind; :func:`resumed` restores it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.app import create_app
from api.deps import Conn
from layers.analysis import snapshots
from layers.auth import tokens
from layers.db import database, replicas, standby
from layers.db.cluster import Cluster
from layers.db.replicas import ReplicaSet
from layers.db.settings import Settings
from tests import two_streets
from tests.api.test_access_table import RECIPES, World
from tests.api.test_access_table import world as world  # the fixture, reused
from tests.conftest import bearer, child_env

INSIDE = (120.7002, 31.3105)
CATCH_UP_SECONDS = 60.0


@pytest.fixture(scope="module")
def replica_node(cluster: Cluster) -> Iterator[standby.Standby]:
    """A running hot standby of the session's cluster."""
    root = Path(tempfile.mkdtemp(prefix="sw-standby-"))
    root.chmod(0o755)
    node = standby.of(cluster, root / "replica")
    node.start()
    try:
        yield node
    finally:
        node.destroy()
        shutil.rmtree(root, ignore_errors=True)


def dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def catch_up(primary_dsn: str, node: standby.Standby) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_dsn, autocommit=True) as primary:
        target = replicas.position(primary)
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        assert replicas.wait_replayed(conn, target, CATCH_UP_SECONDS), "standby never caught up"


def usable_soon(primary_dsn: str, node: standby.Standby, client: TestClient) -> None:
    """Catch up and check until the app calls the replica usable with no lag at all (the
    server's own background writes may land between a catch-up and the check)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while time.monotonic() < deadline:
        catch_up(primary_dsn, node)
        [state] = replica_set(client).check_now()
        if state.usable and state.lag_seconds == 0.0:
            return
    raise AssertionError(f"the replica never caught up: {state}")


@contextlib.contextmanager
def paused(node: standby.Standby) -> Iterator[None]:
    """The standby's replay paused (what it received waits), resumed afterwards."""
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def replica_app(dsn: str, node: standby.Standby, tmp_path: Path, **options: Any) -> FastAPI:
    settings = Settings(database_url=dsn, data_dir=tmp_path,
                        replica_url=node.conninfo(dbname(dsn)),
                        **{"replica_max_lag": 3600.0, "replica_wait": 5.0,
                           "anonymous_rate": "100000/minute", **options})
    return create_app(settings)


def replica_set(client: TestClient) -> ReplicaSet:
    assert isinstance(client.app, FastAPI)
    found: ReplicaSet = client.app.state.replicas
    return found


def served(client: TestClient) -> int:
    return sum(r.served for r in replica_set(client).replicas)


def checked(client: TestClient) -> None:
    """Make the app's view of its replicas current now (its thread does so every few s)."""
    replica_set(client).check_now()


def new_issue(client: TestClient, headers: dict[str, str], text: str) -> str:
    created = client.post("/api/v1/issues", headers=headers, json={
        "category": "CTY-05", "lon": INSIDE[0], "lat": INSIDE[1], "description": text})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# --- the managed standby, as a user makes it ---------------------------------------------


@pytest.fixture
def managed_root() -> Iterator[Path]:
    """A data dir for a managed cluster of the test's own (the server's user can reach it)."""
    root = Path(tempfile.mkdtemp(prefix="sw-managed-"))
    root.chmod(0o755)
    yield root / ".sitewatch"
    shutil.rmtree(root, ignore_errors=True)


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``sitewatch ARGS`` on the managed cluster under ``data`` (no DATABASE_URL)."""
    env = child_env({"SITEWATCH_DATA_DIR": str(data)},
                    without=("DATABASE_URL", "SITEWATCH_REPLICA_URL"))
    return subprocess.run([sys.executable, "-m", "api.cli.main", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)


@pytest.mark.slow  # initdb, a base backup and four server starts
def test_db_replica_start_status_stop_and_restart(managed_root: Path) -> None:
    assert cli(managed_root, "db", "start").returncode == 0
    settings = Settings(data_dir=managed_root, database_url=None)
    primary, node = database.managed_cluster(settings), database.managed_standby(settings)
    try:
        absent = cli(managed_root, "db", "replica", "status")
        assert absent.returncode == 3 and "absent" in absent.stdout
        started = cli(managed_root, "db", "replica", "start")
        assert started.returncode == 0, started.stderr
        again = cli(managed_root, "db", "replica", "start")  # idempotent
        assert again.returncode == 0, again.stderr
        status = cli(managed_root, "db", "replica", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running" in status.stdout and ": usable; replayed " in status.stdout
        assert " bytes" in status.stdout
        # The app reads from it without SITEWATCH_REPLICA_URL.
        assert database.replica_conninfos(settings)[0].startswith(
            database.with_timezone(node.conninfo(), settings.timezone)[:20])
        with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('before stop')")
        catch_up(primary.conninfo(), node)
        assert cli(managed_root, "db", "replica", "stop").returncode == 0
        stopped = cli(managed_root, "db", "replica", "status")
        assert stopped.returncode == 3 and "stopped" in stopped.stdout
        assert "not usable (down)" in stopped.stdout
        with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
            conn.execute("INSERT INTO kept VALUES ('while stopped')")
        assert cli(managed_root, "db", "replica", "start").returncode == 0
        catch_up(primary.conninfo(), node)
        with psycopg.connect(node.conninfo(), autocommit=True) as conn:
            rows = conn.execute("SELECT v FROM kept ORDER BY v").fetchall()
        assert rows == [("before stop",), ("while stopped",)]
    finally:
        node.destroy()
        primary.destroy()


@pytest.mark.slow  # a child process
def test_db_replica_without_a_managed_cluster_says_so(tmp_path: Path, sitewatch: Callable[
        [list[str], str, Path], Any]) -> None:
    done = sitewatch(["db", "replica", "start"], "postgresql:///nowhere", tmp_path)
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr and "SITEWATCH_REPLICA_URL" in done.stderr


# --- routing -------------------------------------------------------------------------------


def test_reads_go_to_the_replica_and_writes_to_the_primary(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    admin = bearer(dsn, "admin")
    with TestClient(replica_app(dsn, replica_node, tmp_path)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        before = served(client)
        assert client.get("/api/v1/categories", headers=admin).status_code == 200
        assert served(client) == before + 1
        new_issue(client, admin, "写入走主库")
        assert served(client) == before + 1  # the POST did not take a replica


def test_a_read_right_after_a_write_sees_it(dsn: str, replica_node: standby.Standby,
                                            tmp_path: Path) -> None:
    admin, other = bearer(dsn, "admin"), bearer(dsn, "viewer")
    with TestClient(replica_app(dsn, replica_node, tmp_path, replica_wait=0.2)) as client, \
            TestClient(replica_app(dsn, replica_node, tmp_path, replica_wait=0.2)) as second:
        catch_up(dsn, replica_node)
        checked(client)
        checked(second)
        with paused(replica_node):
            created = client.post("/api/v1/issues", headers=admin, json={
                "category": "CTY-05", "lon": INSIDE[0], "lat": INSIDE[1],
                "description": "刚写入"})
            assert created.status_code == 201
            public_id = created.json()["id"]
            lsn = created.headers["X-Sitewatch-LSN"]
            assert replicas.parse_lsn(lsn) is not None
            assert "sitewatch_lsn=" in created.headers["set-cookie"]
            # The writer reads its write: the replica has not replayed it, the primary answers.
            assert client.get(f"/api/v1/issues/{public_id}", headers=admin).status_code == 200
            # Another web process knows the writer by the position it sends back.
            seen = second.get(f"/api/v1/issues/{public_id}",
                              headers={**admin, "X-Sitewatch-LSN": lsn})
            assert seen.status_code == 200
            # Someone else, with nothing to wait for, reads the paused replica: not there yet.
            assert second.get(f"/api/v1/issues/{public_id}", headers=other).status_code == 404
    # Replaying again, a read after a write waits for it on the replica, which answers (given
    # time enough on this busy machine: the test cluster commits asynchronously).
    with TestClient(replica_app(dsn, replica_node, tmp_path,
                                replica_wait=CATCH_UP_SECONDS)) as client:
        checked(client)
        public_id = new_issue(client, admin, "重放后写入")
        before = served(client)
        assert client.get(f"/api/v1/issues/{public_id}", headers=admin).status_code == 200
        assert served(client) == before + 1


def test_a_lagging_replica_is_skipped(dsn: str, replica_node: standby.Standby,
                                      tmp_path: Path) -> None:
    admin, viewer = bearer(dsn, "admin"), bearer(dsn, "viewer")
    with TestClient(replica_app(dsn, replica_node, tmp_path, replica_max_lag=0.0)) as client:
        usable_soon(dsn, replica_node, client)
        with paused(replica_node):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO unit (code, name, kind) VALUES"
                             " ('LAG1', '滞后测试单位', 'functional')")
            [state] = replica_set(client).check_now()
            assert not state.usable and state.reason == "lagging"
            assert state.lag_bytes is not None and state.lag_bytes > 0
            before = served(client)
            unit = client.get("/api/v1/units/LAG1", headers=viewer)
            assert unit.status_code == 200  # the primary answered, with the new row
            assert served(client) == before
        usable_soon(dsn, replica_node, client)
        assert client.get("/api/v1/units/LAG1", headers=admin).status_code == 200


def test_reads_succeed_from_the_primary_with_the_replica_stopped(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    viewer = bearer(dsn, "viewer")
    with TestClient(replica_app(dsn, replica_node, tmp_path)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        replica_node.stop()
        try:
            # Before the next check the app still thinks it usable: the read must not fail.
            for path in ("/api/v1/categories", "/api/v1/units", "/open311/v2/services.json",
                         "/ogc/collections", "/maps/overview"):
                assert client.get(path, headers=viewer).status_code == 200, path
            [state] = replica_set(client).check_now()
            assert not state.usable and state.reason == "down"
            assert client.get("/api/v1/issues", headers=viewer).status_code == 200
            health = client.get("/health").json()
            assert health["status"] == "ok"
            assert health["replicas"][0]["usable"] is False
        finally:
            replica_node.start()


def test_a_write_through_the_replica_path_is_refused(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    app = replica_app(dsn, replica_node, tmp_path)

    @app.get("/test/writes-on-read")
    def writes_on_read(conn: Conn) -> dict[str, str]:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('RO1', '不该写入', "
                     "'functional')")
        return {"wrote": "yes"}

    with TestClient(app) as client:
        catch_up(dsn, replica_node)
        checked(client)
        refused = client.get("/test/writes-on-read")
        assert refused.status_code == 500
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "write-on-replica"
        # Straight on a replica connection, and on a DSN naming a primary by mistake.
        held = replica_set(client).acquire(None, 0.0)
        assert held is not None
        stack, conn = held
        with stack, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO unit (code, name, kind) VALUES ('RO2', 'x', 'functional')")
    with psycopg.connect(replicas.read_only(dsn)) as wrong, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        wrong.execute("INSERT INTO unit (code, name, kind) VALUES ('RO3', 'x', 'functional')")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM unit WHERE code LIKE 'RO%'").fetchone()
    assert row == (0,)


def test_token_use_is_recorded_on_the_primary_for_replica_reads(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    viewer = bearer(dsn, "viewer")
    with TestClient(replica_app(dsn, replica_node, tmp_path)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        before = served(client)
        assert client.get("/api/v1/units", headers=viewer).status_code == 200
        assert client.get("/api/v1/units", headers=viewer).status_code == 200
        assert served(client) == before + 2
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM api_token WHERE last_used_at IS NOT NULL"
                           " AND name = 'test viewer'").fetchone()
    assert row == (1,)


def test_health_reports_replicas_without_secrets(dsn: str, replica_node: standby.Standby,
                                                 tmp_path: Path) -> None:
    with_password = make_conninfo(replica_node.conninfo(dbname(dsn)), password="s3cret-pw")
    settings = Settings(database_url=dsn, data_dir=tmp_path, replica_url=with_password)
    with TestClient(create_app(settings)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        answer = client.get("/health")
    assert answer.status_code == 200
    assert "s3cret" not in answer.text
    [replica] = answer.json()["replicas"]
    assert replica["usable"] is True and replica["lag_seconds"] is not None
    assert replica["name"].endswith(f"/{dbname(dsn)}")


def test_a_map_snapshot_missing_on_the_replica_is_stored_on_the_primary(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    with TestClient(replica_app(dsn, replica_node, tmp_path)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        before = served(client)
        assert client.get("/maps/overview").status_code == 200
        assert served(client) == before + 1
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM analysis_snapshot").fetchone()
    assert row is not None and row[0] >= 1


def count_issues(conn: psycopg.Connection[Any]) -> int:
    """An analysis as small as can be: the issues its session sees."""
    row = conn.execute("SELECT count(*) FROM issue").fetchone()
    assert row is not None
    return int(row[0])


def test_the_workers_analyses_read_the_replica_and_store_on_the_primary(
        dsn: str, replica_node: standby.Standby) -> None:
    spec = snapshots.Spec("test:issues", count_issues)
    catch_up(dsn, replica_node)
    source = replicas.read_connector(dsn, [replica_node.conninfo(dbname(dsn))], 3600.0)
    with paused(replica_node):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("""INSERT INTO issue (category_code, geom, description, source)
                            VALUES ('CTY-05', ST_SetSRID(ST_MakePoint(%s, %s), 4326),
                                    '仅主库可见', 'self_inspection')""", INSIDE)
        refresher = snapshots.Refresher(snapshots.connector(dsn), lambda c: [spec],
                                        interval=0.0, source=source)
        assert refresher.run_once() == 1
    with psycopg.connect(dsn) as conn:
        stored = snapshots.read(conn, spec.key)
        on_primary = conn.execute("SELECT count(*) FROM issue").fetchone()
    assert stored is not None and on_primary is not None
    assert stored.payload == on_primary[0] - 1  # computed on the paused replica


# --- every read route of docs/access.md: the replica answers as the primary does ----------

# Parts of an answer that differ between two requests whatever serves them: when a page or
# workbook was made, cache validators.
VOLATILE_HEADERS = {"date", "etag", "last-modified", "content-length", "set-cookie",
                    "x-sitewatch-lsn"}


def test_every_read_route_answers_as_the_primary_does(
        world: tuple[TestClient, World], replica_node: standby.Standby, tmp_path: Path) -> None:
    primary, w = world
    dsn = str(w.conn.info.dsn)
    reads = [label for label in RECIPES if label.startswith("GET ")]
    assert len(reads) > 50
    different, unserved = [], set()
    with TestClient(replica_app(dsn, replica_node, tmp_path,
                                keep_original_photos=True)) as client:
        for label in reads:
            for who in ("admin", "anonymous", "unit: own"):
                method, url, kwargs = RECIPES[label](w, who)
                catch_up(dsn, replica_node)
                checked(client)
                before = served(client)
                mine = primary.request(method, url, headers=w.headers[who], **kwargs)
                theirs = client.request(method, url, headers=w.headers[who], **kwargs)
                if served(client) == before:
                    unserved.add(label)
                if (mine.status_code, normalised(mine)) != (theirs.status_code,
                                                           normalised(theirs)):
                    different.append(f"{label} as {who}: {mine.status_code} "
                                     f"{mine.text[:300]} != {theirs.status_code} "
                                     f"{theirs.text[:300]}")
    assert different == []
    # What the replica did not answer touches no database (or is the probe, on the primary).
    assert unserved == NO_DATABASE


def normalised(response: Any) -> Any:
    """The body to compare, without what differs between any two requests: the times a
    document says it was made (OGC timeStamp, periods ending now, a workbook's properties),
    the element ids folium
    draws at random, and /health's replicas (the primary-only app has none)."""
    kind = response.headers.get("content-type", "")
    if "spreadsheetml" in kind:  # a workbook records when it was written: compare its cells
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book}
    if not any(t in kind for t in ("json", "html", "xml", "text", "javascript")):
        return response.content
    text = _NOW.sub("<time>", _FOLIUM_ID.sub("_<id>", response.text))
    if "json" in kind:
        body = json.loads(text)
        if isinstance(body, dict):
            body.pop("replicas", None)
        return body
    return text


_FOLIUM_ID = re.compile(r"_[0-9a-f]{32}")
_NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+([+-]\d\d:\d\d|Z)?")
# Read routes that never take a connection (static shells, fixed documents) and /health,
# which asks the primary.
NO_DATABASE = {"GET /health", "GET /report", "GET /report.webmanifest", "GET /field-sw.js",
               "GET /units/{unit}/work", "GET /units/{unit}/work.webmanifest",
               "GET /open311/v2/discovery.{fmt}", "GET /ogc/", "GET /ogc/conformance"}


def test_a_street_scoped_read_on_the_replica_leaves_its_connection_to_the_district(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        district = two_streets.build(conn)
        bravo = tokens.create(conn, role="viewer", name="乙街道", street_code=district.b.code)
    whole = bearer(dsn, "viewer")
    # One connection per pool: the district's read reuses the street's replica connection.
    with TestClient(replica_app(dsn, replica_node, tmp_path, pool_min_size=1,
                                pool_max_size=1)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        before = served(client)
        street = client.get("/api/v1/issues", headers={"Authorization": f"Bearer {bravo}"})
        everything = client.get("/api/v1/issues", headers=whole)
        assert served(client) == before + 2
    assert {f["id"] for f in street.json()["features"]} == set(district.b.issues)
    assert len(everything.json()["features"]) == 5


def test_a_made_up_write_position_only_sends_its_own_read_to_the_primary(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    viewer = bearer(dsn, "viewer")
    with TestClient(replica_app(dsn, replica_node, tmp_path, replica_wait=0.05)) as client:
        catch_up(dsn, replica_node)
        checked(client)
        before = served(client)
        for junk in ("not-a-position", "1/2 OR 1=1", "0/" + "F" * 40, ""):
            client.cookies.set("sitewatch_lsn", junk)
            answer = client.get("/api/v1/units", headers={**viewer, "X-Sitewatch-LSN": junk})
            assert answer.status_code == 200, junk
        assert served(client) == before + 4  # ignored: the replica answered each
        client.cookies.clear()
        ahead = client.get("/api/v1/units", headers={**viewer,
                                                     "X-Sitewatch-LSN": "FFFFFFFF/FFFFFFFF"})
        assert ahead.status_code == 200  # waited its bounded time, then the primary answered
        assert served(client) == before + 4


def test_the_rate_limits_token_check_reads_the_replica(
        dsn: str, replica_node: standby.Standby, tmp_path: Path) -> None:
    viewer = bearer(dsn, "viewer")
    # A token on a public route spends the address's anonymous quota (the route never looks
    # at it); past the quota, the guard looks the token up before letting the request on.
    with TestClient(replica_app(dsn, replica_node, tmp_path,
                                anonymous_rate="1/minute")) as client:
        catch_up(dsn, replica_node)
        checked(client)
        assert client.get("/ogc/collections", headers=viewer).status_code == 200
        before = served(client)
        assert client.get("/ogc/collections", headers=viewer).status_code == 200
        assert served(client) == before + 2  # the guard's look-up, then the route


def test_the_workers_street_analyses_read_the_replica_in_the_streets_scope(
        dsn: str, replica_node: standby.Standby) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        district = two_streets.build(conn)
        row = conn.execute("SELECT id FROM jurisdiction WHERE code = %s",
                           [district.b.code]).fetchone()
    assert row is not None
    spec = snapshots.Spec(f"street:{row[0]}:test:issues", count_issues)
    catch_up(dsn, replica_node)
    source = replicas.read_connector(dsn, [replica_node.conninfo(dbname(dsn))], 3600.0)
    refresher = snapshots.Refresher(snapshots.connector(dsn), lambda c: [spec], interval=0.0,
                                    source=source)
    assert refresher.run_once() == 1
    with psycopg.connect(dsn) as conn:
        stored = snapshots.read(conn, spec.key)
    assert stored is not None and stored.payload == len(district.b.issues)
