"""The map builders: data in, folium map out, no database needed."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
from shapely import box

from geo.crs import wgs84_to_gcj02
from layers.db.settings import Settings
from maps.assets import inline_assets
from maps.overview import OverviewData, build_overview
from maps.page import PageOptions, PeriodMenu, shift_lattice
from maps.records import CellCounts, CommunityMeasure, Jurisdiction, Site, UnitIssue
from maps.unit import UnitData, build_unit

EVIL = '<img src=x onerror=alert(1)><script>alert(2)</script>'
# The district's zone the pages show times in (the settings pass it).
ZONE = Settings().zone  # the district's zone: the settings name it


def shows(html: str, text: str) -> bool:
    """Whether the page carries ``text``, as HTML text or inside its JSON/JS (escaped)."""
    return text in html or json.dumps(text)[1:-1] in html


def _data(site_name: str = "星海农贸市场") -> OverviewData:
    juris = [Jurisdiction(code="1", name="园区街道", level="street", unit=None,
                          geometry=box(120.6, 31.2, 120.8, 31.4)),
             Jurisdiction(code="11", name="湖东社区", level="community", unit="湖东社区居委会",
                          geometry=box(120.6, 31.2, 120.7, 31.3))]
    sites = [Site(code="M1", name=site_name, layer="market", layer_zh="农贸市场",
                  layer_en="Farmers' market", unit="湖东社区居委会", open_issues=3, overdue=1,
                  last_inspection=datetime(2026, 5, 3, 1, tzinfo=UTC),
                  geometry=box(120.65, 31.25, 120.651, 31.251))]
    cells = {9: CellCounts(cell=["89309a4a0b7ffff"], issues=[5], open=[2], overdue=[1])}
    communities = [CommunityMeasure(code="11", issues=5, open=2, points_lost=1.5)]
    return OverviewData(juris, sites, cells, communities, categories={"CTY-05": "暴露垃圾"},
                        period=PeriodMenu(phases=[("attack:2026", "2026 重点攻坚")]))


def test_overview_has_every_layer_popups_and_local_time() -> None:
    html = build_overview(_data(), PageOptions(zone=ZONE)).get_root().render()
    for text in ("园区街道", "湖东社区", "星海农贸市场", "湖东社区居委会", "2026-05-03 09:00",
                 "问题密度（H3 蜂窝）", "问题（单个）", "社区专题: 失分", "2026 重点攻坚"):
        assert shows(html, text), text
    assert "/tiles/issues/{z}/{x}/{y}.mvt" in html


def test_overview_english_has_no_chinese_labels() -> None:
    html = build_overview(_data("Star market"), PageOptions(zone=ZONE, lang="en")
                          ).get_root().render()
    legend = re.search(r'<div id="sw-legend".*?</div></div>', html, re.S)
    assert legend and not re.search(r"[\u4e00-\u9fff]", legend[0])
    assert shows(html, "Issue density (H3 cells)") and shows(html, "Open issues")


def test_overview_links_local_assets_only() -> None:
    html = build_overview(_data(), PageOptions(zone=ZONE, static_url="/assets")).get_root().render()
    head = html.split("<body>")[0]
    for path in ("leaflet/leaflet.js", "leaflet.fullscreen/Control.FullScreen.js",
                 "leaflet.heat/leaflet-heat.js", "leaflet-search/dist/leaflet-search.min.js",
                 "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"):
        assert f"/assets/vendor/{path}" in head
    assert "https://" not in head


def test_user_text_is_escaped_everywhere() -> None:
    html = build_overview(_data(EVIL), PageOptions(zone=ZONE)).get_root().render()
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "lt;img src=x onerror=alert(1)" in html  # escaped (folium also \\u0026-escapes &)


def test_standalone_page_inlines_every_local_asset() -> None:
    html = inline_assets(build_overview(_data(), PageOptions(zone=ZONE, tiles_url=None))
                         .get_root().render())
    assert 'src="/static/' not in html and 'href="/static/' not in html
    assert "L.heatLayer" in html and "L.Control.Search" in html
    assert "/tiles/issues" not in html  # no server to ask for tiles


def test_gcj_lattice_interpolates_the_published_shift() -> None:
    lattice = shift_lattice([120.6, 31.2, 120.8, 31.4])
    nx = lattice["nx"]
    # Known point (geo.crs doctest): Suzhou 120.70, 31.31 moves ~+0.00432° east.
    lon, lat = 120.7034, 31.3071
    fx, fy = (lon - lattice["lon0"]) / lattice["step"], (lat - lattice["lat0"]) / lattice["step"]
    i, j = int(fx), int(fy)
    u, v = fx - i, fy - j
    grid = np.array(lattice["dlon"]).reshape(lattice["ny"], nx)
    dlon = (grid[j, i] * (1 - u) * (1 - v) + grid[j, i + 1] * u * (1 - v)
            + grid[j + 1, i] * (1 - u) * v + grid[j + 1, i + 1] * u * v)
    exact = float(wgs84_to_gcj02(lon, lat)[0]) - lon
    assert abs(dlon - exact) < 5e-7  # 5 cm
    assert 0.004 < exact < 0.005


def test_unit_page_is_phone_ready_and_public() -> None:
    issues = [UnitIssue(public_id="SW1", category_zh="暴露垃圾", category_en="Rubbish",
                        status="assigned", reported_at=datetime(2026, 5, 1),
                        deadline=datetime(2026, 5, 2), lead_unit="城管", site=EVIL,
                        traffic_light="red", overdue=True, lon=120.65, lat=31.25)]
    data = _data()
    html = build_unit(UnitData("C11", "湖东社区居委会", data.jurisdictions[1:], issues,
                               data.jurisdictions), PageOptions(zone=ZONE, tiles_url=None)
                      ).get_root().render()
    assert 'name="viewport"' in html and 'id="sw-orders"' in html
    assert "<img src=x" not in html and shows(html, "SW1")
