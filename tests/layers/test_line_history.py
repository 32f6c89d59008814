"""History of the lines (migration 0026) and revert: versions written by trigger, a revision
for every change of the lines, revert back to the lines and answers before a revision and its
refusals, "as of" answers from the issue's trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from geo.assign import RESULT_COLUMNS
from layers import history, revert, revisions
from layers.assignment import load_assigner, reassign
from layers.catalog import jurisdictions, sites
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.io import imports
from layers.issues import records
from layers.supervision import accountability
from tests import small_district
from tests.small_district import District


def _lines(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every line's content, geometry as exact WKB: equal means the same lines."""
    return {
        "jurisdiction": conn.execute(
            "SELECT id, code, name, level, parent_id, unit_id, ST_AsEWKB(geom)"
            " FROM jurisdiction ORDER BY id").fetchall(),
        "site": conn.execute(
            "SELECT id, layer, code, name, ST_AsEWKB(geom), attributes, buffer_m,"
            " inspection_interval_days, unit_id FROM site ORDER BY id").fetchall(),
        "responsibility_rule": conn.execute(
            "SELECT id, task, category_code, jurisdiction_id, site_id, unit_id, leader, contact"
            " FROM responsibility_rule ORDER BY id").fetchall()}


def _redrawn_with_grid(folder: Path) -> Path:
    """The redrawn communities and a new grid G1 in the west of 湖西, on its first issue."""
    path = small_district.redrawn_file(folder)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"].append({"type": "Feature", "geometry": small_district.box(
        small_district.WEST, 120.705), "properties": {
            "code": "G1", "name": "一网格", "level": "grid", "parent": "CW", "unit": "W"}})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _versions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT (SELECT count(*) FROM jurisdiction_version)"
                       " + (SELECT count(*) FROM site_version)"
                       " + (SELECT count(*) FROM responsibility_rule_version)").fetchone()
    assert row is not None
    return int(row[0])


def test_the_answer_columns_of_sql_are_those_of_the_engine(db: psycopg.Connection[Any]) -> None:
    row = db.execute("SELECT issue_answer_columns()").fetchone()
    assert row is not None and row[0] == list(RESULT_COLUMNS)


def test_a_redraw_keeps_the_old_line_with_the_time_it_held(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    report = imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path),
                                          actor="创建办")
    rows = db.execute(
        "SELECT v.code, ST_XMax(v.geom), v.valid_to IS NULL, v.xact_from = r.xact,"
        " v.xact_to = r.xact FROM jurisdiction_version v, revision r WHERE r.id = %s"
        " AND v.code = 'CW' ORDER BY v.version_id", [report.reassigned["revision"]]).fetchall()
    assert rows == [("CW", pytest.approx(small_district.MIDDLE), False, False, True),
                    ("CW", pytest.approx(small_district.REDRAWN), True, True, None)]
    # The street, rewritten by nobody, keeps its one version.
    assert db.execute("SELECT count(*) FROM jurisdiction_version WHERE code = 'S'"
                      ).fetchone() == (1,)


def test_a_write_that_changes_no_content_writes_no_version(
        db: psycopg.Connection[Any], district: District) -> None:
    before = _versions(db)
    db.execute("UPDATE jurisdiction SET updated_at = now(), name = name")
    assert _versions(db) == before


def test_a_transaction_writes_at_most_one_version_of_a_row(
        db: psycopg.Connection[Any], district: District) -> None:
    before = _versions(db)
    with db.transaction():
        db.execute("UPDATE jurisdiction SET name = '湖西一' WHERE code = 'CW'")
        db.execute("UPDATE jurisdiction SET name = '湖西二' WHERE code = 'CW'")
        db.execute("INSERT INTO jurisdiction (code, name, level, geom) SELECT 'S9', 'x',"
                   " 'street', geom FROM jurisdiction WHERE code = 'S'")
        db.execute("DELETE FROM jurisdiction WHERE code = 'S9'")
    rows = db.execute("SELECT name, valid_to IS NULL FROM jurisdiction_version"
                      " WHERE code = 'CW' ORDER BY version_id").fetchall()
    assert rows == [("湖西", False), ("湖西二", True)]
    assert _versions(db) == before + 1


def test_an_edit_that_moves_no_issue_is_a_revision_of_its_lines(
        db: psycopg.Connection[Any], district: District) -> None:
    jurisdictions.update(db, "CW", {"name": "湖西社区"}, actor="创建办 李四")
    [stored] = revisions.list_revisions(db, limit=5)
    assert (stored.kind, stored.source, stored.actor, stored.changed) == (
        "edit", "jurisdiction CW", "创建办 李四", 0)


def test_an_import_that_fails_validation_stores_no_revision_and_no_version(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    before = _versions(db), _lines(db)
    with pytest.raises(ValidationFailed):
        imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path, bad_level=True),
                                     actor="创建办")
    assert (_versions(db), _lines(db)) == before
    assert db.execute("SELECT count(*) FROM revision").fetchone() == (0,)


def test_reverting_an_import_brings_back_every_line_and_answer(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    answers, lines = small_district.answers(db), _lines(db)
    # A grid is added too: the revert removes it again, and its issue goes back.
    applied = imports.import_jurisdictions(db, _redrawn_with_grid(tmp_path),
                                           actor="创建办").reassigned
    assert db.execute("SELECT count(*) FROM issue i JOIN jurisdiction j"
                      " ON j.id = i.jurisdiction_id WHERE j.code = 'G1'").fetchone() == (1,)
    assert small_district.answers(db) != answers and _lines(db) != lines

    done = revert.revert(db, applied["revision"], actor="创建办 王五", note="画错了")

    assert small_district.answers(db) == answers
    assert _lines(db) == lines
    assert (done.reverts, done.changed, done.lines) == (applied["revision"], 3, 3)
    [stored, _] = revisions.list_revisions(db, limit=5)
    assert (stored.id, stored.kind, stored.reverts, stored.note, stored.actor) == (
        done.revision, "revert", applied["revision"], "画错了", "创建办 王五")
    found = revisions.summary(db, stored.id)
    assert [(p.from_unit, p.to_unit, p.issues) for p in found.pairs] == [("W", "E", 2)]
    assert db.execute("SELECT count(*) FROM jurisdiction WHERE code = 'G1'").fetchone() == (0,)



def test_a_revert_is_refused_when_a_line_was_changed_since(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    applied = imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path),
                                           actor="创建办").reassigned["revision"]
    jurisdictions.update(db, "CE", {"name": "湖东新社区"}, actor="创建办")
    [later, _] = revisions.list_revisions(db, limit=5)
    answers, lines = small_district.answers(db), _lines(db)
    with pytest.raises(Conflict) as refused:
        revert.revert(db, applied, actor="创建办")
    assert f"revision {later.id}" in refused.value.message and "CE" in refused.value.message
    assert (small_district.answers(db), _lines(db)) == (answers, lines)
    # The later one first, then the import.
    revert.revert(db, later.id, actor="创建办")
    revert.revert(db, applied, actor="创建办")
    assert db.execute("SELECT name FROM jurisdiction WHERE code = 'CE'").fetchone() == ("湖东",)


def test_a_revision_is_reverted_once(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    applied = imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path),
                                           actor="创建办").reassigned["revision"]
    done = revert.revert(db, applied, actor="创建办")
    with pytest.raises(Conflict, match=f"already reverted by revision {done.revision}"):
        revert.revert(db, applied, actor="创建办")
    # Reverting the revert applies the redraw again.
    revert.revert(db, done.revision, actor="创建办")
    row = db.execute("SELECT ST_XMax(geom) FROM jurisdiction WHERE code = 'CW'").fetchone()
    assert row is not None and row[0] == pytest.approx(small_district.REDRAWN)


def test_a_plain_reassignment_is_not_reverted(
        db: psycopg.Connection[Any], district: District) -> None:
    db.execute("UPDATE issue SET lead_unit_id = NULL WHERE public_id = %s",
               [district.issues[0]])
    moved = reassign(db, load_assigner(db), actor="test")
    with pytest.raises(Conflict, match="changed no lines"):
        revert.revert(db, moved["revision"], actor="创建办")
    with pytest.raises(NotFound):
        revert.revert(db, moved["revision"] + 100, actor="创建办")


def test_as_of_answers_before_and_after_a_redraw(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    moving = district.moving[0]
    imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path), actor="创建办")
    [late] = records.store(db, *records.prepare(load_assigner(db), [records.NewIssue(
        category="CMP-03", lon=120.712, lat=31.305, description="乱堆乱放 新")]),
        actor="巡查员", actor_role="inspector")

    then = history.as_of(db, moving, history.parse_as_of("reported"))
    assert (then.answer.jurisdiction, then.answer.lead_unit, then.answer.lead_unit_name) == (
        "CE", "E", "湖东社区")
    assert then.answer.unknown == []
    # The lines valid then: 湖东 as it was, holding the point.
    [ce] = [v for v in then.lines if v.code == "CE"]
    assert ce.valid_to is not None and {v.code for v in then.lines} >= {"S", "CE"}
    assert "CW" not in {v.code for v in then.lines}

    now = history.as_of(db, moving, datetime.now(UTC))
    assert (now.answer.jurisdiction, now.answer.lead_unit) == ("CW", "W")
    assert all(v.valid_to is None for v in now.lines)

    reported = history.as_of(db, late, "reported")
    assert (reported.answer.jurisdiction, reported.answer.lead_unit) == ("CW", "W")
    issue = records.get(db, late)
    with pytest.raises(ValidationFailed, match="before the issue was reported"):
        history.as_of(db, late, issue.reported_at - timedelta(seconds=1))


def test_an_import_that_changes_lines_but_moves_no_issue_is_a_revision(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"] = [{"type": "Feature", "geometry": small_district.box(
        small_district.WEST, small_district.MIDDLE), "properties": {
            "code": "CW", "name": "湖西社区", "level": "community", "parent": "S"}}]
    path.write_text(json.dumps(data), encoding="utf-8")
    report = imports.import_jurisdictions(db, path, actor="创建办")
    assert report.reassigned["changed"] == 0
    [stored] = revisions.list_revisions(db, limit=5)
    assert (stored.id, stored.kind, stored.source, stored.changed, stored.examined) == (
        report.reassigned["revision"], "import", "redrawn.geojson", 0, 5)
    # The same file again changes nothing: no revision.
    imports.import_jurisdictions(db, path, actor="创建办")
    assert len(revisions.list_revisions(db, limit=5)) == 1


def test_the_register_names_the_unit_answering_when_the_deadline_was_missed(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    early, late = district.moving
    # ``early`` ran past its deadline two days ago, while 湖东 (E) answered for it.
    db.execute("UPDATE issue SET reported_at = now() - interval '5 days',"
               " deadline = now() - interval '2 days' WHERE public_id = %s", [early])
    imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path), actor="创建办")
    # ``late`` runs past its deadline only after the redraw handed it to 湖西 (W).
    db.execute("UPDATE issue SET deadline = now() WHERE public_id = %s", [late])
    since, until = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) + timedelta(days=1)

    east = accountability.register(db, "E", since=since, until=until)
    west = accountability.register(db, "W", since=since, until=until)

    assert [e.public_id for e in east.entries] == [early]
    assert [e.public_id for e in west.entries] == [late]
    assert east.ran_past_deadline == 1 and west.ran_past_deadline == 1
    # Today both answer to 湖西.
    assert {records.get(db, i).lead_unit for i in (early, late)} == {"W"}


def _shifted_grids(conn: psycopg.Connection[Any], folder: Path) -> Path:
    """Every grid of the district moved 200 m east, with its code, parent and unit: a new
    grid set that moves many issues between grids and units."""
    rows = conn.execute(
        "SELECT j.code, j.name, p.code, u.code, ST_AsGeoJSON(ST_Translate(j.geom, 0.002, 0))"
        " FROM jurisdiction j JOIN jurisdiction p ON p.id = j.parent_id"
        " LEFT JOIN unit u ON u.id = j.unit_id WHERE j.level = 'grid'").fetchall()
    features = [{"type": "Feature", "geometry": json.loads(geometry), "properties": {
        "code": code, "name": name, "level": "grid", "parent": parent, "unit": unit}}
        for code, name, parent, unit, geometry in rows]
    path = folder / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def test_reverting_a_new_grid_set_of_the_demo_brings_back_every_answer_and_line(
        demo_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        answers, lines = small_district.answers(conn), _lines(conn)
        path = _shifted_grids(conn, tmp_path)
        applied = imports.import_jurisdictions(conn, path, actor="创建办").reassigned
        assert applied["changed"] > 10
        done = revert.revert(conn, applied["revision"], actor="创建办")
        assert done.changed == applied["changed"]
        assert _lines(conn) == lines
        assert small_district.answers(conn) == answers


def test_reverting_rules_sites_and_a_deletion_puts_each_back(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    answers, lines = small_district.answers(db), _lines(db)
    sheet = tmp_path / "任务分解表.csv"
    sheet.write_text("任务,类别,社区,责任单位\n清理乱堆,CMP-03,CE,W\n", encoding="utf-8")
    ruled = imports.import_responsibilities(db, sheet, actor="创建办").reassigned["revision"]
    sites.create(db, code="MK1", name="湖东市场", layer="market",
                 geometry=small_district.box(120.716, 120.719), actor="创建办")
    sited = revisions.list_revisions(db, limit=1)[0].id
    jurisdictions.create(db, code="S2", name="星湖二街道", level="street",
                         geometry=small_district.box(120.80, 120.81), actor="创建办")
    jurisdictions.delete(db, "S2", actor="创建办")
    created, deleted = (r.id for r in revisions.list_revisions(db, limit=2)[::-1])
    assert small_district.answers(db) != answers

    revert.revert(db, deleted, actor="创建办")
    assert db.execute("SELECT count(*) FROM jurisdiction WHERE code = 'S2'").fetchone() == (1,)
    for revision in (created, sited, ruled):
        revert.revert(db, revision, actor="创建办")
    assert small_district.answers(db) == answers
    assert _lines(db) == lines


def test_a_revert_that_would_remove_a_place_a_later_rule_or_closed_issue_uses_is_refused(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    sites.create(db, code="MK1", name="湖东小区", layer="old_compound",
                 geometry=small_district.box(120.716, 120.719), actor="创建办")
    sited = revisions.list_revisions(db, limit=1)[0].id
    sheet = tmp_path / "任务分解表.csv"
    sheet.write_text("任务,类别,点位,责任单位\n市场周边,CMP-03,MK1,W\n", encoding="utf-8")
    ruled = imports.import_responsibilities(db, sheet, actor="创建办").reassigned["revision"]
    with pytest.raises(Conflict, match=f"by revision {ruled} names a place"):
        revert.revert(db, sited, actor="创建办")
    assert db.execute("SELECT count(*) FROM responsibility_rule").fetchone() == (1,)
    revert.revert(db, ruled, actor="创建办")
    # A closed issue judged on the compound keeps it.
    on_site = db.execute("SELECT public_id FROM issue i JOIN site s ON s.id = i.site_id"
                         " WHERE s.code = 'MK1' LIMIT 1").fetchone()
    assert on_site is not None
    db.execute("UPDATE issue SET status = 'rejected', closed_at = now() WHERE public_id = %s",
               [on_site[0]])
    with pytest.raises(Conflict, match=f"closed issue {on_site[0]} was judged on"):
        revert.revert(db, sited, actor="创建办")


def test_a_refusal_names_a_changed_rule_by_its_category_and_place(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    sheet = tmp_path / "任务分解表.csv"
    sheet.write_text("任务,类别,社区,责任单位\n清理乱堆,CMP-03,CE,W\n", encoding="utf-8")
    first = imports.import_responsibilities(db, sheet, actor="创建办").reassigned["revision"]
    sheet.write_text("任务,类别,社区,责任单位\n清理乱堆,CMP-03,CE,E\n", encoding="utf-8")
    second = imports.import_responsibilities(db, sheet, actor="创建办").reassigned["revision"]
    with pytest.raises(Conflict) as refused:
        revert.revert(db, first, actor="创建办")
    assert f"responsibility_rule CMP-03 / CE / * was changed again after revision {first}, " \
           f"by revision {second}" in refused.value.message
