"""Revisions: a bulk reassignment stored as one act, with its compact change table.

An import, a boundary or site edit, or ``sitewatch reassign`` that moves open issues writes
one ``revision`` row (who, when, what file or row caused it, a note, counts) and one
``revision_change`` row per moved issue holding its old and new answer of assignment
(migration 0022). :mod:`layers.assignment` writes them; this module owns their SQL, and the
reads behind ``GET /api/v1/revisions`` and ``sitewatch revisions``.

A revision is stored when at least one issue changed answer, or when the lines changed
(layers.history.record_line_change): it is the record of a change of the lines and of the
reassignment it caused. The lines' own past versions are kept by migration 0026
(layers.history), and a revision is undone by a new one of kind 'revert' (layers.revert).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from geo.assign import RESULT_COLUMNS
from layers.errors import NotFound

RevisionKind = Literal["import", "edit", "reassign", "revert"]
#: The most changes one page of a revision lists.
MAX_CHANGES_PAGE = 1000


@dataclass(frozen=True)
class Origin:
    """What causes a reassignment: its kind, the file or row it comes from, a note."""

    kind: RevisionKind
    source: str | None = None
    source_sha256: str | None = None
    note: str | None = None
    #: The revision a revert undoes (kind 'revert' only).
    reverts: int | None = None

    @classmethod
    def of_file(cls, path: Path, *, name: str | None = None) -> Origin:
        """An import of ``path`` (named ``name`` when the user knows it by another name)."""
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return cls("import", (name or path.name)[:300], digest.hexdigest())


def record(conn: psycopg.Connection[Any], origin: Origin, *, actor: str, examined: int,
           changes: str) -> int:
    """Store a revision for the changes in the temporary table ``changes``; its id.

    ``changes`` has the columns ``id`` (issue), ``status`` and, per result column ``c`` of
    assignment, ``old_c`` and ``c`` (the new answer). The counts are computed here, once.
    """
    row = conn.execute(_RECORD.format(changes=sql.Identifier(changes)), {
        "actor": actor, "kind": origin.kind, "source": origin.source,
        "sha256": origin.source_sha256, "note": origin.note, "examined": examined,
        "reverts": origin.reverts,
    }).fetchone()
    assert row is not None
    return int(row[0])


def record_empty(conn: psycopg.Connection[Any], origin: Origin, *, actor: str,
                 examined: int = 0) -> int:
    """Store a revision that moved no issue of the ``examined`` (it changed lines only)."""
    conn.execute("CREATE TEMP TABLE no_changes (id bigint, status text, category_code text,"
                 " lead_unit_id bigint, old_lead_unit_id bigint) ON COMMIT DROP")
    revision = record(conn, origin, actor=actor, examined=examined, changes="no_changes")
    conn.execute("DROP TABLE no_changes")
    return revision


def add_changes(conn: psycopg.Connection[Any], revision_id: int, changes: str) -> None:
    """Copy the temporary table ``changes`` (see :func:`record`) into ``revision_change``.

    Run it after the issues are updated: the outbox trigger on ``revision_change`` reads
    the issues' new lead units.
    """
    names = [x for c in RESULT_COLUMNS for x in ("old_" + c, "new_" + c)]
    values = [sql.Identifier(x if x.startswith("old_") else x.removeprefix("new_"))
              for x in names]
    conn.execute(sql.SQL(
        "INSERT INTO revision_change (revision_id, issue_id, status, {names})"
        " SELECT %s, id, status, {values} FROM {changes}").format(
            names=sql.SQL(", ").join(map(sql.Identifier, names)),
            values=sql.SQL(", ").join(values), changes=sql.Identifier(changes)),
        [revision_id])


# Per lead unit (the one answering for the issue): how many issues it gained and lost, and
# the points at risk that change hands with them (the sum of their categories' points); per
# from -> to pair of lead units, how many moved and their points (NULL: the unassigned queue).
_RECORD = sql.SQL("""
WITH moved AS (
    SELECT c.old_lead_unit_id AS from_id, c.lead_unit_id AS to_id,
           coalesce(k.points, 0) AS points
    FROM {changes} c JOIN issue i ON i.id = c.id LEFT JOIN category k ON k.code = i.category_code
    WHERE c.lead_unit_id IS DISTINCT FROM c.old_lead_unit_id
), balance AS (
    SELECT unit_id, sum(gained)::int AS gained, sum(lost)::int AS lost,
           sum(points_gained)::float8 AS points_gained, sum(points_lost)::float8 AS points_lost
    FROM (
        SELECT to_id AS unit_id, 1 AS gained, 0 AS lost, points AS points_gained,
               0 AS points_lost FROM moved WHERE to_id IS NOT NULL
        UNION ALL
        SELECT from_id, 0, 1, 0, points FROM moved WHERE from_id IS NOT NULL) x
    GROUP BY unit_id
), pairs AS (
    SELECT from_id, to_id, count(*)::int AS issues, sum(points)::float8 AS points
    FROM moved GROUP BY from_id, to_id
)
INSERT INTO revision (actor, kind, source, source_sha256, note, reverts, counts)
SELECT %(actor)s, %(kind)s, %(source)s, %(sha256)s, %(note)s, %(reverts)s, jsonb_build_object(
    'examined', %(examined)s::int,
    'changed', (SELECT count(*) FROM {changes}),
    'lead_changed', (SELECT count(*) FROM moved),
    'points_moved', (SELECT coalesce(sum(points), 0)::float8 FROM moved),
    'units', coalesce((
        SELECT jsonb_agg(jsonb_build_object('unit', u.code, 'name', u.name,
                                            'gained', b.gained, 'lost', b.lost,
                                            'points_gained', b.points_gained,
                                            'points_lost', b.points_lost)
                         ORDER BY b.gained - b.lost DESC, u.code)
        FROM balance b JOIN unit u ON u.id = b.unit_id), '[]'),
    'pairs', coalesce((
        SELECT jsonb_agg(jsonb_build_object('from_unit', f.code, 'to_unit', t.code,
                                            'issues', p.issues, 'points', p.points)
                         ORDER BY p.issues DESC, f.code, t.code)
        FROM pairs p LEFT JOIN unit f ON f.id = p.from_id LEFT JOIN unit t ON t.id = p.to_id),
        '[]'))
RETURNING id
""")


@dataclass(frozen=True)
class Revision:
    """A stored revision as listed: who, when, from what, how much moved."""

    id: int
    created_at: datetime
    actor: str
    kind: RevisionKind
    source: str | None
    source_sha256: str | None
    note: str | None
    reverts: int | None
    examined: int
    changed: int
    lead_changed: int


@dataclass(frozen=True)
class UnitBalance:
    """How many issues a lead unit gained and lost in a revision."""

    unit: str
    name: str
    gained: int
    lost: int
    #: The points at risk (the categories' points of the issues) gained and lost; 0 in
    #: revisions stored before they were counted.
    points_gained: float = 0.0
    points_lost: float = 0.0


@dataclass(frozen=True)
class Handover:
    """Issues moved from one lead unit to another (None: the unassigned queue)."""

    from_unit: str | None
    to_unit: str | None
    issues: int
    points: float = 0.0


@dataclass(frozen=True)
class Summary:
    """A revision with its counts per unit and per from -> to pair."""

    revision: Revision
    units: list[UnitBalance]
    pairs: list[Handover]
    #: The points at risk that change hands: the sum over the issues whose lead unit changed.
    points_moved: float = 0.0


@dataclass(frozen=True)
class Change:
    """One issue a revision moved: where it is, and its old and new answers by code."""

    public_id: str
    lon: float
    lat: float
    category: str
    status: str
    old_jurisdiction: str | None
    new_jurisdiction: str | None
    old_site: str | None
    new_site: str | None
    old_territorial_unit: str | None
    new_territorial_unit: str | None
    old_functional_unit: str | None
    new_functional_unit: str | None
    old_lead_unit: str | None
    new_lead_unit: str | None


_COLUMNS = sql.SQL("""
    id, created_at, actor, kind, source, source_sha256, note, reverts,
    coalesce((counts->>'examined')::bigint, 0) AS examined,
    coalesce((counts->>'changed')::bigint, 0) AS changed,
    coalesce((counts->>'lead_changed')::bigint, 0) AS lead_changed
""")


def list_revisions(conn: psycopg.Connection[Any], *, limit: int, offset: int = 0
                   ) -> list[Revision]:
    """Revisions, newest first."""
    with conn.cursor(row_factory=class_row(Revision)) as cur:
        return cur.execute(sql.SQL("SELECT {} FROM revision ORDER BY id DESC"
                                   " LIMIT %s OFFSET %s").format(_COLUMNS),
                           [limit, offset]).fetchall()


def summary(conn: psycopg.Connection[Any], revision_id: int) -> Summary:
    """One revision with its counts; NotFound when there is none with that id."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql.SQL("SELECT {}, counts FROM revision WHERE id = %s").format(
            _COLUMNS), [revision_id]).fetchone()
    if row is None:
        raise NotFound(f"no revision {revision_id}")
    counts = row.pop("counts")
    return Summary(Revision(**row),
                   [UnitBalance(**u) for u in counts.get("units", [])],
                   [Handover(**p) for p in counts.get("pairs", [])],
                   float(counts.get("points_moved", 0)))


def changes(conn: psycopg.Connection[Any], revision_id: int, *, limit: int, offset: int = 0
            ) -> list[Change]:
    """A page of the issues ``revision_id`` moved, in a stable order (the issues' ids).

    The page is cut from the change table alone before anything is joined, so a far page
    costs an index scan, not the joins of every change before it.
    """
    with conn.cursor(row_factory=class_row(Change)) as cur:
        return cur.execute("""
            SELECT i.public_id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
                   i.category_code AS category, c.status,
                   oj.code AS old_jurisdiction, nj.code AS new_jurisdiction,
                   os.code AS old_site, ns.code AS new_site,
                   ot.code AS old_territorial_unit, nt.code AS new_territorial_unit,
                   ofu.code AS old_functional_unit, nfu.code AS new_functional_unit,
                   ol.code AS old_lead_unit, nl.code AS new_lead_unit
            FROM (SELECT * FROM revision_change WHERE revision_id = %s
                  ORDER BY issue_id LIMIT %s OFFSET %s) c
            JOIN issue i ON i.id = c.issue_id
            LEFT JOIN jurisdiction oj ON oj.id = c.old_jurisdiction_id
            LEFT JOIN jurisdiction nj ON nj.id = c.new_jurisdiction_id
            LEFT JOIN site os ON os.id = c.old_site_id
            LEFT JOIN site ns ON ns.id = c.new_site_id
            LEFT JOIN unit ot ON ot.id = c.old_territorial_unit_id
            LEFT JOIN unit nt ON nt.id = c.new_territorial_unit_id
            LEFT JOIN unit ofu ON ofu.id = c.old_functional_unit_id
            LEFT JOIN unit nfu ON nfu.id = c.new_functional_unit_id
            LEFT JOIN unit ol ON ol.id = c.old_lead_unit_id
            LEFT JOIN unit nl ON nl.id = c.new_lead_unit_id
            ORDER BY c.issue_id""", [revision_id, limit, offset]).fetchall()
