"""Real OGC API Features clients against the running server: GDAL's OAPIF driver (through
pyogrio) and OWSLib read every collection and get the same features as the REST API."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from layers.auth import tokens

COLLECTIONS = ["jurisdictions", "construction_site", "market", "old_compound", "issues"]


def _rest_ids(rest: httpx.Client, collection: str) -> set[str]:
    """The ids the REST API gives for the collection (paging through issues)."""
    if collection == "jurisdictions":
        body = rest.get("/api/v1/jurisdictions").json()
        return {f["properties"]["code"] for f in body["features"]}
    if collection != "issues":
        body = rest.get("/api/v1/sites", params={"layer": collection}).json()
        return {f["properties"]["code"] for f in body["features"]}
    ids: set[str] = set()
    url: str | None = "/api/v1/issues?limit=1000"
    while url is not None:
        page = rest.get(url).json()
        ids.update(f["id"] for f in page["features"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return ids


@pytest.fixture
def rest(server: str, demo_dsn: str) -> dict[str, set[str]]:
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="viewer", name="测试")
    with httpx.Client(base_url=server, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        return {c: _rest_ids(client, c) for c in COLLECTIONS}


def test_gdal_reads_every_collection(server: str, rest: dict[str, set[str]]) -> None:
    layers = [str(name) for name, _ in pyogrio.list_layers(f"OAPIF:{server}/ogc")]
    assert sorted(layers) == sorted(COLLECTIONS)
    for collection in COLLECTIONS:
        frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer=collection,
                                       PAGE_SIZE="1000")
        key = "id" if collection == "issues" else "code"
        assert set(frame[key]) == rest[collection], collection
        assert frame.crs is not None and frame.crs.to_epsg() == 4326
        assert frame.geometry.is_valid.all()


def test_owslib_reads_every_collection(server: str, rest: dict[str, set[str]]) -> None:
    api = Features(f"{server}/ogc")
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
        api.conformance()["conformsTo"]
    listed = [c["id"] for c in api.collections()["collections"]]
    assert listed == COLLECTIONS
    for collection in COLLECTIONS:
        ids: list[Any] = []
        offset = 0
        while True:
            page = api.collection_items(collection, limit=1000, offset=offset)
            ids.extend(f["id"] for f in page["features"])
            offset += page["numberReturned"]
            if offset >= page["numberMatched"]:
                break
        assert len(ids) == len(set(ids))
        assert set(ids) == rest[collection] if collection in ("issues", "jurisdictions") \
            else {str(i) for i in ids} == rest[collection]
    one = api.collection_item("issues", sorted(rest["issues"])[0])
    assert one["id"] == sorted(rest["issues"])[0]
