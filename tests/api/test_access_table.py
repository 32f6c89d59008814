"""docs/access.md is the contract: every row's request, as every kind of caller, against the app.

Each route label in the table has a recipe below that builds one request (making a fresh
target when the request consumes one: an issue to assign, a unit to delete). The test fails
when the app has a route the table does not list, when the table lists a route without a
recipe, or when any caller gets another status than the table says.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.app import create_app
from layers import vocab
from layers.auth import roles, tokens
from layers.catalog import jurisdictions
from layers.db.settings import Settings
from layers.supervision import orders

TABLE = Path(__file__).resolve().parents[2] / "docs" / "access.md"
CALLERS = ("anonymous", "viewer", "inspector", "unit: own", "unit: other", "supervisor",
           "admin")
INSIDE = (120.7002, 31.3105)  # a point inside the demo district
Request = tuple[str, str, dict[str, Any]]


ROLE_COLUMNS = ("viewer", "inspector", "unit", "supervisor", "admin")


def read_permission_table(text: str) -> dict[str, dict[str, str]]:
    """{permission: {role: "yes"|"no"|"own"}} from the table headed ``| permission |``."""
    rows: dict[str, dict[str, str]] = {}
    inside = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "permission":
            assert tuple(cells[1:]) == ROLE_COLUMNS, cells
            inside = True
        elif inside and not line.startswith("|"):
            break
        elif inside and cells[0].startswith("`"):
            rows[cells[0].split("`")[1]] = dict(zip(ROLE_COLUMNS, cells[1:], strict=True))
    return rows


def code_permission_table() -> dict[str, dict[str, str]]:
    """The same shape, from layers.auth.roles."""
    return {permission: {role: "own" if roles.own_only(role, permission)
                         else "yes" if roles.allows(role, permission) else "no"
                         for role in ROLE_COLUMNS}
            for permission in roles.PERMISSION_NAMES}


def read_table() -> list[tuple[str, dict[str, int]]]:
    """(label, {caller: status}) for every row of the main table."""
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(CALLERS) + 1 and cells[0].startswith("`"):
            rows.append((cells[0].replace("`", ""),
                         {who: int(code) for who, code in zip(CALLERS, cells[1:],
                                                             strict=True)}))
    return rows


def _route(label: str) -> tuple[str, str]:
    method, path = label.split()[:2]
    return method, path


@dataclass
class World:
    """The demo district plus the targets and tokens the recipes use."""

    conn: psycopg.Connection[Any]
    headers: dict[str, dict[str, str]]
    keys: dict[str, str]
    own_unit: str
    own_unit_id: int
    own_issue: str
    evidence_ref: str
    order_code: str
    round_id: int
    photo: bytes = b""
    market: str = ""
    ground: str = ""
    other_unit: str = ""
    revision: int = 0
    client: TestClient | None = None
    serial: Iterator[int] = field(default_factory=lambda: count(1))
    stops: Iterator[int] = field(default_factory=lambda: count(1))

    def fresh(self) -> int:
        return next(self.serial)

    def next_stop(self) -> int:
        """A stop of the round nobody has visited yet."""
        return next(self.stops)

    def own_upload(self, who: str) -> str:
        """A photo uploaded by ``who`` (a transition takes only the caller's own uploads);
        the admin's photo when ``who`` may not upload."""
        assert self.client is not None
        if who == "anonymous":  # refused anyway; spares the anonymous rate limit
            return self.evidence_ref
        uploaded = self.client.post("/api/v1/evidence", headers=self.headers[who], files={
            "file": ("after.jpg", self.photo, "image/jpeg")})
        return str(uploaded.json()["ref"]) if uploaded.status_code == 201 else self.evidence_ref

    def issue(self, status: str, *, deadline: str = "now() + interval '3 days'") -> str:
        """A new issue of the own unit in ``status``, version 1."""
        closed = "now()" if status == "verified" else "NULL"
        row = self.conn.execute(f"""
            INSERT INTO issue (category_code, geom, description, source, status, deadline,
                               lead_unit_id, territorial_unit_id, jurisdiction_id, closed_at)
            SELECT 'CTY-05', ST_SetSRID(ST_MakePoint(%s, %s), 4326), '测试问题',
                   'self_inspection', %s, {deadline}, %s, %s,
                   (SELECT id FROM jurisdiction WHERE level = 'grid' ORDER BY code LIMIT 1),
                   {closed}
            RETURNING public_id""",
            [*INSIDE, status, self.own_unit_id, self.own_unit_id]).fetchone()
        assert row is not None
        return str(row[0])


def _square(lon: float, lat: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat + 0.001],
            [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _fresh_unit(w: World) -> str:
    code = f"DEL{w.fresh()}"
    w.conn.execute("INSERT INTO unit (code, name, kind) VALUES (%s, %s, 'functional')",
                   [code, f"待删单位{code}"])
    return code


def _fresh_street(w: World) -> str:
    code = f"ZZ{w.fresh()}"
    w.conn.execute("INSERT INTO jurisdiction (code, name, level, geom) VALUES"
                   " (%s, '测试街道', 'street', ST_Multi(ST_GeomFromGeoJSON(%s)))",
                   [code, json.dumps(_square(120.727, 31.30))])
    return code


def _fresh_site(w: World) -> str:
    code = f"DS{w.fresh()}"
    w.conn.execute("INSERT INTO site (code, name, layer, geom) VALUES"
                   " (%s, '待删市场', 'market', ST_SetSRID(ST_MakePoint(121.9, 31.9), 4326))",
                   [code])
    return code


def _fresh_revision(w: World) -> int:
    """A revision that can be reverted: a new street added through the catalog."""
    code = f"RV{w.fresh()}"
    jurisdictions.create(w.conn, code=code, name="撤销用街道", level="street",
                         geometry=_square(120.727, 31.30), actor="test")
    row = w.conn.execute("SELECT max(id) FROM revision").fetchone()
    assert row is not None
    return int(row[0])


def _kept_preview(w: World) -> str:
    """A preview's map as an import's preview keeps it (layers.line_previews), drawing
    nothing."""
    token = secrets.token_urlsafe(32)
    payload = {"source": "grids.geojson", "table": "jurisdiction", "examined": 0,
               "changed": 0, "lead_changed": 0, "points_moved": 0.0, "units": [],
               "drawing": {"old_lines": [], "new_lines": [], "moves": [], "unit_names": {}}}
    w.conn.execute("INSERT INTO line_preview (token, created_by, payload)"
                   " VALUES (%s, 'test', %s)", [token, Jsonb(payload)])
    return token


def _fresh_subscription(w: World) -> int:
    row = w.conn.execute("INSERT INTO subscription (channel, target, created_by) VALUES"
                         " ('email', 'office@example.cn', 'test') RETURNING id").fetchone()
    assert row is not None
    return int(row[0])


def _dead_delivery(w: World) -> str:
    """A delivery that was given up (its test message failed), to retry."""
    row = w.conn.execute(
        "WITH o AS (INSERT INTO outbox (kind, payload) VALUES ('test', '{}') RETURNING id)"
        " INSERT INTO delivery (outbox_id, subscription_id, state, attempts, last_error)"
        " SELECT o.id, %s, 'dead', 1, 'HTTP 404' FROM o RETURNING id::text",
        [_fresh_subscription(w)]).fetchone()
    assert row is not None
    return str(row[0])


def _transition(action: str, status: str) -> Callable[[World, str], Request]:
    def build(w: World, who: str) -> Request:
        body: dict[str, Any] = {"action": action, "version": 1}
        if action == "rectify":
            body["evidence"] = [w.own_upload(who)]
        return "POST", f"/api/v1/issues/{w.issue(status)}/transitions", {"json": body}
    return build


def _geojson_file(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def _point(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Point", "coordinates": list(INSIDE)}}


def _open311_post(w: World, who: str) -> Request:
    form = {"service_code": "CTY-05", "long": str(INSIDE[0]), "lat": str(INSIDE[1])}
    if who in w.keys:
        form["api_key"] = w.keys[who]
    return "POST", "/open311/v2/requests.json", {"data": form}


def _get(path: str) -> Callable[[World, str], Request]:
    return lambda w, _: ("GET", path.format(w=w), {})


PERIOD = {"since": "2026-01-01T00:00:00+08:00", "until": "2027-01-01T00:00:00+08:00"}

RECIPES: dict[str, Callable[[World, str], Request]] = {
    "GET /health": _get("/health"),
    "GET /maps/overview": _get("/maps/overview"),
    "GET /maps/hotspots": _get("/maps/hotspots"),
    "GET /maps/district": _get("/maps/district"),
    "GET /maps/units/{unit}": _get("/maps/units/{w.own_unit}"),
    "GET /maps/revisions/preview/{token}": lambda w, _: (
        "GET", f"/maps/revisions/preview/{_kept_preview(w)}", {}),
    "GET /tiles/issues/{z}/{x}/{y}.mvt": _get("/tiles/issues/16/54740/26761.mvt"),
    "GET /api/v1/units": _get("/api/v1/units"),
    "GET /api/v1/units/{code}": _get("/api/v1/units/{w.own_unit}"),
    "POST /api/v1/units": lambda w, _: ("POST", "/api/v1/units", {"json": {
        "code": f"NEW{w.fresh()}", "name": f"新单位{w.fresh()}", "kind": "functional"}}),
    "PATCH /api/v1/units/{code}": lambda w, _: (
        "PATCH", f"/api/v1/units/{w.own_unit}", {"json": {"contact": "0512-0000000"}}),
    "DELETE /api/v1/units/{code}": lambda w, _: ("DELETE", f"/api/v1/units/{_fresh_unit(w)}",
                                                 {}),
    "GET /api/v1/categories": _get("/api/v1/categories"),
    "GET /api/v1/categories/{code}": _get("/api/v1/categories/MKT-01"),
    "POST /api/v1/categories": lambda w, _: ("POST", "/api/v1/categories", {"json": {
        "code": f"TST-{w.fresh():03d}", "name_zh": "测试类别", "name_en": "Test",
        "deadline_hours": 24, "points": 0.1}}),
    "PATCH /api/v1/categories/{code}": lambda w, _: (
        "PATCH", "/api/v1/categories/MKT-01", {"json": {"points": 0.25}}),
    "GET /api/v1/site-layers": _get("/api/v1/site-layers"),
    "POST /api/v1/site-layers": lambda w, _: ("POST", "/api/v1/site-layers", {"json": {
        "code": f"layer_{w.fresh()}", "name_zh": "测试图层", "name_en": "Test layer"}}),
    "PATCH /api/v1/site-layers/{code}": lambda w, _: (
        "PATCH", "/api/v1/site-layers/market", {"json": {"public_attributes": ["stalls"]}}),
    "GET /api/v1/jurisdictions": _get("/api/v1/jurisdictions"),
    "GET /api/v1/jurisdictions/{code}": _get("/api/v1/jurisdictions/{w.ground}"),
    "POST /api/v1/jurisdictions": lambda w, _: ("POST", "/api/v1/jurisdictions", {"json": {
        # Beside the demo district: a street 100 km away would make the district's extent,
        # and so every hotspot grid over it, too large for the analysis budget.
        "type": "Feature", "geometry": _square(120.725, 31.30),
        "properties": {"code": f"NS{w.fresh()}", "name": "新街道", "level": "street"}}}),
    "PATCH /api/v1/jurisdictions/{code}": lambda w, _: (
        "PATCH", f"/api/v1/jurisdictions/{_fresh_street(w)}",
        {"json": {"properties": {"name": "改名街道"}}}),
    "DELETE /api/v1/jurisdictions/{code}": lambda w, _: (
        "DELETE", f"/api/v1/jurisdictions/{_fresh_street(w)}", {}),
    "GET /api/v1/sites": _get("/api/v1/sites"),
    "GET /api/v1/sites/{code}": _get("/api/v1/sites/{w.market}"),
    "POST /api/v1/sites": lambda w, _: ("POST", "/api/v1/sites", {"json": {
        "type": "Feature", "geometry": _square(120.715, 31.295),
        "properties": {"code": f"NM{w.fresh()}", "name": "新市场", "layer": "market"}}}),
    "PATCH /api/v1/sites/{code}": lambda w, _: (
        "PATCH", f"/api/v1/sites/{_fresh_site(w)}", {"json": {"properties": {"name": "改名"}}}),
    "DELETE /api/v1/sites/{code}": lambda w, _: ("DELETE", f"/api/v1/sites/{_fresh_site(w)}",
                                                 {}),
    "GET /api/v1/issues": _get("/api/v1/issues?limit=5"),
    "POST /api/v1/issues": lambda w, _: ("POST", "/api/v1/issues", {"json": {
        "category": "CTY-05", "lon": INSIDE[0], "lat": INSIDE[1], "description": "暴露垃圾"}}),
    "GET /api/v1/issues/{public_id}": _get("/api/v1/issues/{w.own_issue}"),
    "GET /api/v1/issues/{public_id} as_of": _get("/api/v1/issues/{w.own_issue}?as_of=reported"),
    "GET /api/v1/issues/{public_id}/events": _get("/api/v1/issues/{w.own_issue}/events"),
    "POST /api/v1/issues/{public_id}/transitions assign": _transition("assign", "reported"),
    "POST /api/v1/issues/{public_id}/transitions rectify": _transition("rectify", "assigned"),
    "POST /api/v1/issues/{public_id}/transitions verify": _transition("verify", "rectified"),
    "GET /api/v1/checks/jurisdictions": _get("/api/v1/checks/jurisdictions"),
    "POST /api/v1/evidence": lambda w, _: ("POST", "/api/v1/evidence", {
        "files": {"file": ("after.jpg", w.photo, "image/jpeg")}}),
    "GET /api/v1/evidence/{ref}": _get("/api/v1/evidence/{w.evidence_ref}"),
    "GET /api/v1/evidence/{ref} original": _get(
        "/api/v1/evidence/{w.evidence_ref}?original=true"),
    "POST /api/v1/imports sites": lambda w, _: ("POST", "/api/v1/imports", {
        "data": {"kind": "sites", "layer": "market"},
        "files": {"file": ("sites.geojson", _geojson_file(_point(
            {"code": f"IM{w.fresh()}", "name": "导入市场"})))}}),
    "POST /api/v1/imports issues": lambda w, _: ("POST", "/api/v1/imports", {
        "data": {"kind": "issues"},
        "files": {"file": ("issues.geojson", _geojson_file(_point(
            {"category": "CTY-05", "description": "导入问题"})))}}),
    "GET /api/v1/exports/{layer}": _get("/api/v1/exports/market?format=geojson"),
    "GET /api/v1/scores": _get("/api/v1/scores"),
    "GET /api/v1/scores.xlsx": _get("/api/v1/scores.xlsx"),
    "GET /api/v1/scores/phases": _get("/api/v1/scores/phases?year=2026"),
    "GET /api/v1/scores/handovers": _get("/api/v1/scores/handovers"),
    "GET /api/v1/scores/streets": _get("/api/v1/scores/streets?phase=attack&year=2026"),
    "GET /api/v1/accountability": lambda w, _: ("GET", "/api/v1/accountability", {
        "params": {"unit": w.own_unit, **PERIOD}}),
    "GET /api/v1/inspections": _get("/api/v1/inspections"),
    "POST /api/v1/inspections": lambda w, _: ("POST", "/api/v1/inspections", {"json": {
        "size": 6, "seed": 7, "planned_for": str(date(2027, 1, 1)
                                                 + timedelta(days=10 * w.fresh()))}}),
    "GET /api/v1/inspections/{round_id}": _get("/api/v1/inspections/{w.round_id}"),
    "POST /api/v1/inspections/{round_id}/stops/{seq}/visit": lambda w, _: (
        "POST", f"/api/v1/inspections/{w.round_id}/stops/{w.next_stop()}/visit", {}),
    "POST /api/v1/inspections/{round_id}/findings": lambda w, _: (
        "POST", f"/api/v1/inspections/{w.round_id}/findings", {"json": {"findings": [
            {"category": "CTY-05", "lon": INSIDE[0], "lat": INSIDE[1],
             "description": "巡查发现暴露垃圾"}]}}),
    "GET /api/v1/orders": _get("/api/v1/orders"),
    "POST /api/v1/orders": lambda w, _: (w.issue("assigned") and "POST", "/api/v1/orders",
                                         {"json": {"unit": w.own_unit}}),
    "POST /api/v1/orders/escalate": lambda w, _: (
        w.issue("assigned", deadline="now() - interval '1 hour'") and "POST",
        "/api/v1/orders/escalate", {"json": {"unit": w.own_unit}}),
    "GET /api/v1/orders/{code}": _get("/api/v1/orders/{w.order_code}"),
    "GET /api/v1/orders/{code}/print": _get("/api/v1/orders/{w.order_code}/print"),
    "GET /api/v1/orders/{code}/xlsx": _get("/api/v1/orders/{w.order_code}/xlsx"),
    "POST /api/v1/orders/{code}/acknowledge": lambda w, _: (
        "POST", f"/api/v1/orders/{w.order_code}/acknowledge", {}),
    "GET /api/v1/hotspots": _get("/api/v1/hotspots"),
    "GET /api/v1/hotspots/emerging": _get("/api/v1/hotspots/emerging"),
    "GET /api/v1/sites/chronic": _get("/api/v1/sites/chronic"),
    "GET /open311/v2/discovery.{fmt}": _get("/open311/v2/discovery.json"),
    "GET /open311/v2/services.{fmt}": _get("/open311/v2/services.xml"),
    "GET /open311/v2/services/{service_code}.{fmt}": _get("/open311/v2/services/MKT-01.json"),
    "POST /open311/v2/requests.{fmt}": _open311_post,
    "GET /open311/v2/requests.{fmt}": _get("/open311/v2/requests.json"),
    "GET /open311/v2/requests/{service_request_id}.{fmt}": _get(
        "/open311/v2/requests/{w.own_issue}.json"),
    "GET /open311/v2/tokens/{token}.{fmt}": _get("/open311/v2/tokens/{w.own_issue}.json"),
    "GET /ogc/": _get("/ogc/"),
    "GET /ogc/conformance": _get("/ogc/conformance"),
    "GET /ogc/collections": _get("/ogc/collections"),
    "GET /ogc/collections/{collection_id}": _get("/ogc/collections/issues"),
    "GET /ogc/collections/{collection_id}/items": _get("/ogc/collections/issues/items"),
    "GET /ogc/collections/{collection_id}/items/{feature_id}": _get(
        "/ogc/collections/issues/items/{w.own_issue}"),
    "GET /report": _get("/report"),
    "GET /units/{unit}/work": _get("/units/{w.own_unit}/work"),
    "GET /report.webmanifest": _get("/report.webmanifest"),
    "GET /units/{unit}/work.webmanifest": _get("/units/{w.own_unit}/work.webmanifest"),
    "GET /field-sw.js": _get("/field-sw.js"),
    "GET /api/v1/field/nearby": _get(f"/api/v1/field/nearby?lon={INSIDE[0]}&lat={INSIDE[1]}"),
    "POST /api/v1/subscriptions": lambda w, _: ("POST", "/api/v1/subscriptions", {"json": {
        "unit": w.own_unit, "channel": "email", "target": "office@example.cn"}}),
    "GET /api/v1/subscriptions": _get("/api/v1/subscriptions"),
    "DELETE /api/v1/subscriptions/{subscription_id}": lambda w, _: (
        "DELETE", f"/api/v1/subscriptions/{_fresh_subscription(w)}", {}),
    "GET /api/v1/deliveries": _get("/api/v1/deliveries?state=dead"),
    "POST /api/v1/deliveries/{delivery_id}/retry": lambda w, _: (
        "POST", f"/api/v1/deliveries/{_dead_delivery(w)}/retry", {}),
    "GET /api/v1/revisions": _get("/api/v1/revisions"),
    "GET /api/v1/revisions/{revision_id}": _get("/api/v1/revisions/{w.revision}?limit=10"),
    "POST /api/v1/revisions/{revision_id}/revert": lambda w, _: (
        "POST", f"/api/v1/revisions/{_fresh_revision(w)}/revert", {"json": {"note": "撤销"}}),
}


@pytest.fixture
def world(demo_dsn: str, tmp_path: Path, jpeg: Callable[..., bytes]) -> Iterator[
        tuple[TestClient, World]]:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        pair = conn.execute("""
            SELECT u.code, (SELECT code FROM unit WHERE id <> u.id AND kind = 'territorial'
                            ORDER BY code LIMIT 1)
            FROM unit u WHERE u.kind = 'territorial' ORDER BY u.code LIMIT 1""").fetchone()
        assert pair is not None
        own, other = pair
        own_id = conn.execute("SELECT id FROM unit WHERE code = %s", [own]).fetchone()
        assert own_id is not None
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        keys: dict[str, str] = {}
        for who in CALLERS[1:]:
            role = "unit" if who.startswith("unit") else who
            unit = own if who == "unit: own" else other if who == "unit: other" else None
            keys[who] = tokens.create(conn, role=role, unit_code=unit, name=who)
            headers[who] = {"Authorization": f"Bearer {keys[who]}"}
        world = World(conn=conn, headers=headers, keys=keys, own_unit=own,
                      own_unit_id=int(own_id[0]), own_issue="", evidence_ref="",
                      order_code="", round_id=0)
        world.own_issue = world.issue("assigned")
        world.other_unit = other
        world.photo = jpeg()
        revision = conn.execute("INSERT INTO revision (actor, kind, source) VALUES"
                                " ('test', 'import', 'grids.geojson') RETURNING id").fetchone()
        assert revision is not None
        world.revision = int(revision[0])
        # Every row is sent as an anonymous caller from one address: lift the anonymous rate
        # limit (its own tests are in tests/api/test_guards.py and tests/hostile).
        with TestClient(create_app(Settings(database_url=demo_dsn, data_dir=tmp_path,
                                            keep_original_photos=True,
                                            anonymous_rate="100000/minute"))) as client:
            world.client = client
            uploaded = client.post("/api/v1/evidence", headers=headers["admin"], files={
                "file": ("before.jpg", jpeg(lon=INSIDE[0], lat=INSIDE[1]), "image/jpeg")})
            assert uploaded.status_code == 201, uploaded.text
            world.evidence_ref = uploaded.json()["ref"]
            conn.execute("UPDATE issue SET photos = jsonb_build_array(%s::text)"
                         " WHERE public_id = %s", [world.evidence_ref, world.own_issue])
            world.order_code = orders.issue_orders(
                conn, orders.Issuer("督查组", "supervisor"), unit=own)[0].code
            planned = client.post("/api/v1/inspections", headers=headers["admin"],
                                  json={"size": 12, "seed": 1, "planned_for": "2026-12-01"})
            assert planned.status_code == 201, planned.text
            world.round_id = int(planned.json()["round"]["id"])
            market = conn.execute("SELECT code FROM site WHERE layer = 'market'"
                                  " ORDER BY code LIMIT 1").fetchone()
            ground = conn.execute("SELECT code FROM jurisdiction WHERE level = 'community'"
                                  " ORDER BY code LIMIT 1").fetchone()
            assert market is not None and ground is not None
            world.market, world.ground = market[0], ground[0]
            yield client, world


def test_the_table_lists_every_route_of_the_app(world: tuple[TestClient, World]) -> None:
    client, _ = world
    assert isinstance(client.app, FastAPI)
    spec = client.app.openapi()
    operations = {(method.upper(), path) for path, ops in spec["paths"].items()
                  for method in ops}
    listed = {_route(label) for label, _ in read_table()}
    assert operations - listed == set(), "routes missing from docs/access.md"
    assert listed - operations == set(), "docs/access.md lists routes the app does not have"
    assert {label for label, _ in read_table()} == set(RECIPES)


def test_every_caller_gets_what_the_table_says(world: tuple[TestClient, World]) -> None:
    client, w = world
    wrong = []
    for label, expected in read_table():
        for who in CALLERS:
            method, url, kwargs = RECIPES[label](w, who)
            response = client.request(method, url, headers=w.headers[who], **kwargs)
            if response.status_code != expected[who]:
                wrong.append(f"{label} as {who}: {response.status_code}, expected "
                             f"{expected[who]} ({response.text[:160]})")
    assert wrong == []


def test_personal_data_and_own_orders_by_role(world: tuple[TestClient, World]) -> None:
    client, w = world
    w.conn.execute("UPDATE issue SET reporter = '王小明', reporter_contact = '13800000000'"
                   " WHERE public_id = %s", [w.own_issue])
    orders.issue_orders(w.conn, orders.Issuer("督查组", "supervisor"))
    for who in CALLERS[1:]:
        issue = client.get(f"/api/v1/issues/{w.own_issue}", headers=w.headers[who]).json()
        feature = client.get(f"/ogc/collections/issues/items/{w.own_issue}",
                             headers=w.headers[who]).json()
        sees = who in ("supervisor", "admin")
        assert (issue["properties"]["reporter"] == "王小明") is sees, who
        assert (feature["properties"].get("reporter_contact") == "13800000000") is sees, who
        listed = client.get("/api/v1/orders", params={"limit": 500},
                            headers=w.headers[who]).json()
        units = {o["unit"] for o in listed["orders"]}
        if who.startswith("unit"):  # its own orders, whatever else exists
            assert units == {w.own_unit if who == "unit: own" else w.other_unit}, who
        else:
            assert len(units) > 1, who
    anonymous = client.get(f"/ogc/collections/issues/items/{w.own_issue}").json()
    assert "reporter" not in anonymous["properties"]


def _field_row(starts: str) -> dict[str, bool]:
    """{caller: shown} from the row of the field table that starts with ``starts``."""
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].startswith(starts):
            return {who: cell == "yes" for who, cell in zip(CALLERS, cells[1:], strict=True)}
    raise AssertionError(f"docs/access.md has no field row {starts!r}")


def test_photos_by_role_as_the_table_says(world: tuple[TestClient, World]) -> None:
    client, w = world
    shown = _field_row("photos")
    for who in CALLERS[1:]:
        issue = client.get(f"/api/v1/issues/{w.own_issue}", headers=w.headers[who]).json()
        listed = client.get("/api/v1/issues", params={"unit": w.own_unit, "limit": 1000},
                            headers=w.headers[who]).json()
        [mine] = [f for f in listed["features"] if f["id"] == w.own_issue]
        expected = [w.evidence_ref] if shown[who] else []
        assert issue["properties"]["photos"] == expected, who
        assert mine["properties"]["photos"] == expected, who
    assert not shown["anonymous"]
    request = client.get(f"/open311/v2/requests/{w.own_issue}.json").json()[0]
    feature = client.get(f"/ogc/collections/issues/items/{w.own_issue}").json()
    assert request["media_url"] is None and "photos" not in feature["properties"]


def test_the_role_table_in_code_and_docs_agree() -> None:
    documented = read_permission_table(TABLE.read_text(encoding="utf-8"))
    assert documented, "docs/access.md has no '| permission |' table"
    assert documented == code_permission_table()


def test_a_role_changed_on_one_side_only_is_caught() -> None:
    # The comparison must notice a single cell: drop the inspector's right to report.
    text = TABLE.read_text(encoding="utf-8").replace(
        "| `report` an issue (`POST /api/v1/issues`, Open311 `POST requests`) | no | yes |",
        "| `report` an issue (`POST /api/v1/issues`, Open311 `POST requests`) | no | no |")
    assert read_permission_table(text) != code_permission_table()


def test_the_role_table_names_every_permission_once_with_known_roles() -> None:
    assert set(roles.PERMISSIONS) == set(roles.PERMISSION_NAMES)
    assert {r for held in roles.PERMISSIONS.values() for r in held} <= set(vocab.ROLES)
    unit_holds = {p for p, held in roles.PERMISSIONS.items() if "unit" in held}
    assert roles.UNIT_OWN_ONLY.issubset(unit_holds)
