"""A throwaway PostGIS cluster per test session, and a fresh database per test.

The cluster is the same managed-cluster code users run (layers.db.cluster), in a temporary
folder on a port of its own. A template database is migrated once; each test gets a copy
(CREATE DATABASE ... TEMPLATE), so tests never see each other's rows. Nothing here skips:
if PostGIS cannot start, every database test errors, in CI and elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import count
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from psycopg import sql

from api.app import create_app
from layers.analysis import tallies
from layers.auth import tokens
from layers.db import migrate
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from tests import small_district

# Workers in tests (`serve` starts one) do not refresh map snapshots
# (layers.analysis.snapshots.Refresher, the worker's refresh-maps job): a round per start
# would cost seconds in every server test. The refresher's own tests set their interval.
os.environ.setdefault("SITEWATCH_SNAPSHOT_INTERVAL", "0")

TEMPLATE = "sw_template"
DEMO_TEMPLATE = "sw_demo"
# A fixed "now" keeps the demo's statuses and overdue flags the same on every run.
DEMO_NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
_serial = count()
# Markers (registered in pyproject.toml) that `make check` leaves out and `make test` runs:
# every test of these folders carries its folder's marker...
FOLDER_MARKERS = {"e2e": "browser", "reliability": "reliability"}
# ...and every test on the demo district (thousands of issues, seconds of setup and queries)
# is `slow`, as is any other test marked so where it is written.
DEMO_FIXTURES = {"demo_template", "demo_dsn", "module_demo_dsn", "demo_client",
                 "streets_template", "streets_dsn"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder (:data:`FOLDER_MARKERS`) and demo tests ``slow``."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            marker = FOLDER_MARKERS.get(item.path.relative_to(here).parts[0])
            if marker is not None:
                item.add_marker(marker)
        if DEMO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A running private PostGIS cluster, destroyed after the session."""
    root = Path(tempfile.mkdtemp(prefix="sw-test-"))
    root.chmod(0o755)  # the server may run as an unprivileged user that must reach it
    port = 55000 + os.getpid() % 5000
    # Durability is irrelevant for throwaway test data; these make the suite much faster.
    # The server's default TimeZone is the district's (Settings.timezone), as every session
    # the app opens sets it: tests that connect directly compute deadlines and show times as
    # the app does. tests/layers/test_timezone.py runs the app's paths in another zone.
    node = Cluster(root, port=port, database="postgres",
                   options=("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                            f"timezone={Settings().timezone}"),
                   bindir=Settings().pg_bindir)
    node.start()
    try:
        with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        migrate.apply(node.conninfo(TEMPLATE))
        yield node
    finally:
        node.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _clone(node: Cluster, template: str) -> str:
    # FILE_COPY: a small template copies faster as files than page by page through the WAL
    # (tests/api/test_catalog_api.py, 40 tests: 15.1 s against 15.7-16.0 s).
    name = f"t{os.getpid()}_{next(_serial)}"
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)))
    return name


def _drop(node: Cluster, name: str) -> None:
    with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture
def dsn(cluster: Cluster) -> Iterator[str]:
    """Conninfo of a fresh, migrated, empty database of this test's own."""
    name = _clone(cluster, TEMPLATE)
    yield cluster.conninfo(name)
    _drop(cluster, name)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to this test's own empty database."""
    with psycopg.connect(dsn) as connection:
        yield connection


@pytest.fixture
def demo_now() -> datetime:
    """The fixed "now" the demo template was generated for."""
    return DEMO_NOW


@pytest.fixture(scope="session")
def demo_template(cluster: Cluster) -> str:
    """A template database holding the default demo district (built once per session)."""
    from layers.io import demo

    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(DEMO_TEMPLATE), sql.Identifier(TEMPLATE)))
    with psycopg.connect(cluster.conninfo(DEMO_TEMPLATE)) as conn:
        demo.load(conn, zone=Settings().zone, now=DEMO_NOW)
    return DEMO_TEMPLATE


@pytest.fixture
def demo_dsn(cluster: Cluster, demo_template: str) -> Iterator[str]:
    """Conninfo of a fresh copy of the demo district, this test's own."""
    name = _clone(cluster, demo_template)
    yield cluster.conninfo(name)
    _drop(cluster, name)


@pytest.fixture(scope="module")
def module_demo_dsn(cluster: Cluster, demo_template: str) -> Iterator[str]:
    """A copy of the demo district shared by one test module (for long property runs)."""
    name = _clone(cluster, demo_template)
    yield cluster.conninfo(name)
    _drop(cluster, name)


# A demo district of three streets (`sitewatch demo --streets 3`), small: street rankings, the
# district map page.
STREETS_TEMPLATE = "sw_streets"
STREETS_ISSUES = 400


@pytest.fixture(scope="session")
def streets_template(cluster: Cluster) -> str:
    """A template database holding a demo district of three streets (built once)."""
    from layers.io import demo

    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(STREETS_TEMPLATE), sql.Identifier(TEMPLATE)))
    with psycopg.connect(cluster.conninfo(STREETS_TEMPLATE)) as conn:
        demo.load(conn, zone=Settings().zone, now=DEMO_NOW, streets=3,
                  n_issues=STREETS_ISSUES)
    return STREETS_TEMPLATE


@pytest.fixture(scope="module")
def streets_dsn(cluster: Cluster, streets_template: str) -> Iterator[str]:
    """A copy of the three-street demo district shared by one test module (read only)."""
    name = _clone(cluster, streets_template)
    yield cluster.conninfo(name)
    _drop(cluster, name)


# -- photos ---------------------------------------------------------------------------------


def make_jpeg(lon: float | None = None, lat: float | None = None,
         taken: datetime | None = None, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A small JPEG; with EXIF GPS (degrees/minutes/seconds) and DateTimeOriginal if given."""
    image = Image.new("RGB", (64, 48), colour)
    exif = Image.Exif()
    if lon is not None and lat is not None:
        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: _dms(abs(lat)),
                        3: "E" if lon >= 0 else "W", 4: _dms(abs(lon))}
    if taken is not None:
        exif[0x8769] = {0x9003: taken.strftime("%Y:%m:%d %H:%M:%S")}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def make_png() -> bytes:
    """A small PNG without EXIF."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return float(degrees), float(minutes), round(seconds, 4)


@pytest.fixture
def jpeg() -> Callable[..., bytes]:
    """Make a real JPEG, optionally with EXIF GPS position and time."""
    return make_jpeg


@pytest.fixture
def png() -> bytes:
    """A real PNG without EXIF."""
    return make_png()


# --- HTTP clients on the app factory, one fresh database each ------------------------------


def bearer(dsn: str, role: str, unit: str | None = None) -> dict[str, str]:
    """Headers of a new token of ``role`` (a unit token needs the unit's code or name)."""
    with psycopg.connect(dsn) as connection:
        token = tokens.create(connection, role=role, unit_code=unit, name=f"test {role}")
    return {"Authorization": f"Bearer {token}"}


def fold_tallies(dsn: str) -> None:
    """What the worker's tally job does: fold the issue changes into the tallies the maps,
    analyses and scores read (layers.analysis.tallies)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        tallies.fold(connection, Settings().zone)


def _signed_in(dsn: str, tmp_path: Path) -> TestClient:
    # Every /api/v1 route needs a token: the clients read as a viewer (a leader) unless a test
    # sends its own Authorization header (a test of anonymous access sends an empty one).
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path)),
                      headers=bearer(dsn, "viewer"))


@pytest.fixture
def client(dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own empty, migrated database (files under tmp_path)."""
    with _signed_in(dsn, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own copy of the demo district (files under tmp_path)."""
    with _signed_in(demo_dsn, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def anonymous() -> dict[str, str]:
    """Headers that override the clients' default token: a request without credentials."""
    return {"Authorization": ""}


@pytest.fixture
def bearer_for() -> Callable[..., dict[str, str]]:
    """``bearer_for(dsn, role, unit=None)``: headers of a new token of that role."""
    return bearer


@pytest.fixture
def admin(dsn: str) -> dict[str, str]:
    """Headers of a new admin token on this test's database."""
    return bearer(dsn, "admin")


@pytest.fixture
def district(dsn: str) -> small_district.District:
    """The small two-community district of tests/small_district.py on this test's database."""
    with psycopg.connect(dsn) as conn:
        return small_district.build(conn)



# --- real server processes ---------------------------------------------------------------


def child_env(env: dict[str, str], *, without: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without ``without`` and with ``env`` on top, for a child
    process."""
    return {**{k: v for k, v in os.environ.items() if k not in without}, **env}


def _sitewatch(args: list[str], dsn: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``sitewatch ARGS`` on ``dsn`` with its data under ``data_dir``; its output as text
    (not checked: a test reads the exit code and output it expects)."""
    return subprocess.run([sys.executable, "-m", "api.cli.main", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=child_env(
                              {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(data_dir)}))


@pytest.fixture(scope="session")
def sitewatch() -> Callable[[list[str], str, Path], subprocess.CompletedProcess[str]]:
    """``sitewatch(args, dsn, data_dir)``: the command line as a user runs it."""
    return _sitewatch


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], folder: Path, *, ca: Path | None = None
             ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m <args> --port P`` on a free port of 127.0.0.1 (uvicorn, or ``api.cli.main
    serve``) with ``env`` added; its base URL and process once /health answers. Its output
    goes to ``folder/server.log``. With ``ca`` the server speaks HTTPS: the base URL says so
    and /health is polled trusting only that authority's PEM file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", *args, "--port", str(port)],
                                env=child_env(env), stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
        verify = ssl.create_default_context(cafile=ca) if ca else True
        try:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/health", timeout=1, verify=verify).status_code == 200:
                        break
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("server did not start: " + log_path.read_text())
            if proc.poll() is not None:
                raise RuntimeError("server exited: " + log_path.read_text())
            yield base, proc
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def serving() -> Callable[..., contextlib.AbstractContextManager[
        tuple[str, subprocess.Popen[bytes]]]]:
    """``serving(args, env, folder)``: a real server process (see :func:`_serving`)."""
    return _serving
