"""/health reports the database; errors are problem+json without internals."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from layers.db.settings import Settings


def test_health_ok_with_postgis_version(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["postgis"].startswith("3.")


def test_health_503_when_database_unreachable(tmp_path: object) -> None:
    settings = Settings(database_url="host=/nonexistent-socket-dir port=1 dbname=x user=x",
                        pool_timeout=0.5)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
        page = client.get("/maps/overview")
    assert response.status_code == 503
    assert response.json()["database"]["status"] == "unavailable"
    assert page.status_code == 503
    assert page.headers["content-type"] == "application/problem+json"
    assert page.json()["code"] == "database-unavailable"
    assert "nonexistent" not in page.text  # no connection details leak


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_bad_query_value_is_problem_json_listing_the_field(client: TestClient) -> None:
    response = client.get("/maps/overview", params={"lang": "fr"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation-failed"
    assert body["errors"][0]["location"] == ["query", "lang"]
    assert "Traceback" not in response.text


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/health" in client.get("/openapi.json").json()["paths"]
