"""The district's time zone has one home, ``Settings.timezone`` (``SITEWATCH_TIMEZONE``), and it
drives the working-day deadline (SQL), campaign phases, local days and the times pages show.

The test cluster's own default TimeZone is the settings' default, Asia/Shanghai (conftest); the
tests here set Europe/Berlin, six or seven hours behind and with summer time, so a rule still
reading Asia/Shanghai anywhere (a constant, the SQL, a connection that does not set its
session's zone) moves a result by hours or a day and fails them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli.main import app as cli
from layers.assignment import load_assigner
from layers.db import database
from layers.db.settings import Settings
from layers.issues import records
from maps.assets import STATIC_DIR
from tests.conftest import fold_tallies

BERLIN = ZoneInfo("Europe/Berlin")
SQUARE = "ST_Multi(ST_GeomFromText('POLYGON((120 31, 121 31, 121 32, 120 32, 120 31))', 4326))"
LON, LAT = 120.7, 31.3


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> ZoneInfo:
    """The district's zone set to Europe/Berlin through the environment, as a user would."""
    monkeypatch.setenv("SITEWATCH_TIMEZONE", "Europe/Berlin")
    assert Settings().zone == BERLIN
    return BERLIN


@pytest.fixture
def ground(dsn: str) -> str:
    """A street with one community (unit A) and CTY-05 due in one working day."""
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('A', '湖东社区', 'territorial')")
        conn.execute(f"""
            INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)
            VALUES ('S', '街道', 'street', NULL, NULL, {SQUARE});
            INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)
            SELECT 'M1', '湖东社区', 'community', id, (SELECT id FROM unit WHERE code = 'A'),
                   {SQUARE} FROM jurisdiction WHERE code = 'S';""")
        conn.execute("UPDATE category SET deadline_working_days = 1 WHERE code = 'CTY-05'")
    return dsn


@pytest.fixture
def app_client(ground: str, berlin: ZoneInfo, tmp_path: Path,
               bearer_for: Callable[..., dict[str, str]]) -> Iterator[TestClient]:
    """The app built from the environment's settings (Berlin), signed in as a viewer."""
    settings = Settings(database_url=ground, data_dir=tmp_path)
    with TestClient(create_app(settings), headers=bearer_for(ground, "viewer")) as client:
        yield client


def _report(client: TestClient, *local_times: str) -> None:
    """CTY-05 issues reported at these local (Berlin) wall-clock times, through the app's own
    pool: its sessions must compute in the configured zone."""
    issues = [records.NewIssue(category="CTY-05", lon=LON, lat=LAT, description="暴露垃圾",
                               reported_at=datetime.fromisoformat(t).replace(tzinfo=BERLIN))
              for t in local_times]
    assert isinstance(client.app, FastAPI)  # the client's app is typed as any ASGI app
    pool: Any = client.app.state.pool
    with pool.connection() as conn:
        records.create_many(conn, load_assigner(conn), issues, actor="t",
                            actor_role="inspector")


def _deadlines(dsn: str) -> dict[datetime, datetime]:
    """Each issue's deadline by its report time, both as UTC instants."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT reported_at, deadline FROM issue").fetchall()
    return {r.astimezone(UTC): d.astimezone(UTC) for r, d in rows}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Friday evening in Berlin is Saturday 02:00 in Shanghai: the next working day is Monday in
# Berlin's calendar, Monday 02:00 (Sunday 20:00 in Berlin) in Shanghai's. Friday 27 March
# 09:00 + 1 working day is Monday 09:00 local, across the switch to summer time (29 March).
EXPECTED = {
    _at("2026-05-08T20:00:00+02:00"): _at("2026-05-11T20:00:00+02:00"),
    _at("2026-03-27T09:00:00+01:00"): _at("2026-03-30T09:00:00+02:00"),
}


def test_app_sessions_compute_working_day_deadlines_in_the_configured_zone(
        app_client: TestClient, ground: str) -> None:
    _report(app_client, "2026-05-08T20:00", "2026-03-27T09:00")
    assert _deadlines(ground) == EXPECTED


def test_cli_reads_naive_times_and_sets_deadlines_in_the_configured_zone(
        ground: str, berlin: ZoneInfo, tmp_path: Path) -> None:
    sheet = tmp_path / "issues.csv"
    sheet.write_text("category,description,lon,lat,reported_at\n"
                     f"CTY-05,暴露垃圾,{LON},{LAT},2026-05-08 20:00\n"
                     f"CTY-05,暴露垃圾,{LON},{LAT},2026-03-27 09:00\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", "issues", str(sheet)],
                                env={"DATABASE_URL": ground})
    assert result.exit_code == 0, result.output
    assert _deadlines(ground) == EXPECTED


def test_every_connection_sitewatch_opens_keeps_the_configured_zone(
        ground: str, berlin: ZoneInfo) -> None:
    # The CLI, migrations, backups and snapshot refreshers connect with this conninfo.
    with database.connect(Settings(database_url=ground)) as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == ("Europe/Berlin",)
    # Options a DATABASE_URL already carries are kept beside it.
    url = f"{ground} options='-c statement_timeout=5s'"
    with psycopg.connect(database.conninfo(Settings(database_url=url))) as conn:
        assert conn.execute("SELECT current_setting('TimeZone'),"
                            " current_setting('statement_timeout')").fetchone() == (
            "Europe/Berlin", "5s")


def _tile(client: TestClient, **params: str) -> bytes:
    """The z14 vector tile holding the issues' point (its strings are readable as bytes)."""
    z = 14
    x = int((LON + 180) / 360 * 2**z)
    lat = math.radians(LAT)
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * 2**z)
    response = client.get(f"/tiles/issues/{z}/{x}/{y}.mvt", params=params)
    assert response.status_code == 200
    return response.content


def test_phase_boundaries_fall_at_local_midnight_of_the_configured_zone(
        app_client: TestClient, ground: str) -> None:
    # Berlin: Apr 30 20:00 is before the attack phase (May-June), Jun 30 20:00 and 23:30 are
    # inside it. Shanghai's midnight comes six hours earlier and moves all three.
    _report(app_client, "2026-04-30T20:00", "2026-05-01T00:30", "2026-06-30T20:00",
            "2026-06-30T23:30")
    tile = _tile(app_client, phase="attack", year="2026")
    shown = set(re.findall(rb"2026-\d\d-\d\d \d\d:\d\d", tile))
    assert shown == {b"2026-05-01 00:30", b"2026-06-30 20:00", b"2026-06-30 23:30",
                     b"2026-05-04 00:30", b"2026-07-01 20:00", b"2026-07-01 23:30"}
    fold_tallies(ground)  # the worker's tally job, in the configured zone (Settings())
    [m1] = app_client.get("/api/v1/scores", params={"group": "community", "phase": "attack",
                                                    "year": "2026"}).json()
    assert (m1["code"], m1["issues"]) == ("M1", 3)


def test_local_days_of_a_period_are_the_configured_zones(app_client: TestClient) -> None:
    _report(app_client, "2026-05-10T23:30", "2026-05-11T00:30")
    tile = _tile(app_client, since="2026-05-11", until="2026-05-11")
    assert b"2026-05-11 00:30" in tile and b"2026-05-10 23:30" not in tile


def test_pages_show_times_in_the_configured_zone(app_client: TestClient) -> None:
    _report(app_client, "2026-05-08T20:00")
    # The unit's map page: the deadline in its popup, Monday 20:00 in Berlin.
    page = app_client.get("/maps/units/A").text
    assert "2026-05-11 20:00" in page and "2026-05-12 02:00" not in page
    # The field pages' script formats times in the zone the page names, not the phone's.
    for path in ("/report", "/units/A/work"):
        assert 'data-timezone="Europe/Berlin"' in app_client.get(path).text
    script = (STATIC_DIR / "field" / "common.js").read_text(encoding="utf-8")
    assert "timeZone: document.documentElement.dataset.timezone" in script
    assert not re.search(r"timeZone:\s*[\"']", script)


def test_photo_times_without_a_zone_are_local_to_the_district(
        app_client: TestClient, jpeg: Callable[..., bytes],
        bearer_for: Callable[..., dict[str, str]]) -> None:
    assert isinstance(app_client.app, FastAPI)  # the client's app is typed as any ASGI app
    dsn = app_client.app.state.settings.database_url
    photo = jpeg(lon=LON, lat=LAT, taken=datetime(2026, 5, 3, 9, 30))
    response = app_client.post("/api/v1/evidence", files={"file": ("p.jpg", photo)},
                               headers=bearer_for(dsn, "inspector"))
    assert response.status_code == 201, response.text
    assert response.json()["taken_at"] == "2026-05-03T09:30:00+02:00"


def test_an_unknown_zone_is_refused_when_the_settings_are_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings()
