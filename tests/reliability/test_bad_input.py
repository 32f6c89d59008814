"""Bad files at volume: every one fails with a clear problem, stores nothing, and the server
stays healthy. Hand-made hostile files first, then seeded random mutations of good ones."""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import psycopg
import pytest
import shapely
from openpyxl import Workbook

MUTANTS = 60
_FEATURE = {"code": "G-BAD", "name": "坏网格", "level": "grid"}


def _snapshot(dsn: str) -> tuple[Any, ...]:
    """What an import could change: row counts, and every stored boundary and site."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""
            SELECT (SELECT count(*) FROM issue), (SELECT count(*) FROM issue_event),
                   (SELECT count(*) FROM responsibility_rule),
                   (SELECT md5(string_agg(code || updated_at::text || md5(ST_AsBinary(geom)),
                                          ',' ORDER BY code)) FROM jurisdiction),
                   (SELECT md5(string_agg(coalesce(code, '') || updated_at::text
                                          || md5(ST_AsBinary(geom)), ',' ORDER BY id))
                    FROM site)""").fetchone()
    assert row is not None
    return tuple(row)


def _geojson(coordinates: str, parent: str) -> bytes:
    props = json.dumps({**_FEATURE, "parent": parent}, ensure_ascii=False)
    return ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
            f'{props},"geometry":{{"type":"Polygon","coordinates":[[{coordinates}]]}}}}]}}'
            ).encode()


def _million_vertices(parent: str) -> bytes:
    t = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
    ring = np.c_[120.705 + 0.004 * np.cos(t), 31.305 + 0.004 * np.sin(t)]
    ring = np.vstack([ring, ring[:1]])
    return _geojson(",".join(f"[{x:.6f},{y:.6f}]" for x, y in ring), parent)


def _shapefile_zip(folder: Path, *, prj: bool) -> bytes:
    frame = gpd.GeoDataFrame({"name": ["菜场"]}, geometry=[shapely.Point(120.70, 31.30)],
                             crs="EPSG:4326")
    frame.to_file(folder / "sites.shp", driver="ESRI Shapefile")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for ext in ("shp", "shx", "dbf", *(("prj",) if prj else ())):
            archive.write(folder / f"sites.{ext}", f"sites.{ext}")
    return out.getvalue()


def _bomb(member: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, b"\0" * (64 * 2**20))  # 64 MB of zeros, ~64 kB packed
        for name in ("a.shx", "a.dbf"):
            archive.writestr(name, b"")
    return out.getvalue()


def _formula_workbook(points: list[tuple[str, float, float]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["category", "description", "lon", "lat"])
    for n, (category, lon, lat) in enumerate(points[:4]):
        sheet.append([category, f"bad sheet {n}", lon, lat])
    sheet["C3"] = "=C2+0.001"  # written by a script: no cached value
    sheet.merge_cells("A4:A5")  # one category typed once for two rows
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _good_files(folder: Path, points: list[tuple[str, float, float]]
                ) -> dict[str, bytes]:
    """Valid issue files in every format, for mutation."""
    frame = gpd.GeoDataFrame(
        {"category": [c for c, _, _ in points[:20]],
         "description": [f"fuzz {n}" for n in range(20)]},
        geometry=[shapely.Point(x, y) for _, x, y in points[:20]], crs="EPSG:4326")
    frame.to_file(folder / "good.gpkg", driver="GPKG")
    frame.to_file(folder / "good.geojson", driver="GeoJSON")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["category", "description", "lon", "lat"])
    for (category, lon, lat), n in zip(points[:20], range(20), strict=True):
        sheet.append([category, f"fuzz {n}", lon, lat])
    xlsx = io.BytesIO()
    book.save(xlsx)
    csv = "category,description,lon,lat\n" + "".join(
        f"{c},fuzz {n},{x},{y}\n" for n, (c, x, y) in enumerate(points[:20]))
    return {"good.gpkg": (folder / "good.gpkg").read_bytes(),
            "good.geojson": (folder / "good.geojson").read_bytes(),
            "good.xlsx": xlsx.getvalue(), "good.csv": csv.encode()}


def _mutate(content: bytes, rng: random.Random) -> bytes:
    data = bytearray(content)
    how = rng.choice(("truncate", "flip", "insert", "splice"))
    if how == "truncate":
        return bytes(data[:rng.randrange(len(data))])
    if how == "flip":
        for _ in range(rng.randint(1, 24)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    at = rng.randrange(len(data))
    if how == "insert":
        return bytes(data[:at] + bytes(rng.randrange(256) for _ in range(64)) + data[at:])
    start = rng.randrange(len(data))
    return bytes(data[:at] + data[start:start + 200] + data[at:])


@pytest.fixture
def parent_community(demo_dsn: str) -> str:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT code FROM jurisdiction WHERE level = 'community'"
                           " ORDER BY code LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def test_hostile_and_damaged_files_fail_clearly_commit_nothing_and_leave_the_server_healthy(
        demo_dsn: str, tmp_path: Path, parent_community: str,
        make_server: Callable[..., Any], bearer: Callable[..., Any],
        report_points: Callable[..., Any]) -> None:
    server = make_server(demo_dsn)
    server.start()
    admin = bearer(demo_dsn, "admin", "office")
    points = report_points(demo_dsn, 40)
    good = _good_files(tmp_path, points)
    gpkg = good["good.gpkg"]
    # (kind, file name, content, words the error must contain)
    hostile: list[tuple[str, str, bytes, str]] = [
        ("issues", "cut.gpkg", gpkg[:len(gpkg) // 2], "not a readable GeoPackage"),
        ("sites", "noprj.zip", _shapefile_zip(tmp_path, prj=False),
         "declares no coordinate reference system"),
        ("jurisdictions", "nan.geojson",
         _geojson("[120.70,31.30],[NaN,31.30],[120.71,31.31],[120.70,31.30]",
                  parent_community), "not finite"),
        ("jurisdictions", "inf.geojson",
         _geojson("[120.70,31.30],[Infinity,31.30],[120.71,31.31],[120.70,31.30]",
                  parent_community), "not finite"),
        ("jurisdictions", "million.geojson", _million_vertices(parent_community),
         "vertices (at most"),
        ("sites", "bomb.zip", _bomb("a.shp"), "refused: the archive inflates"),
        ("issues", "bomb.xlsx", _bomb("xl/worksheets/sheet1.xml"),
         "refused: the archive inflates"),
        ("issues", "formulas.xlsx", _formula_workbook(points),
         "formula without a calculated value"),
    ]
    rng = random.Random(6)
    mutants = [("issues", name, _mutate(content, rng), "")
               for name, content in (rng.choice(sorted(good.items()))
                                     for _ in range(MUTANTS))]
    before = _snapshot(demo_dsn)
    with httpx.Client(base_url=server.base, headers=admin, timeout=120) as http:
        for kind, name, content, words in [*hostile, *mutants]:
            response = http.post("/api/v1/imports", data={"kind": kind, "layer": "market"},
                                 files={"file": (name, content)})
            answer = f"{name}: {response.status_code} {response.text[:300]}"
            if not words and response.status_code == 201:
                before = _snapshot(demo_dsn)  # a mutation that is still a good file
                continue
            assert response.status_code in (413, 422), answer
            assert response.headers["content-type"] == "application/problem+json", answer
            problem = response.json()
            told = problem["detail"] + json.dumps(problem.get("errors", []),
                                                  ensure_ascii=False)
            assert words in told, answer
            assert _snapshot(demo_dsn) == before, f"{answer}: something was stored"
        assert http.get("/health").status_code == 200
        assert http.get("/api/v1/issues?limit=1").status_code == 200
    assert server.proc.poll() is None
    assert "Traceback" not in server.log()
