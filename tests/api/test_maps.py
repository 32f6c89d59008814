"""The overview map page over the demo district, and its vendored Leaflet."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient


def shows(html: str, text: str) -> bool:
    """Whether the page carries ``text``, as HTML text or inside its JSON/JS (escaped)."""
    return text in html or json.dumps(text)[1:-1] in html


def test_overview_shows_layers_in_chinese(demo_client: TestClient) -> None:
    response = demo_client.get("/maps/overview")
    assert response.status_code == 200
    html = response.text
    for label in ("社区", "网格", "农贸市场", "建筑工地", "老旧小区", "问题", "责任单位"):
        assert shows(html, label)
    # No CDN: the page links only our own copy of Leaflet.
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "cdn.jsdelivr.net" not in html


def test_overview_in_english(demo_client: TestClient) -> None:
    html = demo_client.get("/maps/overview", params={"lang": "en"}).text
    assert shows(html, "Construction site")
    assert shows(html, "Responsible unit")


def test_vendored_leaflet_is_served(demo_client: TestClient) -> None:
    response = demo_client.get("/static/vendor/leaflet/leaflet.js")
    assert response.status_code == 200
    assert "Leaflet" in response.text[:500]
