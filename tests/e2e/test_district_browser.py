"""The district map in a real headless Chromium, offline: the streets' ranking layers, a
street's ranks in its popup and the link to its own overview."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import Serving, serve
from tests.e2e.test_overview_browser import CHINESE, Visit


@pytest.fixture(scope="module")
def district_server(serving: Serving, streets_dsn: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with serve(serving, streets_dsn, tmp_path_factory.mktemp("server")) as base:
        yield base, streets_dsn


def _street(dsn: str, code: str) -> tuple[str, float, float]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT name, ST_Y(ST_PointOnSurface(geom)), ST_X(ST_PointOnSurface(geom))"
            " FROM jurisdiction WHERE code = %s", [code]).fetchone()
    assert row is not None
    return str(row[0]), float(row[1]), float(row[2])


def test_a_streets_popup_ranks_it_and_links_to_its_overview(
    district_server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    base, dsn = district_server
    visit = Visit(browser, base, "/maps/district?phase=attack:2026")
    overlays = visit.overlays()
    for name in ("街道排名: 失分", "街道排名: 按期办结率", "街道排名: 返工率"):
        assert name in overlays
    shown = visit.js("""() => Object.entries(window[SW.control + '_layers'].overlays)
        .filter(([, l]) => swMap.hasLayer(l)).map(([n]) => n)""")
    assert shown == ["街道排名: 失分", "街道"]  # one measure at a time, and the names
    name, lat, lon = _street(dsn, "320571002")
    point = visit.js(f"swMap.latLngToContainerPoint([{lat}, {lon}])")
    box = visit.page.locator(f"#{visit.js('SW.map')}").bounding_box()
    assert box is not None
    visit.page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = visit.page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    visit.page.screenshot(path=str(artifacts / "district.png"))
    assert name in text and "Sub-district Office" in text and "/ 3" in text
    for label in ("失分", "按期办结率", "返工率", "排名"):
        assert label in text
    link = popup.locator("a")
    assert link.get_attribute("href") == ("/maps/overview?street=320571002&lang=zh"
                                          "&phase=attack%3A2026")
    link.click()
    visit.page.wait_for_url("**/maps/overview?street=320571002*")
    visit.page.wait_for_function("window.swReadyDone === true")
    # The street's own overview: its name in the heading, its outline the only street drawn.
    heading = visit.page.locator("#sw-head").inner_text()
    assert name in heading and "重点攻坚" in heading
    outlines = visit.js("""() => { let n = 0;
        window[SW.control + '_layers'].overlays['街道'].eachLayer(function walk(l) {
            if (l.eachLayer) l.eachLayer(walk); else if (l.getLatLngs) n++; }); return n; }""")
    visit.page.screenshot(path=str(artifacts / "street-overview.png"))
    assert outlines == 1
    assert visit.errors == []


def test_the_district_map_in_english(district_server: tuple[str, str], browser: Browser,
                                     artifacts: Path) -> None:
    visit = Visit(browser, district_server[0], "/maps/district?lang=en&measure=on_time_rate")
    legend = visit.page.locator("#sw-legend").inner_text()
    visit.page.screenshot(path=str(artifacts / "district-en.png"))
    assert "Legend" in legend and not CHINESE.search(legend)
    assert "Street ranking: On-time closure rate" in visit.overlays()
    assert visit.errors == []
