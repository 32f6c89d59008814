"""Street-scoped tokens see nothing of other streets, route by route (docs/access.md, "Street
scope"; layers/auth/scope.py and the policies of migration 0032).

The world is tests/two_streets.py: streets ALPHA and BRAVO, each with a community, a market
and issues, one issue on their border (ALPHA's). Tokens of every street role are scoped to
BRAVO; what they read must carry none of ALPHA's ids or codes, what they ask of ALPHA by id
is not found, and what they would write on ALPHA's ground (or in the district's catalog) is
refused. A district admin's token sees both streets, so each check can fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import map_pages
from layers.analysis import snapshots, tallies
from layers.auth import scope, tokens
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.errors import NotFound, ValidationFailed
from layers.supervision import orders
from tests import two_streets
from tests.conftest import fold_tallies
from tests.two_streets import BORDER, District

STREET_ROLES = ("viewer", "inspector", "supervisor", "admin")


@dataclass
class World:
    client: TestClient
    district: District
    bravo: dict[str, dict[str, str]]  # role -> headers of a token scoped to BRAVO
    whole: dict[str, str]  # a district admin's headers
    conn: psycopg.Connection[tuple[object, ...]]

    @property
    def alpha_marks(self) -> list[str]:
        """What must never show in a BRAVO caller's answer."""
        a = self.district.a
        return [*a.issues, self.district.border_issue, a.code, a.community, a.market]

    @property
    def bravo_marks(self) -> list[str]:
        b = self.district.b
        return [*b.issues, b.code, b.community, b.market]


@pytest.fixture
def world(dsn: str, tmp_path: Path) -> Iterator[World]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        district = two_streets.build(conn)
        bravo = {role: {"Authorization": "Bearer " + tokens.create(
            conn, role=role, name=f"乙街道{role}", street_code=district.b.code)}
            for role in STREET_ROLES}
        whole = {"Authorization": "Bearer " + tokens.create(conn, role="admin", name="区创建办")}
        # Orders for both streets' units, issued by the district.
        orders.issue_orders(conn, orders.Issuer("区督查组", "supervisor"))
        with TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path))) as client:
            yield World(client, district, bravo, whole, conn)


# Every read a street office makes, one URL per route that carries street data. A route of
# the app that reads data and is not here (nor in NOT_SCOPED) fails
# test_every_data_route_is_checked.
def _reads(w: World) -> list[str]:
    b = w.district.b
    return [
        "/api/v1/issues?limit=100",
        "/api/v1/issues?limit=100&status=assigned",
        f"/api/v1/issues/{b.issues[0]}",
        f"/api/v1/issues/{b.issues[0]}?as_of=reported",
        f"/api/v1/issues/{b.issues[0]}/events",
        "/api/v1/jurisdictions",
        f"/api/v1/jurisdictions/{b.community}",
        "/api/v1/sites",
        "/api/v1/sites?layer=market",
        f"/api/v1/sites/{b.market}",
        "/api/v1/checks/jurisdictions",
        "/api/v1/exports/issues?format=geojson",
        "/api/v1/exports/market?format=geojson",
        "/api/v1/exports/jurisdictions?format=geojson",
        "/api/v1/scores",
        "/api/v1/scores/phases?year=2026",
        "/api/v1/scores/handovers",
        "/api/v1/orders",
        "/api/v1/inspections",
        "/api/v1/revisions",
        "/api/v1/hotspots",
        "/api/v1/sites/chronic",
        f"/api/v1/field/nearby?lon={BORDER}&lat=31.305&radius_m=2000",
        "/ogc/collections/issues/items?limit=100",
        "/ogc/collections/jurisdictions/items?limit=100",
        "/ogc/collections/market/items?limit=100",
        f"/ogc/collections/issues/items/{b.issues[0]}",
    ]


def _route_of(url: str) -> str:
    return url.split("?")[0]


def test_street_of_every_jurisdiction_site_and_issue(world: World) -> None:
    rows = world.conn.execute("""
        SELECT j.code, s.code FROM jurisdiction j JOIN jurisdiction s ON s.id = j.street_id
        ORDER BY j.code""").fetchall()
    assert rows == [("ALPHAC1", "ALPHAST"), ("ALPHAST", "ALPHAST"), ("BRAVOC1", "BRAVOST"),
                    ("BRAVOST", "BRAVOST")]
    sites = world.conn.execute("SELECT t.code, s.code FROM site t"
                               " JOIN jurisdiction s ON s.id = t.street_id ORDER BY 1").fetchall()
    assert sites == [("ALPHAMKT", "ALPHAST"), ("BRAVOMKT", "BRAVOST")]
    issues = {row[0]: row[1] for row in world.conn.execute(
        "SELECT i.public_id, s.code || (CASE WHEN on_street_border THEN ' border' ELSE '' END)"
        " FROM issue i JOIN jurisdiction s ON s.id = i.street_id").fetchall()}
    d = world.district
    assert issues == {**{i: "ALPHAST" for i in d.a.issues}, **{i: "BRAVOST" for i in d.b.issues},
                      d.border_issue: "ALPHAST border"}


def test_a_community_moved_to_another_street_takes_its_issues(world: World) -> None:
    c = world.conn
    c.execute("UPDATE jurisdiction SET parent_id = (SELECT id FROM jurisdiction"
              " WHERE code = 'BRAVOST') WHERE code = 'ALPHAC1'")
    moved = c.execute("SELECT DISTINCT s.code FROM issue i JOIN jurisdiction s"
                      " ON s.id = i.street_id WHERE i.public_id = ANY(%s)",
                      [world.district.a.issues]).fetchall()
    assert moved == [("BRAVOST",)]


def test_street_scoped_readers_see_nothing_of_the_other_street(world: World) -> None:
    leaks = []
    for url in _reads(world):
        whole = world.client.get(url, headers=world.whole)
        assert whole.status_code == 200, (url, whole.text[:200])
        for role, headers in world.bravo.items():
            answer = world.client.get(url, headers=headers)
            if answer.status_code in (401, 403):  # the role may not read it at all
                continue
            assert answer.status_code == 200, (url, role, answer.text[:200])
            leaks += [f"{url} as {role}: {m}" for m in world.alpha_marks if m in answer.text]
    assert leaks == []


# Lists where the district's admin sees ALPHA: the check above can fail on them.
DISTRICT_SEES_ALPHA = [
    "/api/v1/issues?limit=100", "/api/v1/jurisdictions", "/api/v1/sites",
    "/api/v1/exports/issues?format=geojson", "/api/v1/exports/jurisdictions?format=geojson",
    "/ogc/collections/issues/items?limit=100", "/ogc/collections/jurisdictions/items?limit=100"]


def test_the_district_sees_both_streets(world: World) -> None:
    reads = {_route_of(u): u for u in _reads(world)}
    for url in DISTRICT_SEES_ALPHA:
        assert _route_of(url) in reads, url
        whole = world.client.get(url, headers=world.whole).text
        assert any(m in whole for m in world.alpha_marks), url
        assert any(m in whole for m in world.bravo_marks), url


def test_the_other_streets_things_are_not_found(world: World) -> None:
    a = world.district.a
    for url in (f"/api/v1/issues/{a.issues[0]}", f"/api/v1/issues/{a.issues[0]}/events",
                f"/api/v1/issues/{a.issues[0]}?as_of=reported",
                f"/api/v1/jurisdictions/{a.community}", f"/api/v1/sites/{a.market}",
                f"/ogc/collections/issues/items/{a.issues[0]}"):
        assert world.client.get(url, headers=world.whole).status_code == 200, url
        for role, headers in world.bravo.items():
            answer = world.client.get(url, headers=headers)
            assert answer.status_code == 404, (url, role, answer.status_code, answer.text[:200])


def _issue_at(lon: float) -> dict[str, object]:
    return {"category": "CMP-03", "lon": lon, "lat": 31.305, "description": "乱堆乱放"}


def test_writes_outside_the_street_are_refused_and_inside_work(world: World) -> None:
    client, d = world.client, world.district
    admin, supervisor = world.bravo["admin"], world.bravo["supervisor"]
    inspector = world.bravo["inspector"]
    # A report on the other street's ground: refused, nothing stored.
    before = world.conn.execute("SELECT count(*) FROM issue").fetchone()
    refused = client.post("/api/v1/issues", headers=inspector, json=_issue_at(120.703))
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "outside-scope"
    assert world.conn.execute("SELECT count(*) FROM issue").fetchone() == before
    made = client.post("/api/v1/issues", headers=inspector, json=_issue_at(120.717))
    assert made.status_code == 201, made.text
    # Acting on the other street's issue: it does not exist for this caller.
    acted = client.post(f"/api/v1/issues/{d.a.issues[0]}/transitions", headers=supervisor,
                        json={"action": "reject", "version": 1, "note": "不属实"})
    assert acted.status_code == 404, acted.text
    own = client.post(f"/api/v1/issues/{d.b.issues[0]}/transitions", headers=supervisor,
                      json={"action": "reject", "version": 1, "note": "不属实"})
    assert own.status_code == 200, own.text
    # Lines: the other street's are not found; a new street, or ground outside the street,
    # is refused; the street's own are edited.
    renamed = client.patch(f"/api/v1/jurisdictions/{d.a.community}", headers=admin,
                           json={"properties": {"name": "改名"}})
    assert renamed.status_code == 404, renamed.text
    street = client.post("/api/v1/jurisdictions", headers=admin, json={
        "type": "Feature", "geometry": two_streets.box(120.72, 120.73),
        "properties": {"code": "NEWST", "name": "新街道", "level": "street"}})
    assert street.status_code == 403, street.text
    site = client.post("/api/v1/sites", headers=admin, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [120.703, 31.305]},
        "properties": {"code": "NEWMKT", "name": "新市场", "layer": "market"}})
    assert site.status_code == 403, site.text
    own_site = client.post("/api/v1/sites", headers=admin, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [120.718, 31.305]},
        "properties": {"code": "NEWMKT", "name": "新市场", "layer": "market"}})
    assert own_site.status_code == 201, own_site.text
    # The district's catalog is read, not written.
    unit = client.post("/api/v1/units", headers=admin,
                       json={"code": "NEWU", "name": "新单位", "kind": "functional"})
    assert unit.status_code == 403, unit.text
    assert client.get("/api/v1/units", headers=admin).status_code == 200
    category = client.patch("/api/v1/categories/MKT-01", headers=admin, json={"points": 0.5})
    assert category.status_code == 403, category.text


def test_each_office_plans_its_own_rounds_on_its_own_ground(world: World) -> None:
    plan = {"size": 2, "seed": 3, "planned_for": "2027-01-04"}
    bravo = world.client.post("/api/v1/inspections", headers=world.bravo["supervisor"],
                              json=plan)
    assert bravo.status_code == 201, bravo.text
    assert "BRAVOMKT" in bravo.text and "ALPHAMKT" not in bravo.text
    # The district's office plans the same day: another office's round, not a double one.
    district = world.client.post("/api/v1/inspections", headers=world.whole, json=plan)
    assert district.status_code == 201, district.text
    again = world.client.post("/api/v1/inspections", headers=world.bravo["admin"], json=plan)
    assert again.status_code == 409, again.text
    listed = world.client.get("/api/v1/inspections", headers=world.bravo["viewer"]).json()
    assert [r["id"] for r in listed] == [bravo.json()["round"]["id"]]


def test_district_admin_sees_and_acts_everywhere(world: World) -> None:
    listed = world.client.get("/api/v1/issues", params={"limit": 100}, headers=world.whole)
    ids = {f["id"] for f in listed.json()["features"]}
    d = world.district
    assert ids == {*d.a.issues, *d.b.issues, d.border_issue}
    border = world.client.get(f"/api/v1/issues/{d.border_issue}", headers=world.whole).json()
    assert border["properties"]["on_street_border"] is True


def test_a_scoped_connection_goes_back_to_the_district(world: World) -> None:
    # The pool hands the same connections to the next requests: after BRAVO's request the
    # district's sees ALPHA again (a leaked scope would hide it).
    for _ in range(5):
        world.client.get("/api/v1/issues", headers=world.bravo["viewer"])
        listed = world.client.get("/api/v1/issues", params={"limit": 100}, headers=world.whole)
        assert world.district.a.issues[0] in listed.text
        anonymous = world.client.get("/open311/v2/requests.json")
        assert world.district.a.issues[0] in anonymous.text


def test_scores_count_the_streets_own_issues_only(world: World, dsn: str) -> None:
    fold_tallies(dsn)  # what the worker does; the scores read the tallies
    def issues_by_unit(headers: dict[str, str]) -> dict[str, int]:
        answer = world.client.get("/api/v1/scores", headers=headers)
        assert answer.status_code == 200, answer.text
        return {s["code"]: s["issues"] for s in answer.json() if s["issues"]}

    # 城管 (CG) answers for both streets' market problems: the district counts two,
    # BRAVO's office its one; ALPHA's community (CA) has nothing to show BRAVO.
    whole = issues_by_unit(world.whole)
    assert whole["CG"] == 2 and whole["CA"] >= 1, whole
    bravo = issues_by_unit(world.bravo["viewer"])
    assert bravo["CG"] == 1 and "CA" not in bravo and "JA" not in bravo, bravo


def _cell_counts(conn: psycopg.Connection[tuple[object, ...]], street: int | None = None
                 ) -> dict[int, int]:
    found = tallies.count(conn, tallies.Selection(Period(), street=street), ("cell",))
    return dict(zip(found["cell"].tolist(), found["issues"].tolist(), strict=True))


def test_a_streets_tallies_are_its_own_issues_and_follow_a_moved_community(
        world: World, dsn: str) -> None:
    c = world.conn
    fold_tallies(dsn)
    ids = {str(code): int(str(i)) for code, i in c.execute(
        "SELECT code, id FROM jurisdiction WHERE level = 'street'").fetchall()}

    def seen_by(street: str) -> dict[int, int]:
        """Per-cell counts as the street's scoped session reads them (its policy alone)."""
        with psycopg.connect(dsn, autocommit=True) as own:
            scope.enter(own, ids[street])
            return _cell_counts(own)

    def issues_of(street: str) -> int:
        row = c.execute("SELECT count(*) FROM issue WHERE street_id = %s",
                        [ids[street]]).fetchone()
        return int(str(row[0])) if row else 0

    district = _cell_counts(c)
    for street in ("ALPHAST", "BRAVOST"):
        named = _cell_counts(c, ids[street])
        # The per-cell tallies (what the hotspots read) hold the street's issues only, the
        # same whether the street is named by a district caller or is the session's scope.
        assert seen_by(street) == named and sum(named.values()) == issues_of(street)
    assert sum(district.values()) == issues_of("ALPHAST") + issues_of("BRAVOST") == 5
    # ALPHA's community (its two issues and the border one) moves to BRAVO: once folded, the
    # tallies count them in BRAVO.
    c.execute("UPDATE jurisdiction SET parent_id = (SELECT id FROM jurisdiction"
              " WHERE code = 'BRAVOST') WHERE code = 'ALPHAC1'")
    fold_tallies(dsn)
    assert sum(seen_by("BRAVOST").values()) == issues_of("BRAVOST") == 5
    assert seen_by("ALPHAST") == {}
    assert _cell_counts(c) == district


def test_the_public_street_view_shares_the_street_offices_stored_overview(
        world: World, dsn: str) -> None:
    zone = Settings().zone
    bravo = world.conn.execute("SELECT id FROM jurisdiction WHERE code = 'BRAVOST'").fetchone()
    assert bravo is not None
    for p in (Period(), Period(datetime(2026, 5, 3, tzinfo=zone), datetime(2026, 6, 1,
                                                                          tzinfo=zone))):
        with psycopg.connect(dsn, autocommit=True) as office:
            scope.enter(office, int(str(bravo[0])))
            scoped = snapshots.for_scope(office, map_pages.overview_spec(p, zone)).key
        public = map_pages.overview_spec(p, zone, int(str(bravo[0]))).key
        assert public == scoped and scoped.startswith(f"street:{bravo[0]}:")


def test_street_results_are_stored_apart(world: World) -> None:
    scoped = world.client.get("/api/v1/scores", headers=world.bravo["viewer"])
    whole = world.client.get("/api/v1/scores", headers=world.whole)
    again = world.client.get("/api/v1/scores", headers=world.bravo["viewer"])
    assert scoped.status_code == whole.status_code == 200
    assert json.loads(again.text) == json.loads(scoped.text)
    assert not any(m in again.text for m in world.alpha_marks)


def test_street_tokens_are_checked_when_made(conn: psycopg.Connection[tuple[object, ...]]
                                              ) -> None:
    two_streets.build(conn)
    with pytest.raises(NotFound):
        tokens.create(conn, role="viewer", name="某人", street_code="NOSUCH")
    with pytest.raises(ValidationFailed, match="not a street"):
        tokens.create(conn, role="viewer", name="某人", street_code="ALPHAC1")
    with pytest.raises(ValidationFailed, match="--street"):
        tokens.create(conn, role="unit", unit_code="CA", name="某人", street_code="ALPHAST")
    made = tokens.create(conn, role="inspector", name="某人", street_code="ALPHAST")
    assert tokens.info(conn, made).street == "ALPHAST"


# Routes that answer the same to everyone (no street data, or public pages of the whole
# district: the public interfaces show every street's public fields, docs/access.md).
NOT_SCOPED = {
    "/health", "/maps/overview", "/maps/hotspots", "/maps/units/{unit}", "/maps/district",
    "/maps/revisions/preview/{token}", "/tiles/issues/{z}/{x}/{y}.mvt",
    "/api/v1/units", "/api/v1/units/{code}", "/api/v1/categories", "/api/v1/categories/{code}",
    "/api/v1/site-layers", "/api/v1/evidence/{ref}", "/api/v1/scores.xlsx",
    "/api/v1/accountability", "/api/v1/hotspots/emerging", "/api/v1/scores/streets",
    "/api/v1/inspections/{round_id}", "/api/v1/orders/{code}", "/api/v1/orders/{code}/print",
    "/api/v1/orders/{code}/xlsx", "/api/v1/revisions/{revision_id}",
    # Open311's reads take no token (the spec's are public): the public fields of every street.
    "/open311/v2/requests.{fmt}", "/open311/v2/requests/{service_request_id}.{fmt}",
    "/open311/v2/discovery.{fmt}", "/open311/v2/services.{fmt}",
    "/open311/v2/services/{service_code}.{fmt}", "/open311/v2/tokens/{token}.{fmt}",
    "/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/{collection_id}",
    "/report", "/units/{unit}/work", "/report.webmanifest", "/units/{unit}/work.webmanifest",
    "/field-sw.js", "/api/v1/subscriptions", "/api/v1/deliveries",
}


def test_every_data_route_is_checked(world: World) -> None:
    app = world.client.app
    assert isinstance(app, FastAPI)
    gets = {path for path, ops in app.openapi()["paths"].items() if "get" in ops}
    checked = set()
    for url in _reads(world):
        path = _route_of(url)
        matches = [g for g in gets if _matches(g, path)]
        assert matches, f"{url} is no route of the app"
        checked.update(matches)
    assert gets - checked - NOT_SCOPED == set()


def _matches(template: str, path: str) -> bool:
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    if len(t) != len(p):
        return False
    for a, b in zip(t, p, strict=True):
        if "{" in a:
            prefix, suffix = a.split("{")[0], a.split("}")[-1]
            if not (b.startswith(prefix) and b.endswith(suffix)):
                return False
        elif a != b:
            return False
    return True
