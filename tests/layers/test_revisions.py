"""Bulk reassignment stored as one revision: its counts and change rows, the audit trail
showing each change as the issue's event, nothing stored for a refused file, the outbox."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from geo.assign import RESULT_COLUMNS
from layers import revisions
from layers.assignment import load_assigner, reassign
from layers.auth.tokens import Principal
from layers.errors import NotFound, ValidationFailed
from layers.io import imports
from layers.issues import lifecycle, records
from layers.issues.lifecycle import Transition
from layers.notify import outbox
from tests import small_district
from tests.small_district import District

ADMIN = Principal(0, "创建办 李四", "admin", None)


def test_the_change_table_holds_old_and_new_of_every_result_column(
        db: psycopg.Connection[Any]) -> None:
    columns = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name ="
        " 'revision_change' ORDER BY ordinal_position").fetchall()]
    assert columns == ["revision_id", "issue_id", "status",
                       *[f"{side}_{c}" for c in RESULT_COLUMNS for side in ("old", "new")]]


def test_an_import_that_moves_issues_stores_one_revision_with_its_changes(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    before = small_district.answers(db)
    path = small_district.redrawn_file(tmp_path)
    report = imports.import_jurisdictions(db, path, actor="创建办 李四")
    after = small_district.answers(db)

    assert report.reassigned["examined"] == 5 and report.reassigned["changed"] == 2
    [listed] = revisions.list_revisions(db, limit=10)
    assert listed.id == report.reassigned["revision"]
    assert (listed.kind, listed.actor, listed.source) == ("import", "创建办 李四",
                                                          "redrawn.geojson")
    assert listed.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (listed.examined, listed.changed, listed.lead_changed) == (5, 2, 2)
    found = revisions.summary(db, listed.id)
    # Two issues of 乱堆乱放 (0.2 points each) change hands: 0.4 points at risk.
    assert found.units == [
        revisions.UnitBalance("W", "湖西社区", gained=2, lost=0, points_gained=0.4),
        revisions.UnitBalance("E", "湖东社区", gained=0, lost=2, points_lost=0.4)]
    assert found.pairs == [revisions.Handover("E", "W", 2, points=0.4)]
    assert found.points_moved == pytest.approx(0.4)

    # One change row per moved issue, its old and new answers those read and written.
    columns = ", ".join(f"old_{c}, new_{c}" for c in RESULT_COLUMNS)
    rows = db.execute(f"SELECT issue_id, {columns} FROM revision_change"
                      " WHERE revision_id = %s ORDER BY issue_id", [listed.id]).fetchall()
    moved = sorted(i for i in before if before[i] != after[i])
    assert [r[0] for r in rows] == moved
    for row in rows:
        assert tuple(row[1::2]) == before[row[0]] and tuple(row[2::2]) == after[row[0]]
    changes = revisions.changes(db, listed.id, limit=10)
    assert sorted(c.public_id for c in changes) == sorted(district.moving)
    assert {(c.old_jurisdiction, c.new_jurisdiction, c.old_lead_unit, c.new_lead_unit)
            for c in changes} == {("CE", "CW", "E", "W")}
    assert revisions.changes(db, listed.id, limit=1, offset=1)[0] == changes[1]
    # No audit event per issue any more: the revision is the record.
    assert db.execute("SELECT count(*) FROM issue_event WHERE action = 'reassign'"
                      ).fetchone() == (0,)
    # The issues moved were bumped, as an edit of them.
    assert db.execute("SELECT count(*) FROM issue WHERE version = 2").fetchone() == (2,)


def test_an_import_that_fails_validation_stores_no_revision(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    before = small_district.answers(db)
    with pytest.raises(ValidationFailed):
        imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path, bad_level=True),
                                     actor="创建办")
    assert db.execute("SELECT count(*) FROM revision").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM revision_change").fetchone() == (0,)
    assert small_district.answers(db) == before


def test_a_pass_that_moves_nothing_stores_no_revision(
        db: psycopg.Connection[Any], district: District) -> None:
    counts = reassign(db, load_assigner(db), actor="test")
    assert counts == {"examined": 5, "changed": 0}
    assert revisions.list_revisions(db, limit=10) == []


def test_the_audit_trail_shows_the_revision_change_in_order(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    public_id = district.moving[0]
    issue = records.get(db, public_id)
    assert issue.deadline is not None
    lifecycle.apply(db, public_id, Transition("extend_deadline", issue.version, note="雨天",
                                              deadline=issue.deadline + timedelta(days=2)),
                    Principal(0, "督查组", "supervisor", None))
    imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path), actor="创建办")
    version = records.get(db, public_id).version
    lifecycle.apply(db, public_id, Transition("reject", version, note="非本辖区问题"), ADMIN)

    trail = records.events(db, public_id)
    assert [e.action for e in trail][-3:] == ["extend_deadline", "reassign", "reject"]
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    moved = trail[-2]
    [stored] = revisions.list_revisions(db, limit=1)
    west, east = district.west_unit, district.east_unit
    assert moved.data["lead_unit_id"] == [east, west]
    assert moved.data["territorial_unit_id"] == [east, west]
    assert moved.data["revision"] == stored.id
    assert set(moved.data) == {"jurisdiction_id", "territorial_unit_id", "lead_unit_id",
                               "revision"}
    assert (moved.actor, moved.actor_role, moved.from_status, moved.to_status) == (
        "创建办", "system", trail[-3].to_status, trail[-3].to_status)


def test_a_revision_note_is_the_events_note(db: psycopg.Connection[Any], district: District
                                            ) -> None:
    db.execute("UPDATE jurisdiction SET unit_id = %s WHERE code = 'CE'", [district.west_unit])
    counts = reassign(db, load_assigner(db), actor="cli:li",
                      origin=revisions.Origin("reassign", note="湖东并入湖西"))
    assert counts["changed"] == 3
    notes = {e.note for e in records.events(db, district.issues[-1]) if e.action == "reassign"}
    assert notes == {"湖东并入湖西"}
    assert revisions.summary(db, counts["revision"]).revision.note == "湖东并入湖西"


def test_the_outbox_announces_each_new_lead_unit_with_the_events_payload(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    outbox.add(db, unit=None, channel="webhook", target="https://example.cn/hook",
               secret=None, events=["issue.reassigned"], created_by="创建办")
    report = imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path),
                                          actor="创建办")
    told = db.execute("SELECT o.unit_id, o.payload FROM outbox o"
                      " WHERE o.kind = 'issue.reassigned' ORDER BY o.id").fetchall()
    assert len(told) == report.reassigned["changed"] == 2
    assert {r[0] for r in told} == {district.west_unit}
    assert sorted(r[1]["issue"] for r in told) == sorted(district.moving)
    for _, payload in told:
        assert payload["event"] == "issue.reassigned" and payload["actor"] == "创建办"
        assert payload["unit"] == "W" and payload["community"] == "湖西"
        assert {"note", "at", "category", "status", "deadline", "lon", "lat"} <= set(payload)
    assert db.execute("SELECT count(*) FROM delivery").fetchone() == (2,)


def test_revisions_and_their_changes_are_append_only(
        db: psycopg.Connection[Any], district: District, tmp_path: Path) -> None:
    imports.import_jurisdictions(db, small_district.redrawn_file(tmp_path), actor="创建办")
    for statement in ("UPDATE revision SET note = 'x'", "DELETE FROM revision_change",
                      "TRUNCATE revision_change", "DELETE FROM revision"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    assert db.execute("SELECT count(*) FROM revision_change").fetchone() == (2,)


def test_an_unknown_revision_is_not_found(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(NotFound):
        revisions.summary(db, 12345)
    assert revisions.changes(db, 12345, limit=10) == []
