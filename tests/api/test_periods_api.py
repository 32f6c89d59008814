"""Every route's spelling of a period (``period=START/END``, ``phase=&year=``,
``phase=code:year``, ``since``/``until``, Open311's ``start_date``/``end_date``) reads through
one parser: the same range selects the same issues, bad input is refused with the same
message (422 problem details; 400 in the Open311 format under /open311/)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

# November 1-14 in the district, spelled as days and as instants with an offset.
DAYS = {"since": "2026-11-01", "until": "2026-11-14"}
INSTANTS = {"since": "2026-11-01T00:00:00+08:00", "until": "2026-11-15T00:00:00+08:00"}
NAIVE = {"since": "2026-11-01T00:00:00", "until": "2026-11-15T00:00"}


def _issues(client: TestClient, params: dict[str, str]) -> list[str]:
    response = client.get("/api/v1/issues", params={**params, "limit": 1000})
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


def test_issues_and_open311_read_the_same_days_the_same_way(demo_client: TestClient) -> None:
    chosen = _issues(demo_client, INSTANTS)
    assert 0 < len(chosen) < 1000
    assert _issues(demo_client, DAYS) == chosen == _issues(demo_client, NAIVE)
    for window in (DAYS, INSTANTS):
        requests = demo_client.get("/open311/v2/requests.json", params={
            "start_date": window["since"], "end_date": window["until"]})
        assert requests.status_code == 200, requests.text
        assert sorted(r["service_request_id"] for r in requests.json()) == sorted(chosen)


def test_scores_read_days_phases_and_instants_alike(demo_client: TestClient) -> None:
    phase = {"phase": "attack", "year": "2026"}
    by_phase = demo_client.get("/api/v1/scores", params=phase).json()
    may_june = {"since": "2026-05-01", "until": "2026-06-30"}
    assert demo_client.get("/api/v1/scores", params=may_june).json() == by_phase
    instants = {"since": "2026-05-01T00:00:00+08:00", "until": "2026-07-01T00:00:00+08:00"}
    assert demo_client.get("/api/v1/scores", params=instants).json() == by_phase
    assert by_phase and sum(r["issues"] for r in by_phase) > 0


def test_the_map_page_takes_the_phase_as_code_year_or_code_and_year(
        demo_client: TestClient) -> None:
    pages = [re.sub(r"_[0-9a-f]{32}", "", demo_client.get("/maps/overview", params=p).text)
             for p in ({"phase": "attack:2026"}, {"phase": "attack", "year": "2026"},
                       {"phase": "compliance:2026"})]  # folium's element ids left out
    assert pages[0] == pages[1] != pages[2]


BAD: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/issues", {"since": "2026-13-01"}),
    ("/api/v1/scores", {"since": "2026-13-01"}),
    ("/api/v1/accountability", {"unit": "CG", "since": "2026-13-01", "until": "2026-12-01"}),
    ("/api/v1/hotspots", {"period": "2026-13-01/2026-12-01"}),
    ("/api/v1/sites/chronic", {"period": "2026-13-01/"}),
    ("/maps/overview", {"since": "2026-13-01"}),
    ("/maps/hotspots", {"since": "2026-13-01"}),
    ("/open311/v2/requests.json", {"start_date": "2026-13-01"}),
]


@pytest.mark.parametrize(("path", "params"), BAD)
def test_a_bad_date_is_refused_with_the_same_message_on_every_route(
        demo_client: TestClient, path: str, params: dict[str, str]) -> None:
    response = demo_client.get(path, params=params)
    body: Any = response.json()
    if path.startswith("/open311/"):
        assert response.status_code == 400
        detail = body[0]["description"]
    else:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        detail = body["detail"]
    assert "无法识别的日期或时间 / not an ISO 8601 date or date-time: '2026-13-01'" in detail


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/issues", {"since": "2026-06-01", "until": "2026-05-01"}),
    ("/api/v1/scores", {"since": "2026-06-01", "until": "2026-05-01"}),
    ("/api/v1/accountability", {"unit": "CG", "since": "2026-06-01", "until": "2026-05-01"}),
    ("/api/v1/hotspots", {"period": "2026-06-01/2026-05-01"}),
    ("/maps/overview", {"since": "2026-06-01", "until": "2026-05-01"}),
    ("/maps/hotspots", {"since": "2026-06-01", "until": "2026-05-01"}),
    ("/open311/v2/requests.json", {"start_date": "2026-06-01", "end_date": "2026-05-01"}),
])
def test_a_reversed_period_is_refused_with_the_same_message_on_every_route(
        demo_client: TestClient, path: str, params: dict[str, str]) -> None:
    response = demo_client.get(path, params=params)
    assert response.status_code in (400, 422), response.text
    assert "时段的起点须早于终点 / a period must start before it ends" in response.text
