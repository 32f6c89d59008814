"""The field pages' shells and the nearby-categories route behind /report."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from maps import field

STATIC = Path(field.__file__).parent / "static" / "field"
TEMPLATES = Path(field.__file__).parent / "templates"
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def first_market(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, str, float, float]:
    """The demo's first market: code, name, and the lon/lat of a point inside it."""
    row = conn.execute("""
        SELECT code, name, ST_X(p), ST_Y(p) FROM (
            SELECT code, name, ST_PointOnSurface(geom) AS p FROM site
            WHERE layer = 'market' ORDER BY code LIMIT 1) s""").fetchone()
    assert row is not None
    code, name, lon, lat = row
    assert isinstance(lon, float) and isinstance(lat, float)
    return str(code), str(name), lon, lat


@pytest.mark.parametrize("page", [field.REPORT, field.WORK])
def test_every_label_the_pages_use_exists_in_both_languages(page: dict[str, dict[str, str]]
                                                            ) -> None:
    zh, en = field.labels(page, "zh"), field.labels(page, "en")
    assert zh.keys() == en.keys()
    assert not any(CJK.search(v) for k, v in en.items() if k != "other_lang")
    name = "report" if page is field.REPORT else "work"
    used = set(re.findall(r"\bT\.(\w+)", (STATIC / f"{name}.js").read_text()
                          + (STATIC / "common.js").read_text()))
    used |= set(re.findall(r"\bt\.(\w+)", (TEMPLATES / f"field_{name}.html").read_text()
                           + (TEMPLATES / "field_base.html").read_text()))
    used |= {"green", "yellow", "red"} if name == "work" else set()  # T[light]
    assert used - zh.keys() == set()


def test_pages_are_public_shells_in_chinese_or_english(demo_client: TestClient,
                                                       anonymous: dict[str, str]) -> None:
    report = demo_client.get("/report", headers=anonymous)
    assert report.status_code == 200
    assert "问题上报" in report.text and "/static/vendor/leaflet/leaflet.js" in report.text
    english = demo_client.get("/report", params={"lang": "en"}, headers=anonymous).text
    assert CJK.findall(english) == list("中文")
    work = demo_client.get("/units/SQ01/work", params={"lang": "en"}, headers=anonymous)
    assert work.status_code == 200 and "Work list" in work.text


def test_the_unit_in_the_path_is_escaped(demo_client: TestClient) -> None:
    html = demo_client.get('/units/"><img src=x onerror=alert(1)>/work').text
    assert "<img" not in html
    assert 'data-unit="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in html


def test_categories_of_the_nearest_market_come_first(demo_client: TestClient,
                                                     demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        code, name, lon, lat = first_market(conn)
    body = demo_client.get("/api/v1/field/nearby", params={"lon": lon, "lat": lat}).json()
    assert body["site"]["code"] == code and body["site"]["name"] == name
    assert body["site"]["distance_m"] == 0
    layers = [c["site_layer"] for c in body["categories"]]
    relevant = [c["relevant"] for c in body["categories"]]
    first_other = relevant.index(False)
    assert set(layers[:first_other]) == {"market"} and not any(relevant[first_other:])
    assert layers[first_other] is None  # then the city-wide categories
    assert len(body["categories"]) == len(demo_client.get(
        "/api/v1/categories", params={"active": True}).json())
    # Each seeded category is filed under its rectification action (五大整治行动).
    prefixes = {"MKT": "market", "CON": "construction", "CTY": "appearance",
                "CMP": "compound", "BEH": "behaviour"}
    assert {c["code"]: c["campaign_action"] for c in body["categories"]} == {
        c["code"]: prefixes[c["code"].split("-")[0]] for c in body["categories"]}


def test_an_admin_files_a_category_under_an_action(
        demo_client: TestClient, demo_dsn: str,
        bearer_for: Callable[..., dict[str, str]]) -> None:
    admin = bearer_for(demo_dsn, "admin")
    wrong = demo_client.patch("/api/v1/categories/CTY-05", headers=admin,
                              json={"campaign_action": "cleanup"})
    assert wrong.status_code == 422
    moved = demo_client.patch("/api/v1/categories/CTY-05", headers=admin,
                              json={"campaign_action": "behaviour"})
    assert moved.status_code == 200 and moved.json()["campaign_action"] == "behaviour"
    made = demo_client.post("/api/v1/categories", headers=admin, json={
        "code": "XX-01", "name_zh": "其他", "name_en": "Other", "deadline_hours": 24,
        "points": 0.1})
    assert made.status_code == 201 and made.json()["campaign_action"] is None
    body = demo_client.get("/api/v1/field/nearby", params={"lon": 121.9, "lat": 31.9}).json()
    filed = {c["code"]: c["campaign_action"] for c in body["categories"]}
    assert (filed["CTY-05"], filed["XX-01"]) == ("behaviour", None)


def test_far_from_every_site_city_wide_categories_come_first(demo_client: TestClient
                                                             ) -> None:
    body = demo_client.get("/api/v1/field/nearby", params={"lon": 121.9, "lat": 31.9}).json()
    assert body["site"] is None
    assert body["categories"][0]["site_layer"] is None
    assert not any(c["relevant"] for c in body["categories"])


def test_nearby_needs_a_token_and_a_position(demo_client: TestClient,
                                            anonymous: dict[str, str]) -> None:
    assert demo_client.get("/api/v1/field/nearby", params={"lon": 120.7, "lat": 31.3},
                           headers=anonymous).status_code == 401
    bad = demo_client.get("/api/v1/field/nearby", params={"lon": 200, "lat": 31.3})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_each_page_installs_as_its_own_app(demo_client: TestClient,
                                           anonymous: dict[str, str]) -> None:
    report = demo_client.get("/report.webmanifest", headers=anonymous)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("application/manifest+json")
    app = report.json()
    assert (app["start_url"], app["scope"], app["display"]) == ("/report?lang=zh", "/",
                                                                "standalone")
    assert app["name"].startswith("问题上报")
    assert demo_client.get("/report.webmanifest", params={"lang": "en"}).json()[
        "start_url"] == "/report?lang=en"
    work = demo_client.get("/units/SQ 01/work.webmanifest", headers=anonymous).json()
    assert work["start_url"] == "/units/SQ%2001/work?lang=zh" and "SQ 01" in work["name"]
    # The icons named are served, at the sizes named (install prompts need 192 and 512).
    for icon in app["icons"]:
        served = demo_client.get(icon["src"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        width, height = Image.open(io.BytesIO(served.content)).size
        assert f"{width}x{height}" == icon["sizes"]
    # Both pages name their manifest.
    assert '<link rel="manifest" href="/report.webmanifest?lang=zh">' in demo_client.get(
        "/report").text
    assert 'href="/units/SQ01/work.webmanifest?lang=en"' in demo_client.get(
        "/units/SQ01/work", params={"lang": "en"}).text


def test_a_hostile_unit_in_the_manifest_stays_text(demo_client: TestClient) -> None:
    hostile = '"><img src=x onerror=alert(1)>'
    app = demo_client.get(f"/units/{hostile}/work.webmanifest").json()
    assert hostile in app["name"]  # JSON text, never markup
    assert app["start_url"] == ("/units/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
                                "/work?lang=zh")
    assert demo_client.get(f"/units/{'x' * 41}/work.webmanifest").status_code == 422
    assert demo_client.get("/report.webmanifest", params={"lang": "fr"}).status_code == 422


def test_the_service_worker_is_served_from_the_root_never_cached(
        demo_client: TestClient, anonymous: dict[str, str]) -> None:
    worker = demo_client.get("/field-sw.js", headers=anonymous)
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    # Every file it keeps for opening offline exists (a missing one fails its install).
    shell = re.search(r"const SHELL = \[(.*?)\];", worker.text, re.S)
    assert shell is not None
    for path in re.findall(r'"(/[^"]+)"', shell.group(1)):
        assert demo_client.get(path).status_code == 200, path
