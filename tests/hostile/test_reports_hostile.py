"""Finding 10 (backdated or forged reports) and the control characters of finding 11: what a
reporter may claim, and one bad record never breaking a feed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree as SafeET
import psycopg
import pytest
from fastapi.testclient import TestClient

Bearer = Callable[..., dict[str, str]]


def _inside(dsn: str) -> tuple[float, float]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                           " FROM site WHERE layer = 'market' ORDER BY code LIMIT 1) s"
                           ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("offset", [timedelta(days=-200), timedelta(hours=-49),
                                    timedelta(minutes=15), timedelta(days=365 * 973)])
def test_reported_at_far_from_now_is_refused(demo_client: TestClient, demo_dsn: str,
                                             bearer_for: Bearer, offset: timedelta) -> None:
    lon, lat = _inside(demo_dsn)
    before = _count(demo_dsn)
    at = (datetime.now(UTC) + offset).isoformat()
    response = demo_client.post("/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"),
                                json={"category": "CTY-05", "lon": lon, "lat": lat,
                                      "description": "暴露垃圾", "reported_at": at})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "reported_at"
    assert _count(demo_dsn) == before


def test_reported_at_within_the_window_is_kept(demo_client: TestClient, demo_dsn: str,
                                               bearer_for: Bearer) -> None:
    # A phone that queued the report for a day without signal.
    lon, lat = _inside(demo_dsn)
    at = datetime.now(UTC) - timedelta(hours=30)
    response = demo_client.post("/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"),
                                json={"category": "CTY-05", "lon": lon, "lat": lat,
                                      "description": "暴露垃圾", "reported_at": at.isoformat()})
    assert response.status_code == 201, response.text
    stored = datetime.fromisoformat(response.json()["properties"]["reported_at"])
    assert abs(stored - at) < timedelta(seconds=1)


@pytest.mark.parametrize("source", ["supervision", "external_assessment"])
def test_only_the_office_and_supervisors_claim_weighty_sources(
        demo_client: TestClient, demo_dsn: str, bearer_for: Bearer, source: str) -> None:
    lon, lat = _inside(demo_dsn)
    body = {"category": "CTY-05", "lon": lon, "lat": lat, "description": "暴露垃圾",
            "source": source}
    before = _count(demo_dsn)
    refused = demo_client.post("/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"),
                               json=body)
    assert refused.status_code == 403 and "source" in refused.json()["detail"]
    assert _count(demo_dsn) == before
    for role in ("supervisor", "admin"):
        made = demo_client.post("/api/v1/issues", headers=bearer_for(demo_dsn, role), json=body)
        assert made.status_code == 201 and made.json()["properties"]["source"] == source


def test_a_control_character_in_a_new_description_is_refused(
        demo_client: TestClient, demo_dsn: str, bearer_for: Bearer) -> None:
    lon, lat = _inside(demo_dsn)
    inspector = bearer_for(demo_dsn, "inspector")
    before = _count(demo_dsn)
    for text in ("bell\x07", "escape\x1b[2J", "nul\x00"):
        response = demo_client.post("/api/v1/issues", headers=inspector, json={
            "category": "CTY-05", "lon": lon, "lat": lat, "description": text})
        assert response.status_code == 422 and "control character" in response.text
    form = {"api_key": inspector["Authorization"].split()[1], "service_code": "CTY-05",
            "lat": str(lat), "long": str(lon), "description": "bell\x07"}
    posted = demo_client.post("/open311/v2/requests.json", data=form)
    assert posted.status_code == 400 and "control character" in posted.text
    assert _count(demo_dsn) == before


def test_a_stored_control_character_does_not_break_the_open311_xml_feed(
        demo_client: TestClient, demo_dsn: str, anonymous: dict[str, str]) -> None:
    # Text that came in before the check (an old import, a restored database).
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("UPDATE issue SET description = 'bad\x07bell\x1b' WHERE id = ("
                           "SELECT min(id) FROM issue) RETURNING public_id").fetchone()
    assert row is not None
    feed = demo_client.get("/open311/v2/requests.xml", headers=anonymous)
    assert feed.status_code == 200
    parsed = SafeET.fromstring(feed.content)
    assert len(parsed.findall("request")) > 0
    one = demo_client.get(f"/open311/v2/requests/{row[0]}.xml", headers=anonymous)
    description = SafeET.fromstring(one.content).find("request/description")
    assert description is not None and description.text == "bad\ufffdbell\ufffd"


def test_a_report_names_only_photos_its_reporter_uploaded(
        demo_client: TestClient, demo_dsn: str, bearer_for: Bearer,
        jpeg: Callable[..., bytes]) -> None:
    # Naming another's photo in a new issue would hand it to that units.
    lon, lat = _inside(demo_dsn)
    with psycopg.connect(demo_dsn) as conn:
        unit = conn.execute("SELECT code FROM unit ORDER BY code LIMIT 1").fetchone()
    assert unit is not None

    def upload(headers: dict[str, str]) -> str:
        made = demo_client.post("/api/v1/evidence", headers=headers, files={
            "file": ("p.jpg", jpeg(lon=lon, lat=lat), "image/jpeg")})
        assert made.status_code == 201, made.text
        return str(made.json()["ref"])

    theirs = upload(bearer_for(demo_dsn, "unit", unit[0]))
    inspector = bearer_for(demo_dsn, "inspector")
    body = {"category": "CTY-05", "lon": lon, "lat": lat, "description": "暴露垃圾"}
    before = _count(demo_dsn)
    refused = demo_client.post("/api/v1/issues", headers=inspector,
                               json={**body, "photos": [theirs]})
    assert refused.status_code == 422 and "upload the photo first" in refused.text
    assert _count(demo_dsn) == before
    mine = demo_client.post("/api/v1/issues", headers=inspector,
                            json={**body, "photos": [upload(inspector)]})
    assert mine.status_code == 201, mine.text
