"""POST /api/v1/issues/{id}/transitions: roles, units, optimistic locking, problem bodies."""

from __future__ import annotations

import io
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.schemas.issues import IssueFeature
from layers.auth import tokens


@pytest.fixture
def assigned(demo_dsn: str) -> tuple[str, int, dict[str, str], dict[str, str]]:
    """An assigned issue, its version, a token of its lead unit and of another unit."""
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("""
            SELECT i.public_id, i.version, u.code,
                   (SELECT code FROM unit WHERE id <> u.id ORDER BY code LIMIT 1)
            FROM issue i JOIN unit u ON u.id = i.lead_unit_id
            WHERE i.status = 'assigned' ORDER BY i.id LIMIT 1""").fetchone()
        assert row is not None
        own = tokens.create(conn, role="unit", unit_code=row[2], name="own unit")
        other = tokens.create(conn, role="unit", unit_code=row[3], name="other unit")
    return (row[0], row[1], {"Authorization": f"Bearer {own}"},
            {"Authorization": f"Bearer {other}"})


def _upload(client: TestClient, headers: dict[str, str], photo: bytes) -> str:
    response = client.post("/api/v1/evidence", headers=headers,
                           files={"file": ("after.jpg", photo, "image/jpeg")})
    assert response.status_code == 201, response.text
    return str(response.json()["ref"])


def test_unit_rectifies_its_issue_and_the_trail_shows_it(
        demo_client: TestClient, assigned: tuple[str, int, dict[str, str], dict[str, str]],
        jpeg: Callable[..., bytes]) -> None:
    public_id, version, own, _ = assigned
    photo = jpeg(lon=120.70, lat=31.31)
    ref = _upload(demo_client, own, photo)
    fetched = demo_client.get(f"/api/v1/evidence/{ref}", headers=own)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(fetched.content)) as served:  # the same photo, without EXIF
        assert served.size == (64, 48) and dict(served.getexif()) == {}
    response = demo_client.post(f"/api/v1/issues/{public_id}/transitions", headers=own, json={
        "action": "rectify", "version": version, "note": "已清理", "evidence": [ref]})
    assert response.status_code == 200, response.text
    body = IssueFeature.model_validate(response.json())
    assert body.properties.status == "rectified"
    assert body.properties.version == version + 1
    last = demo_client.get(f"/api/v1/issues/{public_id}/events").json()[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == (
        "rectify", "assigned", "rectified")
    assert last["actor"] == "own unit"
    assert last["evidence"] == [ref]
    assert last["data"]["evidence"][0]["distance_m"] is not None


def test_stale_version_is_409_with_the_current_state(
        demo_client: TestClient, assigned: tuple[str, int, dict[str, str], dict[str, str]],
        jpeg: Callable[..., bytes]) -> None:
    public_id, version, own, _ = assigned
    body = {"action": "rectify", "version": version,
            "evidence": [_upload(demo_client, own, jpeg())]}
    assert demo_client.post(f"/api/v1/issues/{public_id}/transitions", headers=own,
                       json=body).status_code == 200
    again = demo_client.post(f"/api/v1/issues/{public_id}/transitions", headers=own, json=body)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["current"] == {"status": "rectified", "version": version + 1}


def test_another_unit_and_wrong_roles_are_refused(
        demo_client: TestClient, demo_dsn: str, anonymous: dict[str, str],
        assigned: tuple[str, int, dict[str, str], dict[str, str]]) -> None:
    public_id, version, _, other = assigned
    body = {"action": "rectify", "version": version, "evidence": ["sha256:" + "0" * 64]}
    url = f"/api/v1/issues/{public_id}/transitions"
    assert demo_client.post(url, headers=other, json=body).status_code == 403
    assert demo_client.post(url, json=body, headers=anonymous).status_code == 401
    with psycopg.connect(demo_dsn) as conn:
        inspector = tokens.create(conn, role="inspector", name="测试")
    verify = demo_client.post(url, json={"action": "reject", "version": version},
                         headers={"Authorization": f"Bearer {inspector}"})
    assert verify.status_code == 403
    unknown = demo_client.post(url, headers=other, json={"action": "close", "version": version})
    assert unknown.status_code == 422


def test_open_issues_carry_a_traffic_light(demo_client: TestClient) -> None:
    features = demo_client.get("/api/v1/issues", params={"status": ["assigned", "rectified"],
                                                     "limit": 200}).json()["features"]
    lights = {f["properties"]["traffic_light"] for f in features}
    assert lights <= {"green", "yellow", "red"}
    assert "red" in lights  # the demo has overdue open issues
    assert all((f["properties"]["traffic_light"] == "red") == f["properties"]["overdue"]
               for f in features)
    closed = demo_client.get("/api/v1/issues", params={"status": "verified", "limit": 5}).json()
    assert {f["properties"]["traffic_light"] for f in closed["features"]} == {None}


def test_evidence_upload_refuses_what_is_not_a_photo(
        demo_client: TestClient, assigned: tuple[str, int, dict[str, str], dict[str, str]],
        jpeg: Callable[..., bytes], anonymous: dict[str, str]) -> None:
    _, _, own, _ = assigned
    fake = demo_client.post("/api/v1/evidence", headers=own,
                            files={"file": ("after.jpg", b"<html>not a photo</html>",
                                            "image/jpeg")})
    assert fake.status_code == 422
    assert fake.headers["content-type"] == "application/problem+json"
    nobody = demo_client.post("/api/v1/evidence", headers=anonymous,
                              files={"file": ("after.jpg", jpeg(), "image/jpeg")})
    assert nobody.status_code == 401
    unknown = demo_client.get("/api/v1/evidence/sha256:" + "0" * 64, headers=own)
    assert unknown.status_code == 404
