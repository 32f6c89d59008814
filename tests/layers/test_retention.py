"""Retention (migration 0031, layers/retention.py): reporters' names and contacts of issues
closed more than retention_years ago are erased from every table and route, their photos
moved to the archive (410 on download), recent and open issues untouched, a dry run changes
nothing, and each run is recorded and written into the trail of the issues it changed."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from layers import retention
from layers.db.settings import Settings
from layers.issues import evidence
from layers.worker import jobs
from tests.conftest import bearer, make_jpeg

ZONE = Settings().zone
NOW = datetime(2026, 11, 20, 10, tzinfo=ZONE)
OLD = datetime(2021, 3, 5, 9, tzinfo=ZONE)  # closed within the month: past three years
NAME, CONTACT = "张三丰", "13900001111"


@dataclass(frozen=True)
class Case:
    """The issues and photos of the test district."""

    old_closed: str  # public ids
    old_open: str
    recent_closed: str
    photo: str  # refs: on the old closed issue
    after: str  # its rectification photo (event evidence)
    open_photo: str  # on the old open issue
    shared: str  # on both old issues: stays while the open one lives


def _issue(conn: psycopg.Connection[Any], at: datetime, status: str, photos: list[str],
           reporter: str) -> tuple[int, str]:
    closed = at + timedelta(days=3) if status == "verified" else None
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, reported_at, status,"
        " closed_at, photos, reporter, reporter_contact)"
        " VALUES ('CMP-03', ST_SetSRID(ST_MakePoint(120.705, 31.305), 4326), '乱堆乱放',"
        " 'citizen', %s, %s, %s, %s, %s, %s) RETURNING id, public_id",
        [at, status, closed, json.dumps(photos), reporter, f"{reporter} {CONTACT}"]).fetchone()
    assert row is not None
    conn.execute("INSERT INTO issue_event (issue_id, at, actor, actor_role, action, to_status)"
                 " VALUES (%s, %s, '巡查员', 'inspector', 'report', 'reported')", [row[0], at])
    return int(row[0]), str(row[1])


def _photo(conn: psycopg.Connection[Any], root: Path, shade: int) -> str:
    return evidence.save(conn, root, make_jpeg(colour=(shade, 80, 40)), zone=ZONE).ref


@pytest.fixture
def case(dsn: str, tmp_path: Path) -> Case:
    with psycopg.connect(dsn) as conn:
        # A subscriber: the trail's events then also write notification payloads (outbox).
        conn.execute("INSERT INTO subscription (channel, target, created_by) VALUES"
                     " ('webhook', 'https://example.org/hook', 'test')")
        photo, after, open_photo, shared = (_photo(conn, tmp_path, s) for s in (10, 60, 110, 160))
        old_id, old_closed = _issue(conn, OLD, "verified", [photo, shared], NAME)
        conn.execute("INSERT INTO issue_event (issue_id, at, actor, actor_role, action,"
                     " from_status, to_status, evidence) VALUES (%s, %s, '湖东社区', 'unit',"
                     " 'rectify', 'assigned', 'rectified', %s)",
                     [old_id, OLD + timedelta(days=1), json.dumps([after])])
        conn.execute("INSERT INTO issue_event (issue_id, at, actor, actor_role, action,"
                     " from_status, to_status) VALUES (%s, %s, '督查组', 'supervisor', 'verify',"
                     " 'rectified', 'verified')", [old_id, OLD + timedelta(days=2)])
        _, old_open = _issue(conn, OLD, "assigned", [open_photo, shared], "李四")
        _, recent = _issue(conn, NOW - timedelta(days=30), "verified", [], "王五")
        token = conn.execute("INSERT INTO api_token (name, token_hash, role) VALUES ('app',"
                             " sha256('x'::bytea), 'inspector') RETURNING id").fetchone()
        assert token is not None
        conn.execute("INSERT INTO idempotency_key (token_id, key, request_hash, public_id)"
                     " VALUES (%s, 'k1', sha256(%s::bytea), %s)",
                     [token[0], f"{NAME}{CONTACT}".encode(), old_closed])
    return Case(old_closed, old_open, recent, photo, after, open_photo, shared)


def _everything(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Every row of every table as text (the whole database, for searching and comparing)."""
    tables = [r[0] for r in conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid ="
        " c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition AND c.relname NOT IN ('spatial_ref_sys',"
        " '_yoyo_log', '_yoyo_migration', '_yoyo_version', 'yoyo_lock')").fetchall()]
    out = {}
    for table in tables:
        row = conn.execute(sql.SQL("SELECT string_agg(t::text, '|' ORDER BY t::text) FROM {} t")
                           .format(sql.Identifier(table))).fetchone()
        out[table] = row[0] if row and row[0] else ""
    return out


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _run(dsn: str, root: Path, **kwargs: Any) -> retention.Report:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return retention.run(conn, data_dir=root, years=3, now=NOW, actor="测试", **kwargs)


def test_a_dry_run_counts_and_changes_nothing(dsn: str, tmp_path: Path, case: Case) -> None:
    with psycopg.connect(dsn) as conn:
        before = _everything(conn)
    files = _files(tmp_path)
    report = _run(dsn, tmp_path, dry_run=True)
    assert (report.run_id, report.counts) == (None, retention.Counts(
        issues=1, with_personal_data=1, photos=2, idempotency=1))
    with psycopg.connect(dsn) as conn:
        assert _everything(conn) == before
    assert _files(tmp_path) == files


def test_old_closed_issues_lose_reporter_data_and_photos_everywhere(
        dsn: str, tmp_path: Path, case: Case) -> None:
    report = _run(dsn, tmp_path)
    assert report.counts == retention.Counts(issues=1, with_personal_data=1, photos=2,
                                             idempotency=1)
    with psycopg.connect(dsn) as conn:
        tables = _everything(conn)
        rows: dict[str, str] = dict(conn.execute(
            "SELECT public_id, (reporter, reporter_contact)::text FROM issue").fetchall())
        trail = conn.execute("SELECT e.actor, e.data FROM issue_event e JOIN issue i ON"
                             " i.id = e.issue_id WHERE i.public_id = %s AND e.action ="
                             " 'retention'", [case.old_closed]).fetchall()
        run = conn.execute("SELECT actor, state, cutoff, issues_erased, photos_archived,"
                           " idempotency_forgotten FROM retention_run").fetchall()
        marked: dict[str, str | None] = dict(conn.execute(
            "SELECT 'sha256:' || sha256, archive FROM evidence").fetchall())
    # Gone from every table (issue columns, trail, idempotency records, outbox, ...).
    assert tables["outbox"]  # payloads were written, and hold no reporter either
    assert [t for t, text in tables.items() if NAME in text] == []
    assert tables["issue"].count(CONTACT) == 2  # the other two issues' contacts
    assert rows[case.old_closed] == "(,)"
    # Recent and still-open issues keep theirs.
    assert rows[case.old_open] == f'(李四,"李四 {CONTACT}")'
    assert rows[case.recent_closed] == f'(王五,"王五 {CONTACT}")'
    assert trail == [("system:retention", {"run": report.run_id, "reporter_erased": True,
                                           "photos_archived": 2})]
    assert run == [("测试", "done", datetime(2023, 11, 20, 10, tzinfo=ZONE), 1, 2, 1)]
    # The old closed issue's photos moved to its month's archive; the others stay live.
    assert marked == {case.photo: "photos-2021-03.tar", case.after: "photos-2021-03.tar",
                      case.open_photo: None, case.shared: None}
    with psycopg.connect(dsn) as conn:
        live = {ref: evidence.path_of(conn, tmp_path, ref)[0].is_file() for ref in marked}
    assert live == {case.photo: False, case.after: False, case.open_photo: True,
                    case.shared: True}
    archive = retention.archive_dir(tmp_path)
    with tarfile.open(archive / "photos-2021-03.tar") as tar:
        members = set(tar.getnames())
    assert members == {f"{ref.removeprefix('sha256:')}.jpg" for ref in (case.photo, case.after)}
    manifest = [json.loads(line) for line in
                (archive / "photos-2021-03.manifest.jsonl").read_text().splitlines()]
    assert sorted((m["sha256"], m["issues"]) for m in manifest) == sorted(
        (ref.removeprefix("sha256:"), [case.old_closed]) for ref in (case.photo, case.after))
    # A second run finds nothing more to do.
    assert _run(dsn, tmp_path).counts == retention.Counts(0, 0, 0, 0)


def test_routes_show_nothing_erased_and_archived_photos_answer_410(
        dsn: str, tmp_path: Path, case: Case) -> None:
    _run(dsn, tmp_path)
    admin = bearer(dsn, "admin")
    with TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path)),
                    headers=admin) as client:
        answers = [client.get(f"/api/v1/issues/{case.old_closed}"),
                   client.get(f"/api/v1/issues/{case.old_closed}/events"),
                   client.get("/api/v1/issues", params={"limit": 100}),
                   client.get(f"/open311/v2/requests/{case.old_closed}.json"),
                   client.get("/open311/v2/requests.json"),
                   client.get(f"/ogc/collections/issues/items/{case.old_closed}"),
                   client.get("/ogc/collections/issues/items", params={"limit": 100}),
                   client.get("/api/v1/exports/issues", params={"format": "csv"})]
        gone = client.get(f"/api/v1/evidence/{case.photo}")
        live = client.get(f"/api/v1/evidence/{case.open_photo}")
        recent = client.get(f"/api/v1/issues/{case.old_open}")
    for answer in answers:
        assert answer.status_code == 200, answer.url
        assert NAME not in answer.text and f"{NAME} {CONTACT}" not in answer.text
    assert answers[0].status_code == 200 and answers[0].json()["properties"]["reporter"] is None
    assert recent.json()["properties"]["reporter"] == "李四"  # the admin sees live ones
    assert live.status_code == 200
    assert gone.status_code == 410
    problem = gone.json()
    assert problem["code"] == "archived" and "photos-2021-03.tar" in problem["detail"]
    assert "归档" in problem["detail"] and "archived" in problem["detail"]


def test_the_worker_runs_it_as_itself(dsn: str, tmp_path: Path, case: Case) -> None:
    settings = Settings(database_url=dsn, data_dir=tmp_path)
    with psycopg.connect(dsn) as conn:
        summary = jobs.retention_run(conn, settings, NOW)
        assert conn.execute("SELECT actor, state FROM retention_run").fetchall() == [
            (jobs.SYSTEM_ACTOR, "done")]
    assert "1 reporter(s) erased, 2 photo(s) archived" in summary


def test_a_batch_is_all_or_nothing(dsn: str, tmp_path: Path, case: Case,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Iterator[None]:
        raise OSError("disk full")

    with psycopg.connect(dsn) as conn:
        before = _everything(conn)
    monkeypatch.setattr(retention, "_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(dsn, tmp_path)
    with psycopg.connect(dsn) as conn:
        after = _everything(conn)
        assert conn.execute("SELECT state, error, issues_erased FROM retention_run"
                            ).fetchall() == [("failed", "OSError", 0)]
    # Only the run's own record was written; every photo is still live.
    assert {t: v for t, v in after.items() if t != "retention_run"} == {
        t: v for t, v in before.items() if t != "retention_run"}
    with psycopg.connect(dsn) as conn:
        assert all(evidence.path_of(conn, tmp_path, ref)[0].is_file()
                   for ref in (case.photo, case.after))


def test_cutoff_counts_calendar_years() -> None:
    assert retention.cutoff(datetime(2028, 2, 29, 12, tzinfo=ZONE), 3) == datetime(
        2025, 2, 28, 12, tzinfo=ZONE)
    assert retention.cutoff(NOW, 3) == datetime(2023, 11, 20, 10, tzinfo=ZONE)


def test_the_cli_dry_run_then_run(dsn: str, tmp_path: Path, case: Case,
                                  sitewatch: Any) -> None:
    dry = sitewatch(["retention", "run", "--dry-run"], dsn, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 1 issue(s) closed before" in dry.stdout
    assert "1 reporter name(s)/contact(s) would be erased, 2 photo(s) would be" in dry.stdout
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM retention_run").fetchone() == (0,)
    done = sitewatch(["retention", "run"], dsn, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 reporter name(s)/contact(s) were erased, 2 photo(s) were archived" in done.stdout
    listed = sitewatch(["retention", "list"], dsn, tmp_path)
    assert "done" in listed.stdout and "1 issue(s), 2 photo(s), 1 record(s)" in listed.stdout
