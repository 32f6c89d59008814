"""``sitewatch revisions``: the bulk reassignments stored as revisions (who moved which open
issues to which unit, from which file or edit), and their revert. The same as
``GET /api/v1/revisions`` and ``POST /api/v1/revisions/{id}/revert``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli.session import actor, session
from layers import revert, revisions

revisions_app = typer.Typer(help="Revisions: the changes of the lines and the reassignments "
                                 "of open issues they caused; revert one.",
                            no_args_is_help=True)
out = Console(highlight=False)


def _when(revision: revisions.Revision) -> str:
    return revision.created_at.strftime("%Y-%m-%d %H:%M")


@revisions_app.command("list")
def list_revisions(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Revisions, newest first: id, when, kind, issues moved (to another lead unit), who,
    from what, the note."""
    with session() as conn:
        rows = revisions.list_revisions(conn, limit=limit)
    # One line each, whole however narrow the terminal: scripts read them too.
    for r in rows:
        note = f"  «{r.note}»" if r.note else ""
        out.print(f"{r.id:>6}  {_when(r)}  {r.kind:<8} {r.changed:>9,} moved"
                  f" ({r.lead_changed:,} to another unit)  by {r.actor}"
                  f"  {r.source or '-'}{note}", soft_wrap=True)
    out.print(f"{len(rows)} revision(s)")


@revisions_app.command("show")
def show(
    revision_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1,
                                               help="The revision's id (revisions list).")],
    changes: Annotated[int, typer.Option(min=0, max=revisions.MAX_CHANGES_PAGE,
                                         help="How many moved issues to list.")] = 20,
) -> None:
    """One revision: who gained and lost issues, the moves by unit pair, the first changes."""
    with session() as conn:
        found = revisions.summary(conn, revision_id)
        rows = revisions.changes(conn, revision_id, limit=changes) if changes else []
    r = found.revision
    out.print(f"revision {r.id}: {r.kind} by {r.actor} at {_when(r)}"
              + (f", reverting revision {r.reverts}" if r.reverts is not None else ""))
    if r.source:
        out.print(f"  source: {r.source}" + (f" (sha256 {r.source_sha256})"
                                             if r.source_sha256 else ""))
    if r.note:
        out.print(f"  note: {r.note}")
    out.print(f"  {r.changed:,} of {r.examined:,} open issues examined changed; "
              f"{r.lead_changed:,} changed lead unit; points at risk that changed hands "
              f"{found.points_moved:g}")
    if found.units:
        units = Table("unit", "name", "gained", "lost", "points gained", "points lost")
        for u in found.units:
            units.add_row(u.unit, u.name, str(u.gained), str(u.lost), f"{u.points_gained:g}",
                          f"{u.points_lost:g}")
        out.print(units)
    if found.pairs:
        pairs = Table("from", "to", "issues", "points")
        for p in found.pairs:
            pairs.add_row(p.from_unit or "(unassigned)", p.to_unit or "(unassigned)",
                          str(p.issues), f"{p.points:g}")
        out.print(pairs)
    if rows:
        moved = Table("issue", "status", "ground", "lead unit")
        for c in rows:
            moved.add_row(c.public_id, c.status,
                          f"{c.old_jurisdiction or '-'} -> {c.new_jurisdiction or '-'}",
                          f"{c.old_lead_unit or '-'} -> {c.new_lead_unit or '-'}")
        out.print(moved)
        if len(rows) < r.changed:
            out.print(f"first {len(rows)} of {r.changed:,} changes; more with --changes or"
                      f" GET /api/v1/revisions/{r.id}")


@revisions_app.command("revert")
def revert_command(
    revision_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1,
                                               help="The revision's id (revisions list).")],
    note: Annotated[str | None, typer.Option(
        help="Why (at most 4,000 characters), kept with the revert revision.")] = None,
) -> None:
    """Put the lines and rules revision ID changed back as they were just before it and
    reassign the open issues by them, as a new revision of kind 'revert'. Refused when a line
    it changed was changed again since (revert the later revision first), when it was
    already reverted, or when it changed no lines (a plain reassign)."""
    if note is not None and len(note) > 4000:
        raise typer.BadParameter("at most 4,000 characters", param_hint="--note")
    with session() as conn:
        done = revert.revert(conn, revision_id, actor=actor(), note=note)
    out.print(f"reverted revision {done.reverts} as revision {done.revision}: {done.lines} "
              f"line(s) put back; {done.changed:,} of {done.examined:,} open issues moved back"
              f" (sitewatch revisions show {done.revision})")
