"""Preview: what an import or an edit of the lines would do, with nothing stored.

The change runs for real (the same validation, writes and assignment engine, so a preview
cannot disagree with the act) inside a transaction that is always rolled back. Before the
rollback it reads what the change did: the rows of the edited table added, removed and
changed (by code), the revision the reassignment wrote with its counts per unit gained/lost
and per from -> to pair and the points at risk that change hands (counted once, by
:mod:`layers.revisions`, the same way a stored revision is), and, for jurisdictions, the
data-quality report of the new set (:mod:`geo.quality`).

A change that fails validation raises as the act would (``ValidationFailed``), and stores
nothing either. Sequences (ids) are not transactional: a preview may use up ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import sql

from layers import revisions

Table = Literal["jurisdiction", "site", "responsibility_rule"]
T = TypeVar("T")
#: At most this many codes are listed per kind of row change (the counts are complete).
MAX_ROWS_LISTED = 200
#: At most this many data-quality findings are listed (the counts per kind are complete).
MAX_FINDINGS = 50

# How a row of each table is named to the user: its code, else what identifies it.
_LABEL = {
    "jurisdiction": sql.SQL("t.code"),
    "site": sql.SQL("coalesce(t.code, t.name)"),
    "responsibility_rule": sql.SQL(
        "concat_ws(' / ', coalesce(t.category_code, '*'),"
        " coalesce((SELECT code FROM jurisdiction WHERE id = t.jurisdiction_id), '*'),"
        " coalesce((SELECT coalesce(code, name) FROM site WHERE id = t.site_id), '*'))"),
}
# Columns that say when, not what: a row rewritten with the same content is not changed.
_NOT_CONTENT = ("updated_at", "created_at")


@dataclass(frozen=True)
class RowChanges:
    """The rows of the edited table the change adds, removes and changes, by code."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    added_codes: list[str] = field(default_factory=list)
    removed_codes: list[str] = field(default_factory=list)
    changed_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """One data-quality finding of the new set of jurisdictions."""

    kind: str
    codes: list[str]
    area_m2: float | None
    detail: str
    detail_zh: str


@dataclass(frozen=True)
class Quality:
    """The data-quality report of the new jurisdictions (``sitewatch check``)."""

    counts: dict[str, int]
    findings: list[Finding]


@dataclass(frozen=True)
class Preview:
    """What would happen: rows, open issues that would move, points at risk, quality."""

    table: Table
    rows: RowChanges
    examined: int
    changed: int
    lead_changed: int
    points_moved: float
    units: list[revisions.UnitBalance]
    pairs: list[revisions.Handover]
    quality: Quality | None = None
    repaired: list[dict[str, Any]] = field(default_factory=list)


def run(conn: psycopg.Connection[Any], table: Table, act: Callable[[], T], *,
        quality: bool | None = None) -> tuple[T, Preview]:
    """Run ``act`` (an import or edit writing to ``table`` through ``conn``), report what it
    did, and roll it all back. ``quality``: check the new jurisdictions (default: when
    ``table`` is jurisdiction). Errors of ``act`` propagate, with nothing stored."""
    with conn.transaction() as tx:
        last = _last_revision(conn)
        before = _snapshot(conn, table)
        result = act()
        after = _snapshot(conn, table)
        rows = _diff(before, after)
        revision = _revision_of_this_transaction(conn, last)
        if revision is None:
            examined, moved = _examined(result), None
        else:
            moved = revisions.summary(conn, revision)
            examined = moved.revision.examined
        report = _quality(conn) if (table == "jurisdiction" if quality is None
                                    else quality) else None
        preview = Preview(
            table=table, rows=rows, examined=examined,
            changed=moved.revision.changed if moved else 0,
            lead_changed=moved.revision.lead_changed if moved else 0,
            points_moved=moved.points_moved if moved else 0.0,
            units=moved.units if moved else [], pairs=moved.pairs if moved else [],
            quality=report, repaired=list(getattr(result, "repaired", []) or []))
        raise psycopg.Rollback(tx)
    return result, preview


def _last_revision(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM revision").fetchone()
    return int(row[0]) if row else 0


def _revision_of_this_transaction(conn: psycopg.Connection[Any], last: int) -> int | None:
    """The revision the change wrote: newer than ``last`` and stamped with this
    transaction's time (``now()``), so not one another session committed meanwhile."""
    row = conn.execute("SELECT max(id) FROM revision WHERE id > %s AND created_at = now()",
                       [last]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _examined(result: Any) -> int:
    counts = getattr(result, "reassigned", None)
    return int(counts.get("examined", 0)) if isinstance(counts, dict) else 0


def _snapshot(conn: psycopg.Connection[Any], table: Table) -> dict[int, tuple[str, str]]:
    """Per row id: its label and a digest of its content."""
    query = sql.SQL("SELECT t.id, {label}, md5((to_jsonb(t) - %s::text[])::text)"
                    " FROM {table} t").format(label=_LABEL[table],
                                               table=sql.Identifier(table))
    return {int(i): (str(label), digest) for i, label, digest
            in conn.execute(query, [list(_NOT_CONTENT)]).fetchall()}


def _diff(before: dict[int, tuple[str, str]], after: dict[int, tuple[str, str]]) -> RowChanges:
    added = sorted(after[i][0] for i in after.keys() - before.keys())
    removed = sorted(before[i][0] for i in before.keys() - after.keys())
    changed = sorted(after[i][0] for i in after.keys() & before.keys()
                     if after[i][1] != before[i][1])
    return RowChanges(len(added), len(removed), len(changed), added[:MAX_ROWS_LISTED],
                      removed[:MAX_ROWS_LISTED], changed[:MAX_ROWS_LISTED])


def _quality(conn: psycopg.Connection[Any]) -> Quality:
    from geo.quality import check_jurisdictions, summary
    from layers.views import mapdata

    findings = check_jurisdictions(mapdata.jurisdiction_frame(conn))
    listed = [Finding(str(r.kind), [str(c) for c in r.codes],
                      None if r.area_m2 != r.area_m2 else float(r.area_m2),
                      str(r.detail), str(r.detail_zh))
              for r in findings.head(MAX_FINDINGS).itertuples()]
    return Quality(summary(findings), listed)
