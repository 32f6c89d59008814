"""Real uvicorn and real headless Chromium for the browser tests, with no internet.

Screenshots and PDFs go to ``test-artifacts/`` at the project root (or the folder named by
``SITEWATCH_TEST_ARTIFACTS``), kept after the run for a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

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


# uvicorn as in production (the web alone: pages compute a missing snapshot within the gate).
UVICORN = ["uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"]
Serving = Callable[..., contextlib.AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]]


@contextlib.contextmanager
def serve(serving: Serving, dsn: str, folder: Path, **env: str) -> Iterator[str]:
    """A real uvicorn serving the app on ``dsn`` (data dir and log under ``folder``)."""
    with serving(UVICORN, {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder), **env},
                 folder) as (base, proc):
        SERVER_PIDS[base] = proc.pid
        try:
            yield base
        finally:
            SERVER_PIDS.pop(base, None)


@pytest.fixture
def server_pid() -> Callable[[str], int]:
    """``server_pid(base)``: the process id of the server at ``base``."""
    return SERVER_PIDS.__getitem__


@pytest.fixture
def server(serving: Serving, demo_dsn: str, tmp_path: Path) -> Iterator[str]:
    """The app on this test's own copy of the demo district."""
    with serve(serving, demo_dsn, tmp_path) as base:
        yield base


@pytest.fixture(scope="module")
def module_server(serving: Serving, module_demo_dsn: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One server (and its demo copy) for a whole module; anonymous rate limit lifted, as a
    property-based run sends thousands of requests from one address."""
    with serve(serving, module_demo_dsn, tmp_path_factory.mktemp("server"),
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
    folder = root / str(request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
