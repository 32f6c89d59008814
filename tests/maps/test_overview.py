"""The overview map builder: data in, folium map out, no database needed."""

from __future__ import annotations

import json
from datetime import datetime

import geopandas as gpd
from shapely import Point, box

from maps.overview import build_overview


def shows(html: str, text: str) -> bool:
    """Whether the page carries ``text``, as HTML text or inside its JSON/JS (escaped)."""
    return text in html or json.dumps(text)[1:-1] in html


def _frames() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    juris = gpd.GeoDataFrame(
        {"code": ["1", "11"], "name": ["园区街道", "湖东社区"], "level": ["street", "community"],
         "unit": [None, "湖东社区居委会"]},
        geometry=[box(120.6, 31.2, 120.8, 31.4), box(120.6, 31.2, 120.7, 31.3)], crs=4326)
    sites = gpd.GeoDataFrame(
        {"name": ["星海农贸市场"], "layer": ["market"], "layer_zh": ["农贸市场"],
         "layer_en": ["Farmers' market"], "unit": ["湖东社区居委会"], "open_issues": [3]},
        geometry=[box(120.65, 31.25, 120.651, 31.251)], crs=4326)
    issues = gpd.GeoDataFrame(
        {"public_id": ["SW0000001", "SW0000002"], "category_zh": ["占道经营", "暴露垃圾"],
         "category_en": ["Business occupying the road", "Exposed rubbish"],
         "status": ["assigned", "verified"],
         "reported_at": [datetime(2026, 5, 3, 9), datetime(2026, 6, 1, 10)],
         "deadline": [datetime(2026, 5, 4, 9), None], "lead_unit": ["城管", None],
         "traffic_light": ["red", None]},
        geometry=[Point(120.65, 31.25), Point(120.66, 31.26)], crs=4326)
    return juris, sites, issues


def test_overview_has_every_layer_and_popups() -> None:
    html = build_overview(*_frames()).get_root().render()
    for text in ("园区街道", "湖东社区", "星海农贸市场", "SW0000001", "2026-05-03 09:00",
                 "已交办", "责任单位"):
        assert shows(html, text)
    # the overdue issue is drawn red, the closed one green
    assert "#c0392b" in html and "#27ae60" in html


def test_overview_english_labels() -> None:
    html = build_overview(*_frames(), lang="en").get_root().render()
    assert "Business occupying the road" in html
    assert shows(html, "Assigned") and not shows(html, "已交办")


def test_overview_links_local_leaflet_only() -> None:
    html = build_overview(*_frames(), static_url="/assets").get_root().render()
    assert "/assets/vendor/leaflet/leaflet.js" in html
    assert "/assets/vendor/leaflet.fullscreen/Control.FullScreen.js" in html
    assert "https://" not in html.split("<body>")[0].replace(
        "https://{s}.tile.openstreetmap.org", "")


def test_overview_with_no_issues_still_renders() -> None:
    juris, sites, issues = _frames()
    html = build_overview(juris, sites, issues.iloc[0:0]).get_root().render()
    assert shows(html, "湖东社区")
