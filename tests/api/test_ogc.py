"""OGC API Features at /ogc/: links, collections, paging, bbox and datetime, fields by role."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.auth import tokens

SITE_LAYERS = ["construction_site", "market", "old_compound"]  # builtin, by code


def _rels(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {link["rel"]: link for link in body["links"]}


def test_landing_and_conformance(demo_client: TestClient) -> None:
    landing = demo_client.get("/ogc/")
    assert landing.status_code == 200
    rels = _rels(landing.json())
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert demo_client.get(rels["service-desc"]["href"]).json()["paths"]
    conformance = demo_client.get(rels["conformance"]["href"]).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    html = demo_client.get("/ogc/", params={"f": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert rels["data"]["href"] in html.text


def test_collections_one_per_layer_with_extents(demo_client: TestClient) -> None:
    body = demo_client.get("/ogc/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["jurisdictions", *SITE_LAYERS, "issues"]
    for c in body["collections"]:
        [bbox] = c["extent"]["spatial"]["bbox"]
        assert 120.5 < bbox[0] < bbox[2] < 121 and 31.1 < bbox[1] < bbox[3] < 31.5
        items = _rels(c)["items"]
        assert items["type"] == "application/geo+json"
        assert demo_client.get(items["href"]).status_code == 200
    issues = demo_client.get("/ogc/collections/issues").json()
    [[start, end]] = issues["extent"]["temporal"]["interval"]
    assert start < end
    missing = demo_client.get("/ogc/collections/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def _all_pages(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/geo+json"
        page = response.json()
        assert page["numberReturned"] == len(page["features"])
        found.extend(page["features"])
        following = _rels(page).get("next")
        if following is None:
            assert len(found) == page["numberMatched"]
            return found
        response = client.get(following["href"])


def test_paging_walks_every_feature_once(demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        codes = {r[0] for r in conn.execute("SELECT code FROM jurisdiction").fetchall()}
    walked = _all_pages(demo_client, "/ogc/collections/jurisdictions/items", limit=7)
    assert [f["id"] for f in walked].count(walked[0]["id"]) == 1
    assert {f["id"] for f in walked} == codes
    second = demo_client.get("/ogc/collections/jurisdictions/items",
                             params={"limit": 7, "offset": 7}).json()
    assert "prev" in _rels(second)
    assert [f["id"] for f in second["features"]] == [f["id"] for f in walked[7:14]]


def test_bbox_and_datetime_filter_like_the_database(demo_client: TestClient,
                                                    demo_dsn: str) -> None:
    box = (120.69, 31.30, 120.70, 31.31)
    with psycopg.connect(demo_dsn) as conn:
        in_box = conn.execute(
            "SELECT count(*) FROM issue WHERE ST_Intersects(geom,"
            " ST_MakeEnvelope(%s, %s, %s, %s, 4326))", box).fetchone()
        in_window = conn.execute(
            "SELECT count(*) FROM issue WHERE reported_at BETWEEN"
            " '2026-11-01T00:00:00Z' AND '2026-11-10T00:00:00Z'").fetchone()
        before = conn.execute("SELECT count(*) FROM issue WHERE reported_at <="
                              " '2026-10-01T00:00:00+08:00'").fetchone()
    url = "/ogc/collections/issues/items"
    page = demo_client.get(url, params={"bbox": ",".join(map(str, box)), "limit": 1}).json()
    assert in_box is not None and page["numberMatched"] == in_box[0] > 0
    windowed = demo_client.get(url, params={
        "datetime": "2026-11-01T00:00:00Z/2026-11-10T00:00:00Z", "limit": 1}).json()
    assert in_window is not None and windowed["numberMatched"] == in_window[0] > 0
    open_start = demo_client.get(url, params={"datetime": "../2026-10-01T00:00:00+08:00",
                                              "limit": 1}).json()
    assert before is not None and open_start["numberMatched"] == before[0]
    # Jurisdictions have no time: a datetime does not filter them away.
    assert demo_client.get("/ogc/collections/jurisdictions/items", params={
        "datetime": "2020-01-01T00:00:00Z", "limit": 1}).json()["numberMatched"] > 0


@pytest.mark.parametrize("params", [
    {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"datetime": "yesterday"},
    {"datetime": "2026-11-10T00:00:00Z/2026-11-01T00:00:00Z"}, {"limit": "0"},
    {"limit": "10001"}, {"colour": "red"},
])
def test_bad_queries_are_400_problems(demo_client: TestClient, params: dict[str, str]) -> None:
    response = demo_client.get("/ogc/collections/issues/items", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400


def test_one_feature_and_fields_by_role(demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT public_id FROM issue WHERE reporter IS NOT NULL"
                           " ORDER BY id LIMIT 1").fetchone()
        supervisor = tokens.create(conn, role="supervisor", name="测试")
        viewer = tokens.create(conn, role="viewer", name="测试")
    assert row is not None
    url = f"/ogc/collections/issues/items/{row[0]}"
    public = demo_client.get(url)
    assert public.headers["content-type"] == "application/geo+json"
    feature = public.json()
    assert feature["id"] == row[0] and feature["geometry"]["type"] == "Point"
    assert {"self", "collection"} <= set(_rels(feature))
    assert "reporter" not in feature["properties"]
    as_viewer = demo_client.get(url, headers={"Authorization": f"Bearer {viewer}"}).json()
    assert "reporter" not in as_viewer["properties"]
    as_supervisor = demo_client.get(url, headers={"Authorization": f"Bearer {supervisor}"})
    assert as_supervisor.json()["properties"]["reporter"]
    assert demo_client.get("/ogc/collections/issues/items/SW9999999").status_code == 404
    market = demo_client.get("/ogc/collections/market/items", params={"limit": 1}).json()
    code = market["features"][0]["id"]
    assert demo_client.get(f"/ogc/collections/market/items/{code}").status_code == 200
    # A site of another layer is not in this collection.
    assert demo_client.get(f"/ogc/collections/old_compound/items/{code}").status_code == 404
