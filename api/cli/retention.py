"""``sitewatch retention run [--dry-run]``: erase reporters' data and archive the photos of
issues closed more than ``SITEWATCH_RETENTION_YEARS`` ago (layers/retention.py); ``list`` shows
the past runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from api.cli.session import actor, session
from layers import retention
from layers.db.settings import Settings

retention_app = typer.Typer(help="Retention of personal data: erase reporters' names and "
                                 "contacts, archive photos of long-closed issues.",
                            no_args_is_help=True)
out = Console(highlight=False)


@retention_app.command("run")
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")]
    = False,
    years: Annotated[int | None, typer.Option(
        min=1, max=100, help="Override SITEWATCH_RETENTION_YEARS for this run.")] = None,
) -> None:
    """Erase and archive what the retention period allows, batch by batch (each batch all
    or nothing), with progress; the run is recorded with its counts and in each issue's trail."""
    settings = Settings()
    kept = years or settings.retention_years

    def report(done: int, total: int) -> None:
        out.print(f"  {done:,} / {total:,} issue(s)", end="\r")

    with session(settings) as conn:
        conn.autocommit = True
        done = retention.run(conn, data_dir=settings.data_dir, years=kept,
                             now=datetime.now(UTC), actor=actor(), dry_run=dry_run,
                             progress=report)
    c = done.counts
    verb = "would be" if dry_run else "were"
    out.print(("dry run: " if dry_run else f"run {done.run_id}: ")
              + f"{c.issues:,} issue(s) closed before {done.cutoff:%Y-%m-%d} ({kept} years);"
              f" {c.with_personal_data:,} reporter name(s)/contact(s) {verb} erased,"
              f" {c.photos:,} photo(s) {verb} archived to"
              f" {retention.archive_dir(settings.data_dir)},"
              f" {c.idempotency:,} idempotency record(s) {verb} forgotten", soft_wrap=True)


@retention_app.command("list")
def list_runs(limit: Annotated[int, typer.Option(min=1, max=500)] = 10) -> None:
    """The latest retention runs: who, when, cutoff, state and counts."""
    with session() as conn:
        rows = retention.last_runs(conn, limit)
    for rid, who, started, _finished, cut, state, issues, photos, forgotten in rows:
        out.print(f"{rid:>5}  {started:%Y-%m-%d %H:%M}  {state:<7} cutoff {cut:%Y-%m-%d}"
                  f"  {issues:,} issue(s), {photos:,} photo(s), {forgotten:,} record(s)"
                  f"  by {who}", soft_wrap=True)
    out.print(f"{len(rows)} run(s)")
