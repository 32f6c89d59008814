"""The overview map in a real headless Chromium, served by a real uvicorn, with no internet."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("SITEWATCH_CHROMIUM", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the background-networking flags stop it calling home
# (this machine's network is closed, and a test must not depend on it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(demo_dsn: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": demo_dsn}
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start: " + (tmp_path / "uvicorn.log").read_text())
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_overview_renders_jurisdictions_sites_and_issues(server: str, tmp_path: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Block every request that is not to our server: the map must work offline.
        page.route("**/*", lambda route: route.continue_()
                   if route.request.url.startswith(server) else route.abort())
        page.goto(f"{server}/maps/overview", wait_until="load")
        page.wait_for_selector(".leaflet-overlay-pane canvas")
        # Paths are drawn on a canvas (prefer_canvas), so count Leaflet's own layers.
        drawn = page.evaluate("""() => {
            const m = Object.values(window).find(v => v instanceof L.Map);
            const n = {markers: 0, polygons: 0};
            m.eachLayer(l => {
                if (l instanceof L.CircleMarker) n.markers++;
                else if (l instanceof L.Polygon) n.polygons++;
            });
            return n;
        }""")
        control = page.locator(".leaflet-control-layers").inner_text()
        title = page.locator("#sw-title").inner_text()
        page.screenshot(path=str(tmp_path / "overview.png"))
        browser.close()
    assert errors == []
    assert drawn["markers"] >= 1000  # the demo's issues
    assert drawn["polygons"] >= 1 + 10 + 36  # street, communities, sites (grids start hidden)
    for name in ("社区", "农贸市场", "建筑工地", "老旧小区", "问题"):
        assert name in control
    assert "文明城市创建" in title
