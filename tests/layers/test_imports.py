"""Imports of GIS files and spreadsheets: formats, CRS, validation, all or nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import openpyxl
import psycopg
import pytest
import shapely
from pyproj import Geod

from geo.crs import wgs84_to_gcj02
from layers.db.settings import Settings
from layers.errors import ValidationFailed
from layers.io import imports
from layers.io.gisfile import read_any

STREET = shapely.box(120.68, 31.30, 120.72, 31.32)
WEST = shapely.box(120.68, 31.30, 120.70, 31.32)
EAST = shapely.box(120.70, 31.30, 120.72, 31.32)
GRID = shapely.box(120.68, 31.30, 120.69, 31.32)
# A square with a small twist at one corner: invalid, but make_valid's answer is plain.
TWISTED = shapely.Polygon([(120.700, 31.300), (120.710, 31.300), (120.710, 31.3101),
                           (120.7101, 31.310), (120.700, 31.310)])
# A bow-tie whose halves cancel out: its area is 0, so no repair is unambiguous.
BOW_TIE = shapely.Polygon([(120.70, 31.30), (120.71, 31.31), (120.71, 31.30), (120.70, 31.31)])
GEOD = Geod(ellps="WGS84")
# Times without an offset in the files below are read in this zone (the settings pass the
# district's).
ZONE = Settings().zone  # the district's zone: the settings name it


def _jurisdictions() -> gpd.GeoDataFrame:
    # Children first: the import must still insert parents before them.
    return gpd.GeoDataFrame(
        {"code": ["G1", "C1", "C2", "S1"], "name": ["网格一", "社区一", "社区二", "街道"],
         "level": ["grid", "community", "community", "street"],
         "parent": ["C1", "S1", "S1", None], "unit": [None, "城管", None, None]},
        geometry=[GRID, WEST, EAST, STREET], crs="EPSG:4326")


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _zip(target: Path, files: list[Path]) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            archive.write(f, f.name)
    return target


def _details(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[dict[str, Any]]:
    details = exc.value.details
    assert isinstance(details, list)
    return details


def test_jurisdictions_from_geojson_insert_parents_first(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "j.geojson"
    _jurisdictions().to_file(path)
    with psycopg.connect(dsn) as conn:
        report = imports.import_jurisdictions(conn, path, actor="t")
        rows = conn.execute(
            "SELECT j.code, p.code, u.code FROM jurisdiction j LEFT JOIN jurisdiction p"
            " ON p.id = j.parent_id LEFT JOIN unit u ON u.id = j.unit_id ORDER BY j.code"
        ).fetchall()
    assert (report.created, report.updated) == (4, 0)
    assert rows == [("C1", "S1", "CG"), ("C2", "S1", None), ("G1", "C1", None),
                    ("S1", None, None)]


def test_reimport_updates_instead_of_duplicating(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "j.gpkg"
    _jurisdictions().to_file(path)
    with psycopg.connect(dsn) as conn:
        imports.import_jurisdictions(conn, path, actor="t")
        again = imports.import_jurisdictions(conn, path, actor="t")
    assert (again.created, again.updated) == (0, 4)
    assert _count(dsn, "jurisdiction") == 4


def test_one_bad_row_commits_nothing_and_every_bad_row_is_named(dsn: str,
                                                                tmp_path: Path) -> None:
    frame = _jurisdictions()
    frame.loc[1, "level"] = "province"
    frame.loc[2, "parent"] = "NOPE"
    frame.loc[0, "code"] = "C1"  # duplicates row 2's code
    path = tmp_path / "bad.geojson"
    frame.to_file(path)
    with psycopg.connect(dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_jurisdictions(conn, path, actor="t")
    found = {(d["row"], d["field"]) for d in _details(exc)}
    assert {(2, "code"), (2, "level"), (3, "parent")} <= found
    assert all(d["row"] != 4 for d in _details(exc))  # the street is fine
    assert "unknown parent 'NOPE'" in str(exc.value.details)
    assert _count(dsn, "jurisdiction") == 0


def test_missing_required_column_is_reported_for_the_file(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "j.geojson"
    _jurisdictions().drop(columns=["level"]).to_file(path)
    with psycopg.connect(dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_jurisdictions(conn, path, actor="t")
    assert [(d["row"], d["field"]) for d in _details(exc)] == [(None, "level")]


def test_twisted_polygon_is_repaired_and_reported(dsn: str, tmp_path: Path) -> None:
    assert not TWISTED.is_valid
    path = tmp_path / "sites.geojson"
    gpd.GeoDataFrame({"name": ["市场"], "code": ["NM01"]}, geometry=[TWISTED],
                     crs="EPSG:4326").to_file(path)
    with psycopg.connect(dsn) as conn:
        report = imports.import_sites(conn, path, layer="market", actor="t")
        valid = conn.execute("SELECT ST_IsValid(geom) FROM site").fetchone()
    assert report.created == 1
    assert [r["row"] for r in report.repaired] == [1]
    assert "Self-intersection" in report.repaired[0]["repair"]
    assert valid == (True,)


def test_ambiguous_bow_tie_is_rejected(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "sites.geojson"
    gpd.GeoDataFrame({"name": ["好", "蝴蝶"]}, geometry=[shapely.box(120.7, 31.3, 120.71, 31.31),
                                                        BOW_TIE], crs="EPSG:4326").to_file(path)
    with psycopg.connect(dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_sites(conn, path, layer="market", actor="t")
    assert [(d["row"], d["field"]) for d in _details(exc)] == [(2, "geometry")]
    assert "no unambiguous repair" in _details(exc)[0]["message"]
    assert _count(dsn, "site") == 0


def test_wrong_geometry_type_and_unknown_layer_are_row_errors(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "sites.geojson"
    gpd.GeoDataFrame({"name": ["线", "点"], "layer": ["market", "zoo"]},
                     geometry=[shapely.LineString([(120.7, 31.3), (120.71, 31.31)]),
                               shapely.Point(120.7, 31.3)], crs="EPSG:4326").to_file(path)
    with psycopg.connect(dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_sites(conn, path, actor="t")
    assert {(d["row"], d["field"]) for d in _details(exc)} == {(1, "geometry"), (2, "layer")}


def test_gpkg_in_epsg4549_lands_at_the_right_lonlat(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "sites.gpkg"
    gpd.GeoDataFrame({"name": ["工地"], "layer": ["construction_site"], "permit": ["NO.7"]},
                     geometry=[shapely.Point(120.70, 31.31)], crs="EPSG:4326"
                     ).to_crs("EPSG:4549").to_file(path)
    with psycopg.connect(dsn) as conn:
        imports.import_sites(conn, path, actor="t")
        row = conn.execute("SELECT ST_X(geom), ST_Y(geom), attributes FROM site").fetchone()
    assert row is not None
    assert row[0] == pytest.approx(120.70, abs=1e-7) and row[1] == pytest.approx(31.31, abs=1e-7)
    assert row[2] == {"permit": "NO.7"}


def test_zipped_shapefile_needs_prj_or_a_declared_crs(dsn: str, tmp_path: Path) -> None:
    shp = tmp_path / "markets.shp"
    gpd.GeoDataFrame({"name": ["菜场"], "buffer_m": [80.0]},
                     geometry=[shapely.box(120.70, 31.30, 120.701, 31.301)],
                     crs="EPSG:4490").to_file(shp, encoding="utf-8")
    parts = [shp.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".cpg")]
    with_prj = _zip(tmp_path / "with.zip", [*parts, shp.with_suffix(".prj")])
    without = _zip(tmp_path / "without.zip", parts)
    with pytest.raises(ValidationFailed, match="no coordinate reference system"):
        read_any(without)
    assert read_any(without, crs="cgcs2000").crs == "EPSG:4326"
    with psycopg.connect(dsn) as conn:
        report = imports.import_sites(conn, with_prj, layer="market", actor="t")
        row = conn.execute("SELECT name, buffer_m FROM site").fetchone()
    assert report.created == 1 and row == ("菜场", 80.0)


def test_sheet_with_wkt_geometry_and_its_own_row_column(tmp_path: Path) -> None:
    path = tmp_path / "areas.csv"
    path.write_text('row,name,geometry\n7,甲,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n8,乙,nonsense\n',
                    encoding="utf-8")
    with pytest.raises(ValidationFailed) as exc:
        read_any(path)
    assert _details(exc) == [{"row": 3, "field": "wkt", "message": "not a valid WKT geometry"}]
    path.write_text('row,name,geometry\n7,甲,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n',
                    encoding="utf-8")
    frame = read_any(path, crs="EPSG:4326")
    assert frame["row"].tolist() == [2] and frame["row_in_file"].tolist() == ["7"]
    assert frame.geometry.iloc[0].area == 0.5


def test_kml_is_read_in_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "points.kml"
    gpd.GeoDataFrame({"Name": ["甲", "乙"]}, geometry=[shapely.Point(120.7, 31.3),
                                                       shapely.Point(120.71, 31.31)],
                     crs="EPSG:4326").to_file(path, driver="KML")
    frame = read_any(path)
    assert frame["row"].tolist() == [1, 2]
    assert frame["Name"].tolist() == ["甲", "乙"]
    assert "tessellate" not in frame.columns
    assert frame.geometry.iloc[1].equals(shapely.Point(120.71, 31.31))


def test_truncated_and_bomb_files_are_refused_with_a_message(tmp_path: Path) -> None:
    truncated = tmp_path / "t.geojson"
    truncated.write_text('{"type": "FeatureCollection", "features": [{"type": "Fea')
    with pytest.raises(ValidationFailed, match="not a readable GeoJSON"):
        read_any(truncated)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.shp", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(ValidationFailed, match="refused"):
        read_any(bomb)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValidationFailed, match="not a readable"):
        read_any(broken)


def test_csv_declared_gcj02_lands_about_500_m_from_wgs84(demo_dsn: str, tmp_path: Path
                                                         ) -> None:
    path = tmp_path / "issues.csv"
    path.write_text("category,description,经度,纬度\nMKT-01,占道经营,120.705,31.305\n",
                    encoding="utf-8")
    with psycopg.connect(demo_dsn) as conn:
        as_wgs = imports.import_issues(conn, path, zone=ZONE, actor="t", actor_role="admin")
        as_gcj = imports.import_issues(conn, path, zone=ZONE, crs="gcj02", actor="t",
                                       actor_role="admin")
        points = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM issue WHERE public_id = ANY(%s)"
                              " ORDER BY id", [as_wgs.issue_ids + as_gcj.issue_ids]).fetchall()
    (x1, y1), (x2, y2) = points
    assert (x1, y1) == (120.705, 31.305)
    _, _, distance = GEOD.inv(x1, y1, x2, y2)
    assert 300 < distance < 700
    back = wgs84_to_gcj02(x2, y2)
    assert back[0] == pytest.approx(120.705, abs=1e-8)


def test_issues_with_bad_rows_store_nothing_and_list_each(demo_dsn: str, tmp_path: Path
                                                          ) -> None:
    path = tmp_path / "issues.csv"
    path.write_text(
        "category,description,lon,lat,reported_at\n"
        "MKT-01,占道经营,120.70,31.31,2026-06-01 09:30\n"
        "NOPE-99,未知类别,120.70,31.31,\n"
        "MKT-01,太远了,121.50,31.31,\n"
        "MKT-01,,120.70,abc,\n"
        "MKT-01,时间不对,120.70,31.31,yesterday-ish\n", encoding="utf-8")
    before = _count(demo_dsn, "issue")
    with psycopg.connect(demo_dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_issues(conn, path, zone=ZONE, actor="t", actor_role="admin")
    found = {(d["row"], d["field"]) for d in _details(exc)}
    assert found == {(3, "category"), (4, "location"), (5, "description"), (5, "lat"),
                     (6, "reported_at")}
    assert _count(demo_dsn, "issue") == before


def test_issue_times_without_zone_are_beijing_time(demo_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "issues.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["问题类别", "问题描述", "lon", "lat", "发现时间", "来源"])
    sheet.append(["占道经营", "门口摆摊", 120.70, 31.31, "2026-06-01 09:30", "督查"])
    book.save(path)
    with psycopg.connect(demo_dsn) as conn:
        report = imports.import_issues(conn, path, zone=ZONE, actor="t",
                                       actor_role="supervisor")
        row = conn.execute("SELECT category_code, source, reported_at AT TIME ZONE 'UTC'"
                           " FROM issue WHERE public_id = %s", report.issue_ids).fetchone()
    assert row is not None
    assert row[:2] == ("MKT-01", "supervision")
    assert str(row[2]) == "2026-06-01 01:30:00"


def _grid_with_issues(conn: psycopg.Connection[Any]) -> tuple[str, str, str]:
    """A grid holding open issues, and another community (code, unit) to move it to."""
    row = conn.execute(
        "SELECT g.code, c.code FROM jurisdiction g JOIN jurisdiction c ON c.id = g.parent_id"
        " JOIN issue i ON i.jurisdiction_id = g.id WHERE g.level = 'grid'"
        " AND i.status IN ('reported', 'assigned', 'rectified') AND i.functional_unit_id IS NULL"
        " GROUP BY g.code, c.code ORDER BY count(*) DESC LIMIT 1").fetchone()
    assert row is not None
    other = conn.execute(
        "SELECT j.code, u.code FROM jurisdiction j JOIN unit u ON u.id = j.unit_id"
        " WHERE j.level = 'community' AND j.code <> %s ORDER BY j.code LIMIT 1",
        [row[1]]).fetchone()
    assert other is not None
    return str(row[0]), str(other[0]), str(other[1])


def test_jurisdiction_import_reparents_and_reassigns_open_issues(demo_dsn: str,
                                                                 tmp_path: Path) -> None:
    with psycopg.connect(demo_dsn) as conn:
        grid, community, unit = _grid_with_issues(conn)
        wkb = conn.execute("SELECT ST_AsBinary(geom), name FROM jurisdiction WHERE code = %s",
                           [grid]).fetchone()
        assert wkb is not None
        path = tmp_path / "moved.geojson"
        gpd.GeoDataFrame({"code": [grid], "name": [wkb[1]], "level": ["grid"],
                          "parent": [community], "unit": [unit]},
                         geometry=[shapely.from_wkb(bytes(wkb[0]))], crs="EPSG:4326"
                         ).to_file(path)
        report = imports.import_jurisdictions(conn, path, actor="t")
        parent = conn.execute("SELECT p.code FROM jurisdiction j JOIN jurisdiction p"
                              " ON p.id = j.parent_id WHERE j.code = %s", [grid]).fetchone()
        stale = conn.execute(
            "SELECT count(*) FROM issue i JOIN jurisdiction j ON j.id = i.jurisdiction_id"
            " WHERE j.code = %s AND i.status IN ('reported', 'assigned', 'rectified')"
            " AND i.territorial_unit_id <> (SELECT id FROM unit WHERE code = %s)",
            [grid, unit]).fetchone()
        events = conn.execute("SELECT count(*) FROM revision_change WHERE revision_id = %s",
                              [report.reassigned["revision"]]).fetchone()
    assert report.updated == 1 and parent == (community,)
    assert report.reassigned["changed"] > 0
    assert stale == (0,)
    assert events == (report.reassigned["changed"],)


def _rules_book(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["星湖街道文明城市创建任务分解表"])
    sheet.merge_cells("A1:F1")
    sheet.append(["任务", "问题类别", "社区", "责任单位", "挂钩领导", "联系方式"])
    sheet.append(["市场周边秩序", "占道经营", "湖东社区", "城管", "王伟", "13800000000"])
    sheet.append(["市场周边秩序", "流动摊贩", "湖东社区", "城管", "王伟", "13800000000"])
    sheet.append(["工地扬尘", "CON-03", None, "JS", "李强", "=B5"])
    # The office merges a unit down over the rows it covers.
    sheet.merge_cells("D3:D4")
    sheet.merge_cells("A3:A4")
    book.save(path)


def test_responsibility_sheet_with_title_and_merged_cells(demo_dsn: str, tmp_path: Path
                                                          ) -> None:
    path = tmp_path / "任务分解表.xlsx"
    _rules_book(path)
    with psycopg.connect(demo_dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_responsibilities(conn, path, actor="t")
    # Row 5's contact is a formula never calculated: named, nothing stored.
    assert [(d["row"], d["field"]) for d in _details(exc)] == [(5, "联系方式")]
    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet is not None
    sheet["F5"] = "13900000000"
    book.save(path)
    with psycopg.connect(demo_dsn) as conn:
        rules_before = conn.execute("SELECT count(*) FROM responsibility_rule").fetchone()
        report = imports.import_responsibilities(conn, path, actor="t")
        again = imports.import_responsibilities(conn, path, actor="t")
        rows = conn.execute(
            "SELECT r.task, r.category_code, j.name, u.code FROM responsibility_rule r"
            " JOIN unit u ON u.id = r.unit_id LEFT JOIN jurisdiction j ON j.id = r.jurisdiction_id"
            " WHERE r.task IS NOT NULL ORDER BY r.category_code").fetchall()
    assert rules_before is not None
    assert (report.created, report.updated) == (3, 0)
    assert (again.created, again.updated) == (0, 3)
    assert rows == [("工地扬尘", "CON-03", None, "JS"),
                    ("市场周边秩序", "MKT-01", "湖东社区", "CG"),
                    ("市场周边秩序", "MKT-02", "湖东社区", "CG")]


def test_responsibility_rows_with_unknown_names_are_listed(demo_dsn: str, tmp_path: Path
                                                           ) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("task,category,community,unit\n"
                    "a,MKT-01,湖东社区,城管\n"
                    "b,不存在,湖东社区,城管\n"
                    "c,MKT-02,火星社区,无名单位\n"
                    "d,MKT-01,湖东社区,JS\n", encoding="utf-8")
    with psycopg.connect(demo_dsn) as conn, pytest.raises(ValidationFailed) as exc:
        imports.import_responsibilities(conn, path, actor="t")
    assert {(d["row"], d["field"]) for d in _details(exc)} == {
        (3, "category"), (4, "community"), (4, "unit"), (5, None)}
