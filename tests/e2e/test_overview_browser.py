"""The map pages in a real headless Chromium, served by a real uvicorn, with no internet.

Basemap tiles are the only requests that leave the server; they are blocked here, and the
pages must work without them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from playwright.sync_api import Browser, Dialog, Page

CHINESE = re.compile(r"[\u4e00-\u9fff]")
EVIL_NAME = '<img src=x onerror="window.pwned=1;alert(1)">'
# The first vertex of the first community polygon as drawn now.
FIRST_VERTEX = """() => { let p; window[SW.control + '_layers'].overlays['社区']
    .eachLayer(function walk(l) { if (l.eachLayer) l.eachLayer(walk);
        else if (!p && l.getLatLngs) { p = l.getLatLngs(); while (Array.isArray(p)) p = p[0]; }
    }); return {lat: p.lat, lng: p.lng}; }"""
EVIL_TEXT = '<script>window.pwned=2</script><img src=x onerror="window.pwned=3">'


class Visit:
    """A page opened offline, with its errors and dialogs recorded."""

    def __init__(self, browser: Browser, base: str, path: str, width: int = 1280,
                 height: int = 800) -> None:
        self.page: Page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # Console errors from our own server's resources count; blocked basemap tiles don't.
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     and m.location.get("url", base).startswith(base) else None)
        self.page.on("dialog", self._dismiss)
        self.page.route("**/*", lambda route: route.continue_()
                        if route.request.url.startswith((base, "data:")) else route.abort())
        self.page.goto(f"{base}{path}", wait_until="load")
        self.page.wait_for_function("window.swReadyDone === true")

    def _dismiss(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def js(self, script: str) -> Any:
        return self.page.evaluate(script)

    def overlays(self) -> list[str]:
        return list(self.js("Object.keys(window[SW.control + '_layers'].overlays)"))


def _one_row(dsn: str, query: LiteralString) -> tuple[Any, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row


def _count_paths(visit: Visit, group_var: str) -> int:
    return int(visit.js(f"""() => {{ let n = 0;
        window[{group_var!r}].eachLayer(function walk(l) {{
            if (l.eachLayer) l.eachLayer(walk); else n++; }}); return n; }}"""))


def test_overview_layers_cells_tiles_and_community_popup(module_server: tuple[str, str],
                                                         browser: Browser,
                                                         artifacts: Path) -> None:
    base, dsn = module_server
    visit = Visit(browser, base, "/maps/overview")
    overlays = visit.overlays()
    for name in ("社区", "街道", "网格", "农贸市场", "建筑工地", "老旧小区", "问题（单个）",
                 "问题密度（H3 蜂窝）", "问题热力", "社区专题: 失分"):
        assert name in overlays, name
    # The cells drawn are the server's cells of the resolution the zoom asks for.
    res = visit.js("window.swCellRes")
    drawn = _count_paths(visit, visit.js("SW.cells.group"))
    assert drawn == visit.js(f"SW.counts[{res!r}]") > 10
    name, unit, lat, lon, n_issues = _one_row(
        dsn, "SELECT j.name, u.name, ST_Y(ST_PointOnSurface(j.geom)),"
             " ST_X(ST_PointOnSurface(j.geom)), (SELECT count(*) FROM issue)"
             " FROM jurisdiction j JOIN unit u ON u.id = j.unit_id"
             " WHERE j.level = 'community' ORDER BY j.code LIMIT 1")
    # Zoomed in, single issues arrive as vector tiles.
    visit.js(f"new Promise(r => {{ swMap.once('zoomend', () => r(true));"
             f" swMap.setView([{lat}, {lon}], 16, {{animate: false}}); }})")
    visit.page.wait_for_function("""() => { const t = window[SW.tiles]._vectorTiles;
        return Object.values(t).some(v => Object.keys(v._features).length > 0); }""")
    # Click the community (cells and sites hidden so the click reaches it).
    for label in ("问题密度（H3 蜂窝）", "问题（单个）", "农贸市场", "建筑工地", "老旧小区"):
        visit.page.get_by_label(label, exact=True).uncheck()
    point = visit.js(f"swMap.latLngToContainerPoint([{lat}, {lon}])")
    box = visit.page.locator(f"#{visit.js('SW.map')}").bounding_box()
    assert box is not None
    visit.page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = visit.page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    visit.page.screenshot(path=str(artifacts / "overview.png"))
    assert name in text and unit in text
    assert visit.errors == [] and n_issues > 1000


def test_overview_in_english_has_no_chinese_in_its_legend(module_server: tuple[str, str],
                                                          browser: Browser,
                                                          artifacts: Path) -> None:
    visit = Visit(browser, module_server[0], "/maps/overview?lang=en&phase=consolidation:2026")
    legend = visit.page.locator("#sw-legend").inner_text()
    visit.page.screenshot(path=str(artifacts / "overview-en.png"))
    assert "Legend" in legend and not CHINESE.search(legend)
    assert "Issue density (H3 cells)" in visit.overlays()
    assert "Consolidation" in visit.page.locator("#sw-head").inner_text() or \
        "2026" in visit.page.locator("#sw-head").inner_text()
    assert visit.errors == []


def test_gcj02_basemap_shifts_overlays_by_the_published_offset(
        module_server: tuple[str, str], browser: Browser) -> None:
    visit = Visit(browser, module_server[0], "/maps/overview")
    before = visit.js(FIRST_VERTEX)
    visit.page.get_by_label("高德地图（GCJ-02）").check()
    after = visit.js(FIRST_VERTEX)
    from geo.crs import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(before["lng"], before["lat"])
    assert abs(after["lng"] - float(glon)) < 1e-6 and abs(after["lat"] - float(glat)) < 1e-6
    visit.page.get_by_label("OpenStreetMap").check()
    back = visit.js(FIRST_VERTEX)
    assert back == before and visit.errors == []


def test_hotspot_and_unit_maps(module_server: tuple[str, str], browser: Browser,
                               artifacts: Path) -> None:
    base, dsn = module_server
    visit = Visit(browser, base, "/maps/hotspots?lang=en")
    assert visit.overlays() == ["Gi* hotspot cells", "Emerging hotspot categories", "Street",
                                "Communities", "Grids", "Hotspot areas", "Chronic sites"]
    legend = visit.page.locator("#sw-legend").inner_text()
    assert "Hot spot 99%" in legend and "Persistent" in legend and not CHINESE.search(legend)
    _labels_shown(visit, dsn)
    visit.page.screenshot(path=str(artifacts / "hotspots.png"))
    assert visit.errors == []
    phase = Visit(browser, base, "/maps/hotspots?phase=attack:2026")
    assert phase.page.locator("#sw-subtitle").inner_text().startswith("时段: 2026 重点攻坚")
    _labels_shown(phase, dsn)
    phase.page.screenshot(path=str(artifacts / "hotspots-attack.png"))
    assert phase.errors == []
    unit, open_issues = _one_row(
        dsn, "SELECT u.code, count(*) FROM issue i JOIN unit u ON u.id IN"
             " (i.lead_unit_id, i.territorial_unit_id, i.functional_unit_id)"
             " WHERE i.status IN ('reported', 'assigned', 'rectified')"
             " GROUP BY u.code ORDER BY count(*) DESC LIMIT 1")
    phone = Visit(browser, base, f"/maps/units/{unit}", width=360, height=740)
    markers = phone.js("""() => { let n = 0; swMap.eachLayer(l => {
        if (l instanceof L.CircleMarker) n++; }); return n; }""")
    phone.page.screenshot(path=str(artifacts / "unit-phone.png"))
    assert markers == open_issues
    assert "粘贴本单位令牌" in phone.page.locator("#sw-orders").inner_text()
    assert phone.errors == []


def _labels_shown(visit: Visit, dsn: str) -> None:
    """Every community's name and the street's are on the map as permanent labels, drawn
    inside the map's box (not only in popups)."""
    with psycopg.connect(dsn) as conn:
        names = {level: sorted(n for (n,) in conn.execute(
            "SELECT name FROM jurisdiction WHERE level = %s", [level]).fetchall())
            for level in ("community", "street")}
    box = visit.page.locator(f"#{visit.js('SW.map')}").bounding_box()
    assert box is not None
    for level, expected in names.items():
        shown = visit.page.locator(f".sw-label-{level}")
        assert sorted(shown.all_inner_texts()) == expected and expected, level
        for i in range(shown.count()):
            label = shown.nth(i)
            assert label.is_visible()
            at = label.bounding_box()
            assert at is not None and at["width"] > 0
            assert box["x"] <= at["x"] + at["width"] / 2 <= box["x"] + box["width"]
            assert box["y"] <= at["y"] + at["height"] / 2 <= box["y"] + box["height"]


def test_user_input_never_executes(module_server: tuple[str, str], browser: Browser,
                                   artifacts: Path) -> None:
    base, dsn = module_server
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE site SET name = %s WHERE code = (SELECT min(code) FROM site)",
                     [EVIL_NAME])
        conn.execute("UPDATE issue SET description = %s WHERE id IN (SELECT id FROM issue"
                     " ORDER BY id LIMIT 5)", [EVIL_TEXT])
        site = conn.execute("SELECT ST_Y(ST_PointOnSurface(geom)), ST_X(ST_PointOnSurface("
                            "geom)), u.code FROM site s LEFT JOIN unit u ON u.id = s.unit_id"
                            " WHERE s.name = %s", [EVIL_NAME]).fetchone()
    assert site is not None
    visit = Visit(browser, base, "/maps/overview")
    visit.js(f"void swMap.setView([{site[0]}, {site[1]}], 18, {{animate: false}})")
    # Open every popup and tooltip of the sites: the name must show as text.
    for label in ("问题密度（H3 蜂窝）", "问题（单个）"):
        visit.page.get_by_label(label, exact=True).uncheck()
    point = visit.js(f"swMap.latLngToContainerPoint([{site[0]}, {site[1]}])")
    visit.page.mouse.click(point["x"], point["y"])
    popup = visit.page.locator(".leaflet-popup-content")
    popup.wait_for()
    shown = [popup.inner_text()]
    visit.page.fill(".leaflet-control-search input", "img")
    visit.page.wait_for_timeout(300)
    visit.page.screenshot(path=str(artifacts / "escaped.png"))
    assert any(EVIL_NAME in text for text in shown), shown
    assert visit.js("window.pwned === undefined") and visit.dialogs == []
    for path in ("/maps/hotspots", f"/maps/units/{site[2]}" if site[2] else "/maps/hotspots"):
        other = Visit(browser, base, path)
        other.js("""() => { swMap.eachLayer(l => { if (l.feature && (l.getLatLng || l.getBounds))
            l.fire('click', {latlng: l.getLatLng ? l.getLatLng() : l.getBounds().getCenter()});
        }); return true; }""")
        assert other.js("window.pwned === undefined") and other.dialogs == []
    assert visit.errors == []
