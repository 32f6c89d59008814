"""``GET /maps/district``: public, the streets ranked for a period with links to their
overviews, public fields only; bad parameters are 422 problem JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import partial

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import map_pages
from layers.analysis import snapshots
from layers.analysis.snapshots import Refresher, Snapshots
from layers.catalog import phases
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.vocab import DISMISSED_STATUSES

STREETS = ("320571001", "320571002", "320571003")


@pytest.fixture(scope="module")
def public(streets_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=streets_dsn, data_dir=tmp_path_factory.mktemp("d")))
    with TestClient(app) as client:  # no token: the page is public
        yield client


def test_the_district_page_ranks_every_street_with_a_link_to_its_overview(
    public: TestClient, streets_dsn: str
) -> None:
    response = public.get("/maps/district", params={"phase": "attack:2026"})
    assert response.status_code == 200
    page = response.text
    with psycopg.connect(streets_dsn) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM jurisdiction WHERE level = 'street' ORDER BY code").fetchall()]
    decoder = json.JSONDecoder()
    every = [decoder.raw_decode(page, m.end())[0]["features"]
             for m in re.finditer(r"geo_json_\w+_add\(", page)]
    layers = [f for f in every if f and "colour" in f[0]["properties"]]
    assert len(layers) == 3  # points lost, on-time closure, rework (beside the names' outlines)
    for layer in layers:
        shown = {f["properties"]["name"]: f["properties"] for f in layer}
        assert sorted(shown) == sorted(names)
        assert all("Sub-district Office" in p["name_en"] for p in shown.values())
        assert sorted(p["link"].split("street=")[1][:9] for p in shown.values()) == list(STREETS)
    for title in ("街道排名: 失分", "街道排名: 按期办结率", "街道排名: 返工率"):
        assert json.dumps(title)[1:-1] in page  # the layer switcher's names, as JSON


def test_the_district_page_shows_no_personal_data(public: TestClient, streets_dsn: str
                                                  ) -> None:
    page = public.get("/maps/district").text
    with psycopg.connect(streets_dsn) as conn:
        private = [r[0] for r in conn.execute(
            "SELECT DISTINCT reporter FROM issue WHERE reporter IS NOT NULL"
            " UNION SELECT contact FROM unit WHERE contact IS NOT NULL"
            " UNION SELECT leader FROM unit WHERE leader IS NOT NULL").fetchall()]
    assert len(private) > 10
    assert not [p for p in private if p in page]


def test_the_district_page_in_english(public: TestClient) -> None:
    page = public.get("/maps/district", params={"lang": "en", "measure": "rework_rate"}).text
    assert "Street ranking: Rework rate" in page
    assert "Civilized city campaign · Street ranking" in page


@pytest.mark.parametrize("params", [
    {"measure": "popularity"}, {"phase": "no_such_phase"}, {"since": "2026-13-01"},
    {"year": "3000", "phase": "attack"}, {"lang": "fr"}, {"since": "2026-05-01" * 3},
])
def test_bad_parameters_are_problems(public: TestClient, params: dict[str, str]) -> None:
    response = public.get("/maps/district", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def _codes(page: str) -> set[str]:
    """The codes of every feature the page's GeoJSON layers carry."""
    decoder = json.JSONDecoder()
    return {str(f["properties"].get("code")) for m in re.finditer(r"geo_json_\w+_add\(", page)
            for f in decoder.raw_decode(page, m.end())[0]["features"]}


def test_the_overview_of_one_street_shows_that_street_only(public: TestClient,
                                                            streets_dsn: str) -> None:
    whole = _codes(public.get("/maps/overview").text)
    response = public.get("/maps/overview", params={"street": "320571002"})
    assert response.status_code == 200
    mine = _codes(response.text)
    with psycopg.connect(streets_dsn) as conn:
        own_sites = {r[0] for r in conn.execute(
            "SELECT s.code FROM site s JOIN jurisdiction st ON st.code = '320571002'"
            " WHERE ST_Covers(st.geom, ST_PointOnSurface(s.geom))").fetchall()}
    jurisdictions = {c for c in mine if c.startswith("320571")}
    assert "320571002" in jurisdictions and len(jurisdictions) > 10
    assert all(c.startswith("320571002") for c in jurisdictions)
    assert {c for c in whole if c.startswith("320571001")}  # the others were there before
    assert own_sites and own_sites <= mine
    assert not {c for c in mine if c.startswith(("S01", "S03"))}  # other streets' sites
    assert 'name="street" value="320571002"' in response.text  # the period form keeps it


def test_a_streets_overview_counts_its_own_issues_border_cells_included(streets_dsn: str
                                                                        ) -> None:
    with psycopg.connect(streets_dsn) as conn:
        data = map_pages.overview_data(conn, Snapshots(), Period(), "zh", Settings().zone,
                                       street="320571002")
        row = conn.execute("""
            SELECT count(*), count(*) FILTER (WHERE on_street_border) FROM issue i
            JOIN jurisdiction s ON s.id = i.street_id AND s.code = '320571002'
            WHERE i.status <> ALL(%s)""", [list(DISMISSED_STATUSES)]).fetchone()
    assert row is not None
    own, on_border = row
    # Every one of the street's issues is in its cells, those in cells a border crosses too,
    # and no other street's.
    for counts in data.cells.values():
        assert sum(counts.issues) == own > on_border > 0


def test_a_streets_tiles_carry_its_own_issues_only(public: TestClient, streets_dsn: str
                                                   ) -> None:
    with psycopg.connect(streets_dsn) as conn:
        # The z14 tile of one of the street's issues on a border, and every issue in it.
        row = conn.execute("""
            SELECT t.x, t.y FROM issue i JOIN jurisdiction s ON s.id = i.street_id,
                 LATERAL (SELECT floor((ST_X(i.geom) + 180) / 360 * 16384)::int AS x,
                          floor((1 - ln(tan(radians(ST_Y(i.geom))) + 1 / cos(radians(
                              ST_Y(i.geom)))) / pi()) / 2 * 16384)::int AS y) t
            WHERE s.code = '320571002' AND i.on_street_border ORDER BY i.id LIMIT 1
            """).fetchone()
        assert row is not None
        x, y = row
        inside = conn.execute("""
            SELECT i.public_id, s.code = '320571002' FROM issue i
            JOIN jurisdiction s ON s.id = i.street_id
            WHERE i.geom && ST_Transform(ST_TileEnvelope(14, %s, %s), 4326)""",
            [x, y]).fetchall()
    mine = {p for p, own in inside if own}
    others = {p for p, own in inside if not own}
    assert mine and others  # the tile holds both streets' issues
    whole = public.get(f"/tiles/issues/14/{x}/{y}.mvt").content
    street = public.get(f"/tiles/issues/14/{x}/{y}.mvt", params={"street": "320571002"})
    assert street.status_code == 200
    assert all(p.encode() in whole for p in mine | others)
    assert all(p.encode() in street.content for p in mine)
    assert not any(p.encode() in street.content for p in others)
    page = public.get("/maps/overview", params={"street": "320571002"}).text
    assert "street=320571002" in page  # the street view asks for its own tiles


def test_the_worker_prepares_each_streets_overview(public: TestClient, streets_dsn: str
                                                   ) -> None:
    zone = Settings().zone
    Refresher(snapshots.connector(streets_dsn), partial(map_pages.landing_specs, zone=zone),
              interval=0).run_once()
    stored = "SELECT key, computed_at FROM analysis_snapshot ORDER BY key"
    with psycopg.connect(streets_dsn) as conn:
        before = conn.execute(stored).fetchall()
        menu = phases.list_phases(conn, datetime.now(zone).year)
    assert sum(key.startswith("street:") for key, _ in before) >= len(STREETS) * (1 + len(menu))
    for street in STREETS:
        for params in [{}, *({"phase": f"{p.code}:{p.year}"} for p in menu)]:
            page = public.get("/maps/overview", params={**params, "street": street})
            assert page.status_code == 200, page.text
    with psycopg.connect(streets_dsn) as conn:
        assert conn.execute(stored).fetchall() == before  # every page came from a snapshot


@pytest.mark.parametrize(("street", "status"), [
    ("320571999", 404), ("320571002001", 404), ("x' OR '1'='1", 422), ("9" * 41, 422)])
def test_an_unknown_or_malformed_street_is_a_problem(public: TestClient, street: str,
                                                     status: int) -> None:
    for path in ("/maps/overview", "/tiles/issues/14/13700/6690.mvt"):
        response = public.get(path, params={"street": street})
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_new_install_shows_an_empty_district_map(client: TestClient,
                                                   anonymous: dict[str, str]) -> None:
    response = client.get("/maps/district", headers=anonymous)
    assert response.status_code == 200 and "leaflet" in response.text


@pytest.mark.parametrize("params", [{"since": "2025-01-01", "until": "2025-01-02"}, {}])
def test_the_district_map_of_a_period_without_issues(public: TestClient,
                                                     params: dict[str, str]) -> None:
    response = public.get("/maps/district", params=params)
    assert response.status_code == 200


@pytest.mark.parametrize("params", [{"until": "9999-12-31"}, {"since": "0001-01-01"}])
def test_days_at_the_end_of_the_calendar_are_a_clear_422(public: TestClient,
                                                         params: dict[str, str]) -> None:
    response = public.get("/maps/district", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
