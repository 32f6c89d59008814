"""A preview of an import or edit of the lines: what would happen, and nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers import revisions
from layers.catalog import jurisdictions
from layers.errors import ValidationFailed
from layers.io import import_preview, imports
from layers.preview import run
from tests import small_district
from tests.small_district import District, box


def test_an_import_preview_shows_what_would_move_and_stores_nothing(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path)
    before = small_district.checksum(db)
    shown = import_preview.preview_import(db, "jurisdictions", path)
    assert small_district.checksum(db) == before

    assert (shown.rows.added, shown.rows.removed, shown.rows.changed) == (0, 0, 2)
    assert shown.rows.changed_codes == ["CE", "CW"]
    assert (shown.examined, shown.changed, shown.lead_changed) == (5, 2, 2)
    assert shown.points_moved == pytest.approx(0.4)
    # The data-quality report of the new set (the tiny boxes show slivers in metres).
    assert shown.quality is not None and {"gap", "overlap"} <= set(shown.quality.counts)
    assert len(shown.quality.findings) == sum(shown.quality.counts.values())

    # Applied for real, the revision stored counts the same as the preview showed.
    report = imports.import_jurisdictions(db, path, actor="创建办")
    stored = revisions.summary(db, report.reassigned["revision"])
    assert stored.pairs == shown.pairs == [revisions.Handover("E", "W", 2, points=0.4)]
    assert stored.units == shown.units
    assert stored.points_moved == shown.points_moved
    assert (stored.revision.examined, stored.revision.changed) == (shown.examined,
                                                                   shown.changed)


def test_a_preview_of_the_same_file_again_moves_nothing(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path)
    imports.import_jurisdictions(db, path, actor="创建办")
    shown = import_preview.preview_import(db, "jurisdictions", path)
    assert (shown.rows.added, shown.rows.changed, shown.changed) == (0, 0, 0)
    assert shown.pairs == [] and shown.units == []


def test_an_invalid_file_fails_the_preview_as_the_import_and_stores_nothing(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path, bad_level=True)
    before = small_district.checksum(db)
    with pytest.raises(ValidationFailed) as previewed:
        import_preview.preview_import(db, "jurisdictions", path)
    with pytest.raises(ValidationFailed) as imported:
        imports.import_jurisdictions(db, path, actor="创建办")
    assert previewed.value.details == imported.value.details
    assert small_district.checksum(db) == before


def test_a_preview_inside_an_open_transaction_rolls_back_only_itself(
        dsn: str, district: District) -> None:
    with psycopg.connect(dsn) as conn:  # not autocommit: the preview is a savepoint
        conn.execute("UPDATE unit SET name = '湖东' WHERE code = 'E'")
        before = small_district.checksum(conn)
        _, shown = run(conn, "jurisdiction", lambda: jurisdictions.update(
            conn, "CW", {"geometry": box(small_district.WEST, small_district.REDRAWN)},
            actor="创建办"))
        assert shown.rows.changed_codes == ["CW"] and shown.changed == 2
        assert small_district.checksum(conn) == before
        assert conn.execute("SELECT name FROM unit WHERE code = 'E'").fetchone() == ("湖东",)


def test_only_the_kinds_that_move_issues_have_a_preview(
        db: psycopg.Connection[Any], tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed):
        import_preview.preview_import(db, "issues", tmp_path / "x.csv")


def test_a_rules_preview_counts_as_the_import_then_stores(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    path = tmp_path / "任务分解表.csv"
    path.write_text("任务,问题类别,社区,责任单位\n清理堆物,乱堆乱放,湖东,W\n", encoding="utf-8")
    before = small_district.checksum(db)
    shown = import_preview.preview_import(db, "responsibilities", path)
    assert small_district.checksum(db) == before
    assert (shown.rows.added, shown.rows.added_codes) == (1, ["CMP-03 / CE / *"])
    assert shown.quality is None

    report = imports.import_responsibilities(db, path, actor="创建办")
    assert report.reassigned["changed"] == shown.changed > 0
    stored = revisions.summary(db, report.reassigned["revision"])
    assert (stored.units, stored.pairs, stored.points_moved) == (
        shown.units, shown.pairs, shown.points_moved)


def test_an_import_preview_writes_nothing_at_all(dsn: str, district: District,
                                                 tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path)
    with psycopg.connect(dsn) as conn:  # the preview runs inside this one transaction
        shown = import_preview.preview_import(conn, "jurisdictions", path)
        assert shown.changed == 2
        # PostgreSQL gives a transaction an id at its first write, a rolled-back savepoint's
        # included: a preview that wrote and rolled back would leave one here.
        assert conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone() == (None,)


def test_a_sites_preview_equals_the_revision_of_applying_it(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    # An old compound over the two middle issues (their category concerns old compounds),
    # and one without a code, which the import always adds.
    ring = [[120.710, 31.300], [120.7135, 31.300], [120.7135, 31.31], [120.710, 31.31],
            [120.710, 31.300]]
    features = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                 "properties": {"code": "OC1", "name": "湖畔小区", "layer": "old_compound",
                                "unit": "W"}},
                {"type": "Feature", "geometry": {"type": "Point",
                                                 "coordinates": [120.703, 31.305]},
                 "properties": {"name": "无编码小区", "layer": "old_compound",
                                "buffer_m": 30}}]
    path = tmp_path / "小区.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    before = small_district.checksum(db)
    shown = import_preview.preview_import(db, "sites", path)
    assert small_district.checksum(db) == before
    assert (shown.rows.added, shown.rows.added_codes) == (2, ["OC1", "无编码小区"])
    # The first issue is within the point site's buffer, the middle two inside the polygon.
    assert shown.changed == 3 and shown.drawing is not None
    assert sorted(m.public_id for m in shown.drawing.moves) == sorted(
        [district.issues[0], *district.moving])

    report = imports.import_sites(db, path, actor="创建办")
    assert (report.reassigned["examined"], report.reassigned["changed"]) == (
        shown.examined, shown.changed)
    stored = revisions.summary(db, report.reassigned["revision"])
    assert (stored.units, stored.pairs, stored.points_moved) == (
        shown.units, shown.pairs, shown.points_moved)
    again = import_preview.preview_import(db, "sites", path)
    # Applied, the coded site is unchanged; the one without a code would be added again.
    assert (again.rows.added_codes, again.rows.changed, again.changed) == (["无编码小区"], 0, 0)


def test_a_file_that_would_break_the_stored_hierarchy_fails_the_preview_as_the_import(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    db.execute("INSERT INTO jurisdiction (code, name, level, parent_id, geom)"
               " SELECT 'G1', '一号网格', 'grid', id, geom FROM jurisdiction WHERE code = 'CW'")
    # 湖西 becomes a grid of 湖东: its stored grid G1 would hang under a grid.
    feature = {"type": "Feature", "geometry": box(small_district.WEST, small_district.MIDDLE),
               "properties": {"code": "CW", "name": "湖西", "level": "grid", "parent": "CE"}}
    path = tmp_path / "relevel.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}),
                    encoding="utf-8")
    before = small_district.checksum(db)
    with pytest.raises(ValidationFailed) as previewed:
        import_preview.preview_import(db, "jurisdictions", path)
    with pytest.raises(ValidationFailed) as imported:
        imports.import_jurisdictions(db, path, actor="创建办")
    assert previewed.value.details == imported.value.details
    assert "G1" in str(previewed.value.details)
    assert small_district.checksum(db) == before
