"""The worker's jobs: slots claimed once however many workers run, schedules, escalation
signed by the system actor, backups pruned to the newest N."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from api.cli.main import app
from layers.db.settings import Settings
from layers.worker import jobs, runner
from layers.worker.jobs import Daily, Every, Job

NOW = datetime(2026, 11, 20, 2, 0, 7, tzinfo=UTC)


def _counting(calls: list[str]) -> jobs.Run:
    def run(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
        calls.append(now.isoformat())
        return "counted"
    return run


def test_two_workers_at_once_run_each_slot_once(dsn: str) -> None:
    calls: list[str] = []
    registry = [Job("count", Every(60), _counting(calls))]
    settings = Settings(database_url=dsn)
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            start.wait()
            for _ in range(5):
                runner.run_due(conn, registry, settings, f"w{index}", now=NOW)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT job, slot, ok, result FROM job_run").fetchall()
    assert rows == [("count", datetime(2026, 11, 20, 2, 0, tzinfo=UTC), True, "counted")]


def test_a_new_slot_runs_again_and_a_failure_is_recorded(dsn: str) -> None:
    calls: list[str] = []

    def broken(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
        conn.execute("SELECT no_such_column FROM worker")
        return "unreachable"

    def buggy(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
        raise ZeroDivisionError("a bug in a job")

    registry = [Job("count", Every(60), _counting(calls)), Job("broken", Every(60), broken),
                Job("buggy", Every(60), buggy)]
    settings = Settings(database_url=dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = runner.run_due(conn, registry, settings, "w", now=NOW)
        runner.run_due(conn, registry, settings, "w", now=NOW.replace(second=50))
        runner.run_due(conn, registry, settings, "w", now=NOW.replace(minute=1))
        failed = conn.execute("SELECT count(*) FROM job_run WHERE job = 'broken' "
                              "AND NOT ok AND result LIKE 'failed: %%no_such_column%%'"
                              ).fetchone()
    assert len(calls) == 2
    assert first[1][2].startswith("failed:")
    assert first[2][2] == "failed: ZeroDivisionError: a bug in a job"
    assert failed == (2,)


def test_schedules_name_their_slots() -> None:
    settings = Settings(timezone="Asia/Shanghai")
    assert Every(300).slot(NOW, settings) == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    nightly = Daily(time(2, 30))
    # 02:00 UTC is 10:00 in Shanghai: today's 02:30 local run is due, slot 2026-11-19 18:30Z.
    assert nightly.slot(NOW, settings) == datetime(2026, 11, 19, 18, 30, tzinfo=UTC)
    assert nightly.slot(datetime(2026, 11, 19, 18, 29, tzinfo=UTC), settings) is None
    morning = Daily(time(11, 0))
    assert morning.slot(NOW, settings) is None
    deliver = next(j for j in jobs.JOBS if j.name == "deliver").schedule
    # SITEWATCH_DELIVER_EVERY sets the delivery job's interval (NOW is 02:00:07).
    assert deliver.slot(NOW, Settings(deliver_every=5)) == NOW - timedelta(seconds=2)
    assert deliver.slot(NOW, Settings(deliver_every=0.5)) == NOW


def test_backup_is_off_without_a_folder_and_keeps_the_newest(tmp_path: Path) -> None:
    backup = next(j for j in jobs.JOBS if j.name == "backup")
    assert not backup.enabled(Settings(backup_dir=None))
    assert backup.enabled(Settings(backup_dir=tmp_path))
    for day in range(1, 11):
        (tmp_path / f"sitewatch-202611{day:02d}-023000.tar").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("kept")
    gone = jobs.prune_backups(tmp_path, 7)
    assert [p.name for p in gone] == [f"sitewatch-202611{d:02d}-023000.tar" for d in (1, 2, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt", *[f"sitewatch-202611{d:02d}-023000.tar" for d in range(4, 11)]]


def test_nightly_backup_writes_into_the_folder_and_prunes(dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    for day in range(1, 4):
        (folder / f"sitewatch-200001{day:02d}-023000.tar").write_bytes(b"old")
    settings = Settings(database_url=dsn, data_dir=tmp_path / "data", backup_dir=folder,
                        backup_keep=2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ran = runner.run_due(conn, [j for j in jobs.JOBS if j.name == "backup"], settings,
                             "w", now=NOW)
    assert [r[0] for r in ran] == ["backup"] and ran[0][2].endswith("; 2 pruned")
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["sitewatch-20000103-023000.tar", "sitewatch-20261120-100007.tar"]


def test_escalation_job_escalates_what_the_cli_would(demo_dsn: str) -> None:
    settings = Settings(database_url=demo_dsn)
    escalate = [j for j in jobs.JOBS if j.name == "escalate"]
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        ran = runner.run_due(conn, escalate, settings, "w")
        signed = conn.execute("SELECT count(*) FROM supervision_order WHERE kind = "
                              "'escalation' AND issued_by = %s", [jobs.SYSTEM_ACTOR]).fetchone()
    assert signed is not None and signed[0] > 0
    assert ran[0][2] == f"{signed[0]} order(s) escalated"
    after = CliRunner().invoke(app, ["orders", "escalate"], env={"DATABASE_URL": demo_dsn})
    assert after.exit_code == 0 and "nothing newly overdue" in after.output


def test_history_older_than_a_week_is_forgotten(dsn: str) -> None:
    settings = Settings(database_url=dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for days in (1, 6, 8, 30):
            conn.execute("INSERT INTO job_run (job, slot, worker, started_at) VALUES "
                         "('x', %s, 'w', %s)", [NOW - timedelta(days=days)] * 2)
        conn.execute("INSERT INTO worker (name, host, pid, heartbeat, stopped_at) VALUES "
                     "('old', 'h', 1, %(t)s, %(t)s), ('idle', 'h', 2, %(t)s, NULL), "
                     "('new', 'h', 3, %(n)s, NULL)",
                     {"t": NOW - timedelta(days=9), "n": NOW})
        result = jobs.forget_history(conn, settings, NOW)
        kept = conn.execute("SELECT count(*) FROM job_run").fetchone()
        workers = conn.execute("SELECT name FROM worker").fetchall()
    assert result == "2 run(s) and 2 worker(s) forgotten"
    assert kept == (2,) and workers == [("new",)]
