"""The hotspot page (``GET /maps/hotspots``) for a period, on the small district: the period
restricts the analysis, a bad period is a 422, the jurisdictions' names are labels on the map."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.analysis import tallies
from layers.assignment import load_assigner
from layers.db.settings import Settings
from layers.issues import records
from tests.small_district import EAST, NORTH, SOUTH, WEST, District

ZONE = Settings().zone
# A cluster in the key-attack phase (May-June 2026) only, in 湖西; the rest of the district
# has a scatter of single reports in both that phase and full compliance (July-August).
CLUSTER = (120.7045, 31.3052)
ATTACK_DAY = datetime(2026, 5, 20, 10, tzinfo=ZONE)
COMPLIANCE_DAY = datetime(2026, 7, 20, 10, tzinfo=ZONE)


def _report(conn: psycopg.Connection[Any], at: datetime, points: list[tuple[float, float]]
            ) -> None:
    issues = records.prepare(load_assigner(conn), [
        records.NewIssue(category="CMP-03", lon=lon, lat=lat, description=f"乱堆乱放 {i}",
                         reported_at=at + timedelta(hours=i % 200))
        for i, (lon, lat) in enumerate(points)])
    records.store(conn, *issues, actor="巡查员", actor_role="inspector")


def _disc(n: int, radius: float, seed: int) -> list[tuple[float, float]]:
    """``n`` reports spread over a disc of ``radius`` degrees round :data:`CLUSTER` (a few
    cells of the study grid, as a real cluster is)."""
    rng = np.random.default_rng(seed)
    angle, r = rng.uniform(0, 2 * np.pi, n), radius * np.sqrt(rng.uniform(0, 1, n))
    return [(CLUSTER[0] + float(a * np.cos(t)), CLUSTER[1] + float(a * np.sin(t)))
            for a, t in zip(r, angle, strict=True)]


def _scatter(n: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(float(x), float(y)) for x, y in zip(rng.uniform(WEST + 2e-4, EAST - 2e-4, n),
                                                  rng.uniform(SOUTH + 2e-4, NORTH - 2e-4, n),
                                                  strict=True)]


@pytest.fixture
def clustered(dsn: str, district: District) -> str:
    """The small district with a hot cluster in the key-attack phase only."""
    with psycopg.connect(dsn) as conn:
        _report(conn, ATTACK_DAY, _disc(40, 0.0006, 5))
        _report(conn, ATTACK_DAY, _scatter(20, 1))
        _report(conn, COMPLIANCE_DAY, _scatter(20, 2))
        tallies.fold(conn, ZONE)  # the worker's tally job: the analyses read the tallies
    return dsn


def layers(page: str) -> list[dict[str, Any]]:
    """The GeoJSON data of every folium GeoJson layer of a page (``geo_json_…_add(data)``)."""
    found = []
    for match in re.finditer(r"geo_json_[0-9a-f]+_add\(", page):
        try:
            data, _ = json.JSONDecoder().raw_decode(page, match.end())
        except json.JSONDecodeError:  # the function's definition, not a call with data
            continue
        found.append(data)
    return found


def hot_areas(page: str) -> list[dict[str, Any]]:
    """The hot areas drawn on a page (the features that carry ``peak_z``)."""
    return [f for data in layers(page) for f in data.get("features", [])
            if "peak_z" in f.get("properties", {})]


def labels(page: str) -> list[tuple[str, str]]:
    """The permanent labels of a page as (level, text): the DivIcons of class ``sw-label``."""
    found = []
    for match in re.finditer(r'"html": ', page):
        markup, _ = json.JSONDecoder().raw_decode(page, match.end())
        label = re.fullmatch(r'<div class="sw-label sw-label-(\w+)"[^>]*>([^<]*)</div>', markup)
        if label:
            found.append((label.group(1), label.group(2)))
    return found


def _covers(area: dict[str, Any], lon: float, lat: float) -> bool:
    from shapely.geometry import Point, shape

    return bool(shape(area["geometry"]).buffer(1e-4).covers(Point(lon, lat)))


def test_a_period_restricts_the_analysis_to_its_issues(clustered: str,
                                                       client: TestClient) -> None:
    attack = client.get("/maps/hotspots", params={"phase": "attack:2026"})
    assert attack.status_code == 200, attack.text
    assert any(_covers(a, *CLUSTER) for a in hot_areas(attack.text))
    # The same cluster, outside the period asked for, makes no hot area.
    for params in ({"phase": "compliance:2026"},
                   {"since": "2026-07-01", "until": "2026-08-31"}):
        other = client.get("/maps/hotspots", params=params)
        assert other.status_code == 200, other.text
        assert not any(_covers(a, *CLUSTER) for a in hot_areas(other.text)), params
    # The landing view (no period) is all time, as before: the cluster is there.
    assert any(_covers(a, *CLUSTER) for a in hot_areas(client.get("/maps/hotspots").text))


def test_the_page_names_its_period_in_chinese_then_english(clustered: str,
                                                          client: TestClient) -> None:
    def head(**params: str) -> str:
        page = client.get("/maps/hotspots", params=params).text
        found = re.search(r'<div id="sw-subtitle"[^>]*>(.*?)</div>', page)
        assert found is not None
        return found.group(1)

    assert head().startswith("时段: 全部 · 统计于 20")
    assert head(phase="attack:2026").startswith("时段: 2026 重点攻坚")
    assert head(phase="attack:2026", lang="en").startswith("Period: 2026 Key attack")
    days = head(since="2026-07-01", until="2026-08-31", lang="en")
    assert days.startswith("Period: 2026-07-01 – 2026-08-31 · analysed 20"), days
    # The form selects the period shown again.
    page = client.get("/maps/hotspots", params={"phase": "attack:2026"}).text
    assert '<form id="sw-period" method="get"' in page
    assert '<option value="attack:2026" selected>' in page


@pytest.mark.parametrize("params", [
    {"phase": "nope:2026"}, {"phase": "attack:20x6"}, {"phase": "x" * 51},
    {"year": "2026"}, {"phase": "attack", "year": "1999"},
    {"phase": "attack:2026", "since": "2026-05-01"},
    {"since": "2026-13-01"}, {"since": "2026-06-01", "until": "2026-05-01"},
    {"until": "9999-12-31"}, {"since": "1999-12-31"}, {"since": "2026-05-01T08:00" + "0" * 9},
])
def test_a_bad_period_is_a_problem_not_an_error(client: TestClient,
                                                params: dict[str, str]) -> None:
    response = client.get("/maps/hotspots", params=params)
    assert response.status_code == 422, (params, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/problem+json")


def test_every_community_and_the_street_are_labelled_on_the_map(clustered: str,
                                                                client: TestClient) -> None:
    for lang in ("zh", "en"):
        shown = labels(client.get("/maps/hotspots", params={"lang": lang}).text)
        assert sorted(shown) == [("community", "湖东"), ("community", "湖西"),
                                 ("street", "星湖街道")], shown
