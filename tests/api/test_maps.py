"""The overview map page over the demo district, and its vendored Leaflet."""

from __future__ import annotations

import json
import math
import re
from functools import partial
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from layers.analysis import tallies
from layers.catalog import periods
from layers.db.settings import Settings

runner = CliRunner()


def shows(html: str, text: str) -> bool:
    """Whether the page carries ``text``, as HTML text or inside its JSON/JS (escaped)."""
    return text in html or json.dumps(text)[1:-1] in html


def overlays(html: str) -> list[str]:
    """The names of the layers a page's layer control offers to switch on and off."""
    block = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.DOTALL)
    assert block is not None
    return [json.loads(name) for name in re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:',
                                                    block.group(1), re.MULTILINE)]


def test_overview_shows_layers_in_chinese(demo_client: TestClient) -> None:
    response = demo_client.get("/maps/overview")
    assert response.status_code == 200
    html = response.text
    # Layer names as the layer control offers them (every community's own name contains
    # 社区, so finding the word somewhere in the page would prove nothing).
    assert {"街道", "社区", "网格", "农贸市场", "建筑工地", "老旧小区", "问题（单个）"} <= set(
        overlays(html))
    for label in ("责任单位", "最近巡查"):  # the site tooltips' field names
        assert shows(html, label)
    # No CDN: the page links only our own copy of Leaflet.
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "cdn.jsdelivr.net" not in html


def test_overview_in_english(demo_client: TestClient) -> None:
    html = demo_client.get("/maps/overview", params={"lang": "en"}).text
    names = overlays(html)
    assert {"Communities", "Construction site"} <= set(names), names
    assert not any(re.search("[\u4e00-\u9fff]", name) for name in names), names
    assert shows(html, "Last inspection") and shows(html, "Responsible unit")


def test_vendored_leaflet_is_served(demo_client: TestClient) -> None:
    response = demo_client.get("/static/vendor/leaflet/leaflet.js")
    assert response.status_code == 200
    assert "Leaflet" in response.text[:500]


def _tile_of(lon: float, lat: float, z: int = 16) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_issue_tiles_carry_public_fields_only_and_shift_for_gcj02(
        demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET reporter = 'SECRET-REPORTER', description ="
                     " 'SECRET-TEXT'")
        first = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM issue ORDER BY id"
                             " LIMIT 1").fetchone()
    assert first is not None
    lon, lat = first
    x, y = _tile_of(lon, lat)
    plain = demo_client.get(f"/tiles/issues/16/{x}/{y}.mvt")
    shifted = demo_client.get(f"/tiles/issues/16/{x}/{y}.mvt", params={"crs": "gcj02"})
    assert plain.status_code == 200 and plain.content
    assert plain.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert b"SECRET" not in plain.content and b"SW" in plain.content
    assert shifted.content != plain.content  # same issues, moved ~500 m
    empty = demo_client.get("/tiles/issues/16/0/0.mvt")
    assert empty.status_code == 200 and empty.content == b""


def test_bad_map_requests_are_problems_not_errors(demo_client: TestClient) -> None:
    for path, params in (("/tiles/issues/3/1/1.mvt", {}), ("/tiles/issues/16/70000/1.mvt", {}),
                         ("/tiles/issues/12/75415/8116995.mvt", {"crs": "gcj02"}),
                         ("/maps/overview", {"phase": "nope:2026"}),
                         ("/maps/overview", {"since": "2026-13-01"}),
                         ("/maps/overview", {"since": "2026-06-01", "until": "2026-05-01"}),
                         ("/maps/hotspots", {"phase": "nope:2026"}),
                         ("/maps/hotspots", {"since": "2026-13-01"}),
                         ("/maps/units/NOPE", {})):
        response = demo_client.get(path, params=params)
        assert response.status_code in (404, 422), (path, params, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_overview_counts_match_the_database(demo_client: TestClient, demo_dsn: str) -> None:
    from layers.supervision import scores
    from layers.views import mapviews

    with psycopg.connect(demo_dsn) as conn:
        p = periods.of_phase(conn, "consolidation", 2026, Settings().zone)
        cells = mapviews.issue_cells(conn, p)
        counted = conn.execute("SELECT count(*) FROM issue WHERE status NOT IN ('rejected',"
                               " 'duplicate') AND reported_at >= %s AND reported_at < %s",
                               [p.since, p.until]).fetchone()
        measures = mapviews.community_measures(conn, p)
        ranking = scores.ranking(conn, group="community", since=p.bounded[0],
                                 until=p.bounded[1])
    assert counted is not None
    assert all(sum(c.issues) == counted[0] for c in cells.values())
    lost = {r.code: r.points_lost for r in ranking}
    assert {m.code: m.points_lost for m in measures} == pytest.approx(lost)
    page = demo_client.get("/maps/overview", params={"phase": "consolidation:2026",
                                                     "lang": "en"})
    assert page.status_code == 200 and "2026 Consolidation" in page.text


def test_map_command_writes_standalone_pages(demo_dsn: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": demo_dsn, "SITEWATCH_DATA_DIR": str(tmp_path)}
    for args in (["--page", "overview"], ["--page", "hotspots", "--lang", "en"],
                 ["--page", "unit", "--unit", "C01"]):
        out = tmp_path / f"{args[1]}.html"
        result = runner.invoke(app, ["map", "--out", str(out), *args], env=env)
        assert result.exit_code == 0, result.output
        html = out.read_text(encoding="utf-8")
        assert 'src="/static' not in html and len(html) > 150_000  # Leaflet inlined
    bad = runner.invoke(app, ["map", "--out", str(tmp_path / "x.html"), "--page", "unit"],
                        env=env)
    assert bad.exit_code == 1


def test_pages_are_built_from_snapshots_refreshed_in_the_background(
        demo_client: TestClient, demo_dsn: str) -> None:
    from fastapi import FastAPI

    from api.services.map_pages import overview_spec
    from layers.analysis import snapshots

    def subtitle(path: str, lang: str = "en") -> str:
        page = demo_client.get(path, params={"lang": lang}).text
        found = re.search(r'<div id="sw-subtitle"[^>]*>(.*?)</div>', page)
        assert found is not None
        return found.group(1)

    first = subtitle("/maps/overview")
    assert "analysed 20" in first and "updating" not in first
    assert subtitle("/maps/hotspots").startswith("Period: All · analysed 20")
    counted = "SELECT count(*) FROM issue WHERE status NOT IN ('rejected', 'duplicate')"
    with psycopg.connect(demo_dsn) as conn:
        before = conn.execute(counted).fetchone()
        conn.execute("UPDATE issue SET status = 'rejected' WHERE id = (SELECT min(id)"
                     " FROM issue WHERE status = 'verified')")
        # Older than the minimum interval between two refreshes of one snapshot.
        conn.execute("UPDATE analysis_snapshot SET computed_at = now() - interval '1 minute'")
        conn.commit()
        tallies.fold(conn, Settings().zone)  # the worker's tally job
        after = conn.execute(counted).fetchone()
    assert before is not None and after is not None and after[0] == before[0] - 1
    # The first request after the change gets the stale snapshot and queues the refresh.
    assert subtitle("/maps/overview", "zh").endswith("（数据已变动，正在更新）")
    assert isinstance(demo_client.app, FastAPI)
    demo_client.app.state.snapshots.close()  # waits for the background refresh
    assert "updating" not in subtitle("/maps/overview")
    with psycopg.connect(demo_dsn) as conn:
        found = snapshots.read(conn, overview_spec(periods.Period(), Settings().zone).key)
    assert found is not None
    assert sum(found.payload["cells"]["8"]["issues"]) == after[0]


def test_refresher_prepares_every_landing_view(demo_client: TestClient, demo_dsn: str) -> None:
    from datetime import datetime

    from api.services.map_pages import landing_specs
    from layers.analysis import snapshots
    from layers.analysis.snapshots import Refresher
    from layers.catalog import phases

    zone = Settings().zone
    year = datetime.now(zone).year
    with psycopg.connect(demo_dsn) as conn:
        menu = phases.list_phases(conn, year)
    refresher = Refresher(snapshots.connector(demo_dsn), partial(landing_specs, zone=zone),
                          interval=0)
    # The overview of all time and of each phase; the hotspot page's Gi*, emerging, chronic.
    assert refresher.run_once() == 4 + len(menu) and len(menu) >= 3
    stored = "SELECT key, computed_at FROM analysis_snapshot ORDER BY key"
    with psycopg.connect(demo_dsn) as conn:
        before = conn.execute(stored).fetchall()
    for params in [{}, *({"phase": f"{p.code}:{year}"} for p in menu)]:
        assert demo_client.get("/maps/overview", params=params).status_code == 200
    assert demo_client.get("/maps/hotspots").status_code == 200
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute(stored).fetchall() == before  # every page came from a snapshot


def test_a_page_says_when_the_counts_are_behind_the_reports(
        demo_client: TestClient, demo_dsn: str) -> None:
    def subtitle(lang: str) -> str:
        page = demo_client.get("/maps/overview", params={"lang": lang}).text
        found = re.search(r'<div id="sw-subtitle"[^>]*>(.*?)</div>', page)
        assert found is not None
        return found.group(1)

    assert "尚未计入" not in subtitle("zh")
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET reported_at = reported_at - interval '1 minute'"
                     " WHERE id = (SELECT min(id) FROM issue WHERE status = 'assigned')")
        # The worker has not folded it for three minutes.
        conn.execute("UPDATE tally_journal SET at = now() - interval '3 minutes'")
    assert "统计于" in (zh := subtitle("zh")) and "（最近3分钟的上报尚未计入）" in zh
    assert "(reports of the last 3 min not counted yet)" in subtitle("en")
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        tallies.fold(conn, Settings().zone)
    assert "尚未计入" not in subtitle("zh")
