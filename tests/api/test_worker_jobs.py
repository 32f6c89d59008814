"""The worker's full job list: the map analysis refresh runs in the worker, not the web."""

from __future__ import annotations

import psycopg

from api.services.worker_jobs import all_jobs
from layers.db.settings import Settings
from layers.worker import runner


def test_the_refresh_job_prepares_the_landing_snapshots(demo_dsn: str) -> None:
    settings = Settings(database_url=demo_dsn, snapshot_interval=30)
    refresh = [j for j in all_jobs(settings) if j.name == "refresh-maps"]
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        ran = runner.run_due(conn, refresh, settings, "w")
        stored = conn.execute("SELECT count(*) FROM analysis_snapshot").fetchone()
    assert ran and ran[0][2] == f"{stored[0] if stored else 0} snapshot(s) refreshed"
    assert stored is not None and stored[0] >= 4


def test_the_refresh_job_is_off_at_interval_zero() -> None:
    refresh = [j for j in all_jobs(Settings(snapshot_interval=0)) if j.name == "refresh-maps"]
    assert refresh and not refresh[0].enabled(Settings(snapshot_interval=0))

