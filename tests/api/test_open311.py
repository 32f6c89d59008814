"""Open311 GeoReport v2: every endpoint in JSON and XML, the spec's errors, assignment on POST."""

from __future__ import annotations

from typing import Any

# Parsing our own responses in tests only.
from xml.etree.ElementTree import Element, fromstring

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.auth import tokens

BASE = "/open311/v2"
INSIDE = {"lat": "31.3105", "long": "120.7002"}  # inside the demo district


def _key(dsn: str, role: str = "inspector") -> str:
    with psycopg.connect(dsn) as conn:
        return tokens.create(conn, role=role, name=f"open311 {role}")


def _issue_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
    return int(row[0]) if row else -1


def _xml(response: Any) -> Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return fromstring(response.content)  # noqa: S314 - our own output


def _records(root: Element) -> list[dict[str, str | None]]:
    return [{child.tag: child.text for child in member} for member in root]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _assert_error(response: Any, status: int, fmt: str = "json") -> str:
    assert response.status_code == status, response.text
    if fmt == "xml":
        root = _xml(response)
        assert root.tag == "errors"
        [error] = _records(root)
        assert error["code"] == str(status)
        return str(error["description"])
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    [error] = response.json()
    assert set(error) == {"code", "description"} and error["code"] == status
    return str(error["description"])


def test_discovery_in_both_formats(demo_client: TestClient) -> None:
    body = demo_client.get(f"{BASE}/discovery.json").json()
    [endpoint] = body["endpoints"]
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    root = _xml(demo_client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    formats = [f.text for f in root.findall("endpoints/endpoint/formats/format")]
    assert formats == ["text/xml", "application/json"]


def test_services_are_the_active_catalog_in_both_formats(demo_client: TestClient,
                                                         demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE category SET active = false WHERE code = 'BEH-01'")
        active = [r[0] for r in conn.execute(
            "SELECT code FROM category WHERE active ORDER BY code").fetchall()]
    services = demo_client.get(f"{BASE}/services.json").json()
    assert [s["service_code"] for s in services] == active
    market = next(s for s in services if s["service_code"] == "MKT-01")
    assert market["service_name"] == "占道经营"
    assert market["group"] == "农贸市场及周边"
    assert market["keywords"] == "market,街面秩序,店外经营"
    assert market["metadata"] is False and market["type"] == "realtime"
    root = _xml(demo_client.get(f"{BASE}/services.xml"))
    assert root.tag == "services" and {m.tag for m in root} == {"service"}
    assert _records(root) == [{k: _as_text(v) for k, v in s.items()} for s in services]


def test_service_definition_and_unknown_service(demo_client: TestClient) -> None:
    assert demo_client.get(f"{BASE}/services/MKT-01.json").json() == {
        "service_code": "MKT-01", "attributes": []}
    root = _xml(demo_client.get(f"{BASE}/services/MKT-01.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "MKT-01"
    assert "NOPE-01" in _assert_error(demo_client.get(f"{BASE}/services/NOPE-01.json"), 404)
    _assert_error(demo_client.get(f"{BASE}/services/NOPE-01.xml"), 404, "xml")


def test_post_request_is_stored_assigned_and_readable(demo_client: TestClient,
                                                      demo_dsn: str) -> None:
    form = {"api_key": _key(demo_dsn), "service_code": "CTY-05", **INSIDE,
            "description": "路口暴露垃圾", "first_name": "王", "last_name": "小明",
            "email": "wang@example.org", "media_url": "https://example.org/p/1.jpg"}
    response = demo_client.post(f"{BASE}/requests.json", data=form)
    assert response.status_code == 201, response.text
    [created] = response.json()
    request_id = created["service_request_id"]
    assert "整改时限" in created["service_notice"]
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("""
            SELECT i.source, i.reporter, i.reporter_contact, j.code, u.name
            FROM issue i JOIN jurisdiction j ON j.id = i.jurisdiction_id
            JOIN unit u ON u.id = i.lead_unit_id WHERE i.public_id = %s""",
                           [request_id]).fetchone()
    assert row is not None and row[:3] == ("citizen", "王 小明", "wang@example.org")
    [record] = demo_client.get(f"{BASE}/requests/{request_id}.json").json()
    assert record["service_request_id"] == request_id
    assert record["status"] == "open"
    assert record["status_notes"].startswith("已交办 (assigned)")
    assert record["agency_responsible"] == row[4]
    assert record["expected_datetime"].endswith("+08:00")
    # Kept for the staff (REST photos), never echoed on the anonymous read: docs/access.md.
    assert record["media_url"] is None
    assert record["lat"] == pytest.approx(31.3105) and record["long"] == pytest.approx(120.7002)
    assert "wang" not in str(record) and "小明" not in str(record)  # no personal data
    root = _xml(demo_client.get(f"{BASE}/requests/{request_id}.xml"))
    assert root.tag == "service_requests"
    assert _records(root) == [{k: _as_text(v) for k, v in record.items()}]
    tokened = demo_client.get(f"{BASE}/tokens/{request_id}.json").json()
    assert tokened == [{"service_request_id": request_id, "token": request_id}]


def test_post_in_xml_and_idempotent_retry(demo_client: TestClient, demo_dsn: str) -> None:
    form = {"api_key": _key(demo_dsn), "service_code": "MKT-02", **INSIDE}
    headers = {"Idempotency-Key": "phone-42-attempt"}
    before = _issue_count(demo_dsn)
    first = demo_client.post(f"{BASE}/requests.xml", data=form, headers=headers)
    assert first.status_code == 201, first.text
    [created] = _records(_xml(first))
    again = demo_client.post(f"{BASE}/requests.xml", data=form, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _records(_xml(again))[0]["service_request_id"] == created["service_request_id"]
    assert _issue_count(demo_dsn) == before + 1
    with psycopg.connect(demo_dsn) as conn:
        description = conn.execute("SELECT description FROM issue WHERE public_id = %s",
                                   [created["service_request_id"]]).fetchone()
    assert description == ("流动摊贩",)  # none given: the service's name


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "sw_not_a_token"}, 403, "api_key"),
    ({"service_code": None}, 400, "service_code"),
    ({"service_code": "NOPE-01"}, 404, "NOPE-01"),
    ({"lat": None}, 400, "lat"),
    ({"lat": "abc"}, 400, "lat"),
    ({"long": "181"}, 400, "long"),
    ({"lat": "39.9", "long": "116.4"}, 400, "outside"),  # Beijing: not this district
    ({"description": "长" * 4001}, 400, "4000"),
    ({"media_url": "ftp://example.org/x"}, 400, "media_url"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_errors_use_the_spec_format_and_store_nothing(
        demo_client: TestClient, demo_dsn: str, change: dict[str, str | None], status: int,
        words: str, fmt: str) -> None:
    form: dict[str, str | None] = {"api_key": _key(demo_dsn), "service_code": "CTY-05",
                                   **INSIDE, **change}
    before = _issue_count(demo_dsn)
    response = demo_client.post(f"{BASE}/requests.{fmt}",
                                data={k: v for k, v in form.items() if v is not None})
    assert words in _assert_error(response, status, fmt)
    assert _issue_count(demo_dsn) == before


def test_a_viewer_key_may_not_post(demo_client: TestClient, demo_dsn: str) -> None:
    form = {"api_key": _key(demo_dsn, "viewer"), "service_code": "CTY-05", **INSIDE}
    assert "viewer" in _assert_error(demo_client.post(f"{BASE}/requests.json", data=form),
                                     403)


def test_get_requests_filters(demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT public_id FROM issue ORDER BY id LIMIT 3").fetchall()]
        closed_in_window = conn.execute("""
            SELECT count(*) FROM issue WHERE status IN ('verified', 'rejected', 'duplicate')
            AND reported_at >= '2026-11-01T00:00:00+08:00'
            AND reported_at < '2026-11-15T00:00:00+08:00'""").fetchone()
    by_id = demo_client.get(f"{BASE}/requests.json",
                            params={"service_request_id": ",".join(ids)}).json()
    assert sorted(r["service_request_id"] for r in by_id) == sorted(ids)
    window = {"start_date": "2026-11-01T00:00:00+08:00", "end_date": "2026-11-15T00:00:00+08:00"}
    closed = demo_client.get(f"{BASE}/requests.json",
                             params={**window, "status": "closed"}).json()
    assert closed_in_window is not None and len(closed) == closed_in_window[0] > 0
    assert {r["status"] for r in closed} == {"closed"}
    markets = demo_client.get(f"{BASE}/requests.json",
                              params={**window, "service_code": "MKT-01,MKT-02"}).json()
    assert markets and {r["service_code"] for r in markets} <= {"MKT-01", "MKT-02"}
    paged = demo_client.get(f"{BASE}/requests.json",
                            params={**window, "page_size": 5, "page": 2}).json()
    everything = demo_client.get(f"{BASE}/requests.json", params=window).json()
    assert paged == everything[5:10]
    assert "status" in _assert_error(
        demo_client.get(f"{BASE}/requests.json", params={"status": "pending"}), 400)
    # One period parser for every route (layers.catalog.periods): a time without an offset
    # is the district's, a date as the end the whole day; what it cannot read is a 400.
    local = {"start_date": "2026-11-01T00:00", "end_date": "2026-11-14"}
    assert demo_client.get(f"{BASE}/requests.json", params=local).json() == everything
    assert "not an ISO 8601 date or date-time" in _assert_error(
        demo_client.get(f"{BASE}/requests.xml", params={"start_date": "2026-11-01T25:00"}),
        400, "xml")


def test_unknown_things_are_404_in_the_spec_format(demo_client: TestClient) -> None:
    _assert_error(demo_client.get(f"{BASE}/requests/SW9999999.json"), 404)
    _assert_error(demo_client.get(f"{BASE}/tokens/nope.xml"), 404, "xml")
    _assert_error(demo_client.get(f"{BASE}/nothing-here.xml"), 404, "xml")
    _assert_error(demo_client.get(f"{BASE}/services.csv"), 400)
