"""Hostile uploads to ``POST /api/v1/imports`` and sites placed far outside the district.

Each file below is what an attacker holding a supervisor (or admin) token can upload. GDAL picks
a driver from the content, not the suffix, so a "GeoJSON" can be a VRT or a GDAL pipeline that
reads any file the server can read, or fetches URLs. The "server file" is a CSV written to the
test's temp folder, shaped so that an import of it would succeed or echo its cells: a refusal
without the secret in the answer and nothing stored proves the server file was not read.
"""

from __future__ import annotations

import http.server
import io
import json
import sqlite3
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

SECRET = "TOPSECRET-4711"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def server_file(tmp_path: Path) -> Path:
    """A file on the server the uploader must never see: rows an import would accept."""
    path = tmp_path / "secret.csv"
    path.write_text("name,layer,category,description,lon,lat\n"
                    f"{SECRET},market,{SECRET},{SECRET},120.70,31.31\n")
    return path


@pytest.fixture
def http_hits() -> Iterator[tuple[int, list[str]]]:
    """A web server on 127.0.0.1: its port and the paths it was asked for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def do_HEAD(self) -> None:
            self.do_GET()

        def log_message(self, *args: object) -> None:
            """Quiet: the test reads the hits, not the server's request log."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()
    thread.join()


def _vrt(source: str) -> bytes:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="secret"><SrcDataSource>{source}'
            '</SrcDataSource><GeometryType>wkbPoint</GeometryType><LayerSRS>EPSG:4326'
            '</LayerSRS><GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
            '</OGRVRTLayer></OGRVRTDataSource>').encode()


def _post(client: TestClient, headers: dict[str, str], name: str, content: bytes,
          kind: str = "issues") -> tuple[int, str]:
    response = client.post("/api/v1/imports", data={"kind": kind}, headers=headers,
                           files={"file": (name, content)})
    return response.status_code, response.text


def _stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM issue) + (SELECT count(*) FROM site)"
                           ).fetchone()
    assert row is not None
    return int(row[0])


def _assert_refused(status: int, text: str, dsn: str) -> None:
    assert status == 422, text
    assert SECRET not in text
    assert _stored(dsn) == 0


@pytest.mark.parametrize("name", ["x.geojson", "x.json", "x.gpkg", "x.kml"])
def test_a_vrt_under_a_gis_suffix_does_not_read_server_files(
        client: TestClient, dsn: str, bearer_for: Headers, server_file: Path, name: str) -> None:
    status, text = _post(client, bearer_for(dsn, "supervisor"), name,
                         _vrt(f"CSV:{server_file}"))
    _assert_refused(status, text, dsn)


def test_a_vrt_reading_etc_passwd_is_refused_without_echo(
        client: TestClient, dsn: str, bearer_for: Headers) -> None:
    # Every line of /etc/passwd becomes an issue whose unknown category the 422 would quote.
    source = (b'<OGRVRTDataSource><OGRVRTLayer name="p"><SrcDataSource>CSV:/etc/passwd'
              b'</SrcDataSource><OpenOptions><OOI key="HEADERS">NO</OOI></OpenOptions>'
              b"<SrcSQL>SELECT field_1 AS category, field_1 AS description,"
              b" 'POINT (120.7 31.31)' AS wkt FROM passwd</SrcSQL><GeometryType>wkbPoint"
              b'</GeometryType><LayerSRS>EPSG:4326</LayerSRS><GeometryField encoding="WKT"'
              b' field="wkt"/></OGRVRTLayer></OGRVRTDataSource>')
    status, text = _post(client, bearer_for(dsn, "supervisor"), "p.geojson", source)
    assert status == 422, text
    assert "root:x:0:0" not in text


def test_a_vrt_pointing_at_a_url_sends_no_request(
        client: TestClient, dsn: str, bearer_for: Headers,
        http_hits: tuple[int, list[str]]) -> None:
    port, hits = http_hits
    content = _vrt(f"CSV:/vsicurl/http://127.0.0.1:{port}/secret.csv")
    status, text = _post(client, bearer_for(dsn, "supervisor"), "x.geojson", content)
    assert status == 422, text
    assert hits == []


def test_a_gdal_pipeline_disguised_as_geojson_does_not_read_server_files(
        client: TestClient, dsn: str, bearer_for: Headers, server_file: Path) -> None:
    # JSON that starts with "{" like any GeoJSON, but GDAL's GDALG driver runs it.
    content = json.dumps({
        "type": "gdal_streamed_alg", "relative_paths_relative_to_this_file": False,
        "command_line": "gdal vector pipeline ! read --oo X_POSSIBLE_NAMES=lon "
                        f"--oo Y_POSSIBLE_NAMES=lat {server_file} ! edit --crs EPSG:4326"})
    status, text = _post(client, bearer_for(dsn, "supervisor"), "x.geojson", content.encode())
    _assert_refused(status, text, dsn)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _shapefile_members(tmp_path: Path, stem: str = "sites") -> dict[str, bytes]:
    frame = gpd.GeoDataFrame({"name": ["a"], "layer": ["market"]},
                             geometry=[shapely.Point(120.7, 31.31)], crs="EPSG:4326")
    frame.to_file(tmp_path / f"{stem}.shp")
    return {f"{stem}.{ext}": (tmp_path / f"{stem}.{ext}").read_bytes()
            for ext in ("shp", "shx", "dbf", "prj")}


def test_a_zip_whose_shp_is_a_vrt_does_not_read_server_files(
        client: TestClient, dsn: str, bearer_for: Headers, server_file: Path,
        tmp_path: Path) -> None:
    members = _shapefile_members(tmp_path)
    members["sites.shp"] = _vrt(f"CSV:{server_file}")
    status, text = _post(client, bearer_for(dsn, "supervisor"), "x.zip", _zip(members))
    _assert_refused(status, text, dsn)


def test_a_shapefile_zip_holding_a_vrt_is_refused(
        client: TestClient, dsn: str, bearer_for: Headers, server_file: Path,
        tmp_path: Path) -> None:
    members = {**_shapefile_members(tmp_path), "more.vrt": _vrt(f"CSV:{server_file}")}
    status, text = _post(client, bearer_for(dsn, "admin"), "x.zip", _zip(members), "sites")
    assert status == 422, text
    assert "more.vrt" in text
    assert _stored(dsn) == 0


@pytest.mark.parametrize("bad", ["../sites.cpg", "/etc/sites.cpg", "/vsicurl/sites.cpg"])
def test_a_zip_member_name_leaving_the_archive_is_refused(
        client: TestClient, dsn: str, bearer_for: Headers, tmp_path: Path, bad: str) -> None:
    members = {**_shapefile_members(tmp_path), bad: b"UTF-8"}
    status, text = _post(client, bearer_for(dsn, "admin"), "x.zip", _zip(members), "sites")
    assert status == 422, text
    assert "member name" in text
    assert _stored(dsn) == 0


def test_a_plain_sqlite_database_is_not_a_geopackage(
        client: TestClient, dsn: str, bearer_for: Headers, tmp_path: Path) -> None:
    # GDAL would open it with its SQLite driver, which is not the one .gpkg names.
    path = tmp_path / "plain.sqlite"
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE t (name TEXT, layer TEXT, wkt TEXT)")
        db.execute("INSERT INTO t VALUES ('a', 'market', 'POINT (120.7 31.31)')")
    db.close()
    status, text = _post(client, bearer_for(dsn, "admin"), "x.gpkg", path.read_bytes(), "sites")
    assert status == 422, text
    assert _stored(dsn) == 0


def test_a_quoted_cell_in_an_import_error_is_short_and_escaped(
        client: TestClient, dsn: str, bearer_for: Headers) -> None:
    cell = "\x1b[31m" + "9" * 5000 + "\r\nforged: line"
    content = f'category,description,lon,lat\nroad,x,"{cell}",31.31\n'.encode()
    status, text = _post(client, bearer_for(dsn, "supervisor"), "x.csv", content)
    assert status == 422, text
    messages = [e["message"] for e in json.loads(text)["errors"] if e["field"] == "lon"]
    assert len(messages) == 1
    assert len(messages[0]) < 120
    assert "\x1b" not in messages[0] and "\n" not in messages[0]
    assert "\\x1b" in messages[0]


# --- sites far outside every jurisdiction ------------------------------------------------


def _site(code: str, lon: float, lat: float) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"code": code, "name": code, "layer": "market"}}


def test_a_new_site_thousands_of_km_away_is_refused(
        demo_client: TestClient, demo_dsn: str, bearer_for: Headers) -> None:
    response = demo_client.post("/api/v1/sites", json=_site("far", -70.0, -33.0),
                                headers=bearer_for(demo_dsn, "admin"))
    assert response.status_code == 422, response.text
    assert "service area" in response.text
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM site WHERE code = 'far'").fetchone() == (0,)


def test_moving_a_site_thousands_of_km_away_is_refused(
        demo_client: TestClient, demo_dsn: str, bearer_for: Headers) -> None:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT code, ST_AsText(geom) FROM site WHERE code IS NOT NULL"
                           " ORDER BY code LIMIT 1").fetchone()
    assert row is not None
    code, before = row
    response = demo_client.patch(f"/api/v1/sites/{code}", headers=bearer_for(demo_dsn, "admin"),
                                 json={"geometry": {"type": "Point", "coordinates": [2.35, 48.85]}})
    assert response.status_code == 422, response.text
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT ST_AsText(geom) FROM site WHERE code = %s",
                            [code]).fetchone() == (before,)


def test_an_imported_site_thousands_of_km_away_is_refused(
        demo_client: TestClient, demo_dsn: str, bearer_for: Headers) -> None:
    with psycopg.connect(demo_dsn) as conn:
        before = conn.execute("SELECT count(*) FROM site").fetchone()
    content = "name,layer,lon,lat\nfar,market,-70.0,-33.0\n"
    status, text = _post(demo_client, bearer_for(demo_dsn, "admin"), "s.csv", content.encode(),
                         "sites")
    assert status == 422, text
    errors = json.loads(text)["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "geometry")]
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM site").fetchone() == before


def test_sites_are_accepted_anywhere_before_any_jurisdiction_exists(
        client: TestClient, dsn: str, bearer_for: Headers) -> None:
    response = client.post("/api/v1/sites", json=_site("early", -70.0, -33.0),
                           headers=bearer_for(dsn, "admin"))
    assert response.status_code == 201, response.text
