"""Exports: every format writes, and export -> import keeps counts and geometries."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely

from layers.errors import NotFound
from layers.io import exports, imports


def _geometries(conn: psycopg.Connection[tuple[object, ...]], query: str
                ) -> dict[str, shapely.Geometry]:
    found: dict[str, shapely.Geometry] = {}
    for code, wkb in conn.execute(query):
        assert isinstance(wkb, bytes)
        found[str(code)] = shapely.from_wkb(wkb)
    return found


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_jurisdictions_round_trip_keeps_counts_and_geometries(demo_dsn: str, tmp_path: Path,
                                                              fmt: str) -> None:
    query = "SELECT code, ST_AsBinary(geom) FROM jurisdiction"
    path = tmp_path / f"jurisdictions.{fmt}"
    with psycopg.connect(demo_dsn) as conn:
        before = _geometries(conn, query)
        written = exports.export_layer(conn, "jurisdictions", path, fmt=fmt)
        report = imports.import_jurisdictions(conn, path, actor="t")
        after = _geometries(conn, query)
    assert written == len(before) == report.rows == report.updated
    assert report.created == 0 and report.repaired == []
    assert after.keys() == before.keys()
    # GIS formats keep the doubles exactly; CSV rounds WKT to 1e-7 degree (~1 cm).
    tolerance = 0 if fmt != "csv" else 2e-7
    assert all(shapely.equals_exact(after[c], before[c], tolerance=tolerance) for c in before)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "xlsx"])
def test_site_layer_round_trip_keeps_attributes(demo_dsn: str, tmp_path: Path, fmt: str
                                                ) -> None:
    query = "SELECT code, ST_AsBinary(geom) FROM site WHERE layer = 'old_compound'"
    path = tmp_path / f"compounds.{fmt}"
    with psycopg.connect(demo_dsn) as conn:
        before = _geometries(conn, query)
        attributes: dict[object, object] = dict(
            conn.execute("SELECT code, attributes FROM site").fetchall())
        exports.export_layer(conn, "old_compound", path, fmt=fmt)
        report = imports.import_sites(conn, path, actor="t")
        after = _geometries(conn, query)
        attributes_after: dict[object, object] = dict(
            conn.execute("SELECT code, attributes FROM site").fetchall())
        total = conn.execute("SELECT count(*) FROM site").fetchone()
    assert (report.created, report.updated) == (0, len(before))
    assert after.keys() == before.keys() and total is not None
    tolerance = 0 if fmt != "xlsx" else 2e-7
    assert all(shapely.equals_exact(after[c], before[c], tolerance=tolerance) for c in before)
    assert attributes_after == attributes


def test_issue_export_holds_every_issue_and_keeps_time_zones(
        demo_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Several chunks, so that their seams (separators, header rows) are exercised.
    monkeypatch.setattr(exports, "CHUNK_ROWS", 700)
    with psycopg.connect(demo_dsn) as conn:
        expected = conn.execute("SELECT count(*) FROM issue").fetchone()
        geojson, sheet = tmp_path / "issues.geojson", tmp_path / "issues.xlsx"
        n = exports.export_layer(conn, "issues", geojson, fmt="geojson")
        exports.export_layer(conn, "issues", sheet, fmt="xlsx")
    assert expected is not None
    assert n == expected[0] > 3 * exports.CHUNK_ROWS
    frame = pyogrio.read_dataframe(geojson)
    assert len(frame) == n and frame["public_id"].is_unique
    assert frame["reported_at"].dt.tz is not None
    assert frame["on_boundary"].dtype == bool and frame["rework_count"].dtype.kind == "i"
    active = openpyxl.load_workbook(sheet).active
    assert active is not None
    rows = list(active.iter_rows(values_only=True))
    assert rows[0][:2] == ("编号", "问题类别") and rows[1][:2] == ("public_id", "category")
    assert len(rows) == n + 2
    stamps = [pd.Timestamp(str(r[rows[1].index("reported_at")])) for r in rows[2:]]
    assert all(s.tzinfo is not None for s in stamps)


def test_csv_export_of_points_has_lon_lat(demo_dsn: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "CHUNK_ROWS", 700)
    path = tmp_path / "issues.csv"
    with psycopg.connect(demo_dsn) as conn:
        n = exports.export_layer(conn, "issues", path, fmt="csv")
    frame = pd.read_csv(path, encoding="utf-8-sig")
    assert len(frame) == n and frame["public_id"].is_unique  # one header row, every chunk
    assert {"lon", "lat"} <= set(frame.columns) and "wkt" not in frame.columns
    assert frame["lon"].between(120, 121).all()


def test_unknown_layer_is_not_found(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn) as conn, pytest.raises(NotFound, match="market"):
        exports.export_layer(conn, "zoo", tmp_path / "x.geojson", fmt="geojson")
