"""Real uvicorn and real headless Chromium for the browser tests, with no internet.

Screenshots and PDFs go to ``test-artifacts/`` at the project root (or the folder named by
``SITEWATCH_TEST_ARTIFACTS``), kept after the run for a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = os.environ.get("SITEWATCH_CHROMIUM", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the background-networking flags stop it calling home
# (this machine's network is closed, and a test must not depend on it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


# The process id of each running server by its base URL, for tests that measure the server
# process itself (its memory).
SERVER_PIDS: dict[str, int] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(dsn: str, folder: Path, **env: str) -> Iterator[str]:
    """A real uvicorn serving the app on ``dsn`` (data dir and log under ``folder``), with
    the map snapshot refresher on, as in production."""
    port = _free_port()
    environment = {**os.environ, "DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder),
                   "SITEWATCH_SNAPSHOT_INTERVAL": "10", **env}
    log_path = folder / "uvicorn.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start: " + log_path.read_text())
        SERVER_PIDS[base] = proc.pid
        yield base
    finally:
        SERVER_PIDS.pop(base, None)
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def server_pid() -> Callable[[str], int]:
    """``server_pid(base)``: the process id of the server at ``base``."""
    return SERVER_PIDS.__getitem__


@pytest.fixture
def server(demo_dsn: str, tmp_path: Path) -> Iterator[str]:
    """The app on this test's own copy of the demo district."""
    with serve(demo_dsn, tmp_path) as base:
        yield base


@pytest.fixture(scope="module")
def module_server(module_demo_dsn: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[str, str]]:
    """One server (and its demo copy) for a whole module; anonymous rate limit lifted, as a
    property-based run sends thousands of requests from one address."""
    with serve(module_demo_dsn, tmp_path_factory.mktemp("server"),
               SITEWATCH_ANONYMOUS_RATE="1000000/minute") as base:
        yield base, module_demo_dsn


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's folder for screenshots a person may want to see."""
    root = Path(os.environ.get("SITEWATCH_TEST_ARTIFACTS")
                or Path(__file__).resolve().parents[2] / "test-artifacts")
    folder = root / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
