"""Preview: what an import or an edit of the lines would do, with nothing stored.

An import's preview writes nothing at all (:func:`of_lines`, called by
:mod:`layers.io.import_preview`): the file is checked by the import's own checks, the new set
of lines (the file's rows upserted over the stored ones of that table, the other tables as
they are) builds the one assignment engine, which runs over the open issues a reassignment
would consider; what differs from their stored answers is what the import would move. The
counts per lead unit gained/lost and per from -> to pair and the points at risk that change
hands are counted as a stored revision counts them (:mod:`layers.revisions`; tests hold the
two equal), and, for jurisdictions, the data-quality report of the new set
(:mod:`geo.quality`) comes with them.

An edit of one row (PATCH ``?preview=true``) still runs for real inside a transaction that
is always rolled back (:func:`run`): there the act's validation is interleaved with its
writes. Sequences (ids) are not transactional: such a preview may use up ids.

A change that fails validation raises as the act would (``ValidationFailed``), and stores
nothing either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from geo.assign import NONE, Assigner
from layers import assignment, revisions

Table = Literal["jurisdiction", "site", "responsibility_rule"]
T = TypeVar("T")
#: At most this many codes are listed per kind of row change (the counts are complete).
MAX_ROWS_LISTED = 200
#: At most this many data-quality findings are listed (the counts per kind are complete).
MAX_FINDINGS = 50
#: At most this many moving issues are kept for the preview's map (the counts are complete).
MAX_MOVES_DRAWN = 5000

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
class Line:
    """A jurisdiction or site outline as stored or as the file has it."""

    code: str
    name: str
    #: GeoJSON geometry as text: kept and drawn, never read here (parsing 4,000 outlines
    #: took a third of a 2,000-grid preview).
    geometry: str


@dataclass(frozen=True)
class Move:
    """An open issue whose answer would change: where it is, from and to which lead unit
    and ground (codes; None: none), and the points at risk its category carries."""

    public_id: str
    lon: float
    lat: float
    category: str
    from_unit: str | None
    to_unit: str | None
    from_ground: str | None
    to_ground: str | None
    points: float


@dataclass(frozen=True)
class Drawing:
    """What the preview's map draws: the rows of the table before and after, and the issues
    that would move (at most :data:`MAX_MOVES_DRAWN`, those changing lead unit first)."""

    old_lines: list[Line]
    new_lines: list[Line]
    moves: list[Move]
    unit_names: dict[str, str]


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
    #: For the map page (not part of the JSON answer); None for a PATCH preview.
    drawing: Drawing | None = None


def of_lines(conn: psycopg.Connection[Any], table: Table, inputs: dict[str, pd.DataFrame],
             rows: RowChanges, *, lines: tuple[list[Line], list[Line]] = ([], []),
             quality: Quality | None = None, repaired: list[dict[str, Any]] | None = None,
             include_closed: bool = False) -> Preview:
    """What the engine built from ``inputs`` (the new set of lines, keyed as
    :meth:`Assigner.build` takes them; jurisdictions with their codes) would change in the
    open issues a reassignment considers, as a :class:`Preview`; nothing is written.
    ``lines``: the outlines before and after, for the map; ``include_closed``: closed issues
    too (see :func:`layers.assignment.reassign`)."""
    engine = Assigner.build(**inputs)
    current = assignment.read_answers(conn, include_closed=include_closed)
    if current.empty:
        after = current
        changed = np.zeros(0, bool)
    else:
        after = engine.assign(current["lon"].to_numpy(), current["lat"].to_numpy(),
                              current["category_code"].to_numpy(object),
                              tolerance_m=assignment.DEFAULT_TOLERANCE_M)
        changed = assignment.changed_answers(current, after)
    before = current[changed].reset_index(drop=True)
    after = after[changed].reset_index(drop=True)
    units = {int(i): (str(c), str(n)) for i, c, n in
             conn.execute("SELECT id, code, name FROM unit").fetchall()}
    cents = {str(c): int(p) for c, p in
             conn.execute("SELECT code, (points * 100)::bigint FROM category").fetchall()}
    moved = _Moved.of(before, after, cents)
    grounds = _ground_codes(conn, inputs["jurisdictions"])
    return Preview(
        table=table, rows=rows, examined=len(current), changed=int(changed.sum()),
        lead_changed=int(moved.lead.sum()), points_moved=_points(moved.cents[moved.lead].sum()),
        units=moved.balances(units), pairs=moved.pairs(units), quality=quality,
        repaired=list(repaired or []),
        drawing=Drawing(lines[0], lines[1], _moves(conn, moved, units, grounds),
                        {code: name for code, name in units.values()}))


def _points(cents: Any) -> float:
    # Points are numeric(6, 2); summed in cents, as exactly as the revision's numeric sum,
    # and rounded to a float once, as its ::float8 is.
    return float(Decimal(int(cents)) / 100)


@dataclass(frozen=True)
class _Moved:
    """The changed answers: old and new lead units, the category's points (cents)."""

    before: pd.DataFrame
    after: pd.DataFrame
    old: np.ndarray[Any, Any]
    new: np.ndarray[Any, Any]
    cents: np.ndarray[Any, Any]
    lead: np.ndarray[Any, Any]  # whether the lead unit changes

    @classmethod
    def of(cls, before: pd.DataFrame, after: pd.DataFrame, cents: dict[str, int]) -> _Moved:
        old = before["lead_unit_id"].to_numpy(np.int64)
        new = after["lead_unit_id"].to_numpy(np.int64)
        points = before["category_code"].map(cents).fillna(0).to_numpy(np.int64)
        return cls(before, after, old, new, points, old != new)

    def balances(self, units: dict[int, tuple[str, str]]) -> list[revisions.UnitBalance]:
        """Per lead unit: issues and points gained and lost, in the revision's order."""
        frame = pd.concat([
            pd.DataFrame({"unit": self.new[self.lead], "gained": 1, "lost": 0,
                          "cg": self.cents[self.lead], "cl": 0}),
            pd.DataFrame({"unit": self.old[self.lead], "gained": 0, "lost": 1, "cg": 0,
                          "cl": self.cents[self.lead]})])
        sums = frame[frame["unit"] != NONE].groupby("unit").sum().reset_index()
        rows: list[tuple[int, int, int, int, int]] = list(zip(
            *(sums[c].tolist() for c in ("unit", "gained", "lost", "cg", "cl")), strict=True))
        out = [revisions.UnitBalance(units[u][0], units[u][1], gained, lost, _points(cg),
                                     _points(cl)) for u, gained, lost, cg, cl in rows]
        return sorted(out, key=lambda b: (b.lost - b.gained, b.unit))

    def pairs(self, units: dict[int, tuple[str, str]]) -> list[revisions.Handover]:
        """Per from -> to pair of lead units: issues and points, in the revision's order."""
        frame = pd.DataFrame({"old": self.old[self.lead], "new": self.new[self.lead],
                              "cents": self.cents[self.lead]})
        sums = frame.groupby(["old", "new"])["cents"].agg(["count", "sum"]).reset_index()
        rows: list[tuple[int, int, int, int]] = list(zip(
            *(sums[c].tolist() for c in ("old", "new", "count", "sum")), strict=True))

        def code(unit: int) -> str | None:
            return None if unit == NONE else units[unit][0]

        out = [revisions.Handover(code(o), code(n), count, _points(cents))
               for o, n, count, cents in rows]
        # As the revision's ORDER BY issues DESC, from, to (NULLs last; the C collation).
        return sorted(out, key=lambda p: (-p.issues, p.from_unit is None, p.from_unit or "",
                                          p.to_unit is None, p.to_unit or ""))


def _ground_codes(conn: psycopg.Connection[Any], new: pd.DataFrame) -> dict[int, str]:
    """Jurisdiction codes by id: the stored ones and those of the new set (new rows carry
    ids no stored row has)."""
    stored = {int(i): str(c) for i, c in
              conn.execute("SELECT id, code FROM jurisdiction").fetchall()}
    return {**stored, **{int(i): str(c) for i, c in zip(new["id"], new["code"], strict=True)}}


def _moves(conn: psycopg.Connection[Any], moved: _Moved, units: dict[int, tuple[str, str]],
           grounds: dict[int, str]) -> list[Move]:
    """The issues to draw: those changing lead unit first, at most MAX_MOVES_DRAWN."""
    order = np.argsort(~moved.lead, kind="stable")[:MAX_MOVES_DRAWN]
    picked = moved.before.iloc[order]
    ids = [int(i) for i in picked["id"]]
    public = dict(conn.execute("SELECT id, public_id FROM issue WHERE id = ANY(%s)",
                               [ids]).fetchall())

    def unit(i: int) -> str | None:
        return units[i][0] if i in units else None

    rows: list[tuple[int, float, float, str, int]] = list(zip(*(
        picked[c].tolist() for c in ("id", "lon", "lat", "category_code", "jurisdiction_id")),
        strict=True))
    to_ground = moved.after["jurisdiction_id"].to_numpy(np.int64)
    return [Move(str(public[i]), lon, lat, str(category), unit(int(moved.old[k])),
                 unit(int(moved.new[k])), grounds.get(ground),
                 grounds.get(int(to_ground[k])), _points(moved.cents[k]))
            for k, (i, lon, lat, category, ground) in zip(order.tolist(), rows, strict=True)]


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
    from layers.views import mapdata

    return quality_of(mapdata.jurisdiction_frame(conn))


def quality_of(jurisdictions: Any) -> Quality:
    """The data-quality report of ``jurisdictions`` (a GeoDataFrame as
    :func:`layers.views.mapdata.jurisdiction_frame` makes it)."""
    from geo.quality import check_jurisdictions, summary

    findings = check_jurisdictions(jurisdictions)
    listed = [Finding(str(r.kind), [str(c) for c in r.codes],
                      None if r.area_m2 != r.area_m2 else float(r.area_m2),
                      str(r.detail), str(r.detail_zh))
              for r in findings.head(MAX_FINDINGS).itertuples()]
    return Quality(summary(findings), listed)
