"""The map of an import's preview in a real headless Chromium, served by a real uvicorn on the
demo district, with no internet: the lines now and in the file, and the issues that would
move with their "from unit -> to unit" popups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
from playwright.sync_api import Browser

from layers.auth import tokens

# Two grids of different communities, each holding open issues, trade polygons in the file:
# the issues of each pass to the other grid, and so to the other community's unit.
SWAPPED = """
WITH pair AS (
    SELECT a.id AS a, b.id AS b FROM jurisdiction a JOIN jurisdiction b
      ON a.level = 'grid' AND b.level = 'grid' AND a.parent_id <> b.parent_id AND a.id < b.id
    WHERE EXISTS (SELECT 1 FROM issue i WHERE issue_is_open(i.status)
                  AND i.jurisdiction_id = a.id)
      AND EXISTS (SELECT 1 FROM issue i WHERE issue_is_open(i.status)
                  AND i.jurisdiction_id = b.id)
    ORDER BY a.code, b.code LIMIT 1)
SELECT j.code, j.name, j.level, p.code, ST_AsGeoJSON(o.geom)::json
FROM pair JOIN jurisdiction j ON j.id IN (pair.a, pair.b)
JOIN jurisdiction o ON o.id = CASE WHEN j.id = pair.a THEN pair.b ELSE pair.a END
JOIN jurisdiction p ON p.id = j.parent_id
"""
# Leaflet features drawn in one overlay of the layer switcher.
COUNT = """name => { let n = 0; window[SW.control + '_layers'].overlays[name]
    .eachLayer(function walk(l) { if (l.eachLayer) l.eachLayer(walk); else n++; });
    return n; }"""
# The popup of the first issue drawn, opened as a click would.
FIRST_POPUP = """name => { let found; window[SW.control + '_layers'].overlays[name]
    .eachLayer(function walk(l) { if (l.eachLayer) l.eachLayer(walk);
        else if (!found) found = l; });
    found.fire('click', {latlng: found.getLatLng()}, true);
    return document.querySelector('.leaflet-popup-content').innerText; }"""


def _swapped_file(dsn: str, folder: Path) -> Path:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(SWAPPED).fetchall()
    assert len(rows) == 2
    path = folder / "网格调整.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry,
         "properties": {"code": code, "name": name, "level": level, "parent": parent}}
        for code, name, level, parent, geometry in rows]}), encoding="utf-8")
    return path


def test_the_preview_map_draws_both_lines_and_the_moving_issues(
        server: str, demo_dsn: str, browser: Browser, artifacts: Path, tmp_path: Path
        ) -> None:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        token = tokens.create(conn, role="supervisor", name="督查组")
        admin = tokens.create(conn, role="admin", name="创建办")
    path = _swapped_file(demo_dsn, tmp_path)
    with path.open("rb") as f:
        answer = httpx.post(f"{server}/api/v1/imports", data={"kind": "jurisdictions",
                                                              "preview": "true"},
                            files={"file": (path.name, f, "application/geo+json")},
                            headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["lead_changed"] > 0 and body["map"]

    page = browser.new_page(viewport={"width": 1280, "height": 800},
                            extra_http_headers={"Authorization": f"Bearer {token}"})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: route.continue_()
               if route.request.url.startswith((server, "data:")) else route.abort())
    page.goto(f"{server}{body['map']}", wait_until="load")
    page.wait_for_function("window.swReadyDone === true")
    overlays = page.evaluate("Object.keys(window[SW.control + '_layers'].overlays)")
    assert {"现行界线", "导入文件界线", "将变动的问题"} <= set(overlays)
    assert page.evaluate(COUNT, "现行界线") >= 2
    assert page.evaluate(COUNT, "导入文件界线") >= 2
    assert page.evaluate(COUNT, "将变动的问题") == min(body["changed"], 5000)
    popup = page.evaluate(FIRST_POPUP, "将变动的问题")
    assert "→" in popup and "移交" in popup
    assert page.locator("#sw-legend").inner_text().count("+") >= 1
    page.wait_for_function(  # the popup has faded in, for the screenshot
        "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    page.screenshot(path=str(artifacts / "preview-map.png"))
    assert errors == []
    page.close()
