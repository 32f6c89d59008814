"""The overview map in a real headless Chromium, served by a real uvicorn, with no internet."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser


def test_overview_renders_jurisdictions_sites_and_issues(server: str, browser: Browser,
                                                         artifacts: Path) -> None:
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
    page.screenshot(path=str(artifacts / "overview.png"))
    assert errors == []
    assert drawn["markers"] >= 1000  # the demo's issues
    assert drawn["polygons"] >= 1 + 10 + 36  # street, communities, sites (grids start hidden)
    for name in ("社区", "农贸市场", "建筑工地", "老旧小区", "问题"):
        assert name in control
    assert "文明城市创建" in title
