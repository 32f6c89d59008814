"""Assignment by polygon, stored: load the engine (geo.assign) and write its answers back.

The engine is built from the tables once and cached until ``layers_version`` changes (every
change to jurisdictions, sites, rules or categories bumps it by trigger). Single issues,
imports, the demo and bulk reassignment all use it, so they cannot disagree.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.rows import dict_row

from geo.assign import NONE, RESULT_COLUMNS, Assigner
from layers import revisions
from layers.auth import scope
from layers.db.bulk import bulk_write_mode

_FLAGS = ("on_boundary", "outside_all", "via_buffer")
# From this many changed answers on, reassignment rebuilds the issue tables' indexes and
# foreign keys once (layers.db.bulk) instead of maintaining them row by row.
BULK_CHANGES = 100_000
# A point this far outside every jurisdiction polygon still goes to the nearest one (flagged
# outside_all); a phone's GPS fix on the far kerb of a border road is typically within 30 m.
DEFAULT_TOLERANCE_M = 50.0
# A reassignment nobody gave a reason for (``sitewatch reassign``, scripts).
_PLAIN = revisions.Origin("reassign")


def _frame(conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed) -> pd.DataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query).fetchall()
        columns = [d.name for d in cur.description or []]
    frame = pd.DataFrame(rows, columns=columns)
    if "wkb" in frame:
        frame["geometry"] = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")])
    return frame


# What the engine is built from, per argument of Assigner.build: (table, columns). Rows are
# read in id order: the engine breaks ties between sites, and orders rules, by id.
ENGINE_INPUTS = {
    "jurisdictions": ("jurisdiction", "id, code, level, parent_id, unit_id"),
    "sites": ("site", "id, layer, unit_id, buffer_m"),
    "rules": ("responsibility_rule", "category_code, jurisdiction_id, site_id, unit_id,"
              " precedence"),
    "categories": ("category", "code, site_layer, functional_unit_id, active"),
}
_GEOMETRIC = ("jurisdiction", "site")


def engine_inputs(conn: psycopg.Connection[Any], extra: dict[str, str] | None = None, *,
                  whole: bool = True) -> dict[str, pd.DataFrame]:
    """The tables the engine is built from, as read now, keyed as :meth:`Assigner.build`
    takes them; ``extra`` adds columns per key (a preview compares more than the engine
    needs).

    ``whole``: the whole district is read whoever asks (layers.auth.scope.district), as
    assignment needs: a point belongs where every polygon says, so a street-scoped caller's
    engine is the district's, and the street policies then refuse what lands outside its
    street. Without it, the lines as the session sees them: a street's own ground, the study
    area of its analyses (:meth:`AssignerCache.view`).
    """
    out = {}
    with scope.district(conn) if whole else nullcontext():
        for key, (table, columns) in ENGINE_INPUTS.items():
            more = f", {extra[key]}" if extra and key in extra else ""
            geometry = ", ST_AsBinary(geom) AS wkb" if table in _GEOMETRIC else ""
            order = " ORDER BY id" if table != "category" else ""
            out[key] = _frame(conn, sql.SQL("SELECT {} FROM {}{}").format(
                sql.SQL(columns + more + geometry), sql.Identifier(table), sql.SQL(order)))
    return out


def load_assigner(conn: psycopg.Connection[Any]) -> Assigner:
    """Build the engine from the current tables (the whole district's)."""
    return Assigner.build(**engine_inputs(conn))


def layers_version(conn: psycopg.Connection[Any]) -> int:
    """The current version of the assignment inputs."""
    row = conn.execute("SELECT version FROM layers_version").fetchone()
    return int(row[0]) if row else 0


class AssignerCache:
    """One engine per process, rebuilt when ``layers_version`` moves (thread-safe); and one
    per street for the street-scoped callers' analyses (:meth:`view`)."""

    # Streets' views kept at once: a district has ten to twenty streets.
    STREET_VIEWS = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = -1
        self._assigner: Assigner | None = None
        self._views: OrderedDict[tuple[int, int], Assigner] = OrderedDict()

    def get(self, conn: psycopg.Connection[Any]) -> Assigner:
        """The engine of the whole district (assignment), whoever asks."""
        version = layers_version(conn)
        with self._lock:
            if self._assigner is None or version != self._version:
                self._assigner = load_assigner(conn)
                self._version = version
            return self._assigner

    def view(self, conn: psycopg.Connection[Any]) -> Assigner:
        """The engine of the ground the caller sees: the district's, or for a street-scoped
        session its street's lines only, which is the study area of its hotspots and the
        sites of its inspection rounds (analyses, never assignment)."""
        street = scope.current(conn)
        if street is None:
            return self.get(conn)
        key = (layers_version(conn), street)
        with self._lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        built = Assigner.build(**engine_inputs(conn, whole=False))
        with self._lock:
            self._views[key] = built
            while len(self._views) > self.STREET_VIEWS:
                self._views.popitem(last=False)
        return built


def as_db_values(result: pd.DataFrame) -> pd.DataFrame:
    """Engine output with NONE ids as missing values (nullable integers), ready to store."""
    out = result.copy()
    for column in RESULT_COLUMNS:
        if out[column].dtype == np.int64:
            out[column] = out[column].astype("Int64").mask(out[column] == NONE)
    return out


def reassign(
    conn: psycopg.Connection[Any],
    assigner: Assigner,
    *,
    actor: str,
    origin: revisions.Origin = _PLAIN,
    region_wkb: bytes | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    include_closed: bool = False,
) -> dict[str, int]:
    """Re-run assignment for open issues and store what changed as one revision.

    What changed is recorded as one revision of ``origin`` with a change row per moved
    issue (layers.revisions); each issue's version is bumped. ``region_wkb`` (EPSG:4326)
    limits the work to issues inside it: after a boundary edit, only points in the symmetric
    difference of the old and new polygons can change answer. Closed issues keep the units
    they were judged under, unless ``include_closed`` (for repairing wrong data, and for
    benchmarks). Returns counts examined/changed, and ``revision`` (its id) when one was
    stored.
    """
    current = read_answers(conn, region_wkb=region_wkb, include_closed=include_closed)
    if current.empty:
        return {"examined": 0, "changed": 0}
    result = assigner.assign(current["lon"].to_numpy(), current["lat"].to_numpy(),
                             current["category_code"].to_numpy(object), tolerance_m=tolerance_m)
    changed = changed_answers(current, result)
    counts = {"examined": len(current), "changed": int(changed.sum())}
    if not changed.any():
        return counts
    store = _Store(actor, origin, len(current))
    # All or nothing, even on an autocommit connection: the answers and their revision.
    with conn.transaction():
        if changed.sum() >= BULK_CHANGES:
            # A new jurisdiction set moves most issues: rebuilding indexes and keys once
            # beats maintaining them per row, at the price of locking the issue tables
            # meanwhile.
            with bulk_write_mode(conn, ["issue", "revision_change"]):
                revision = _store_changes(conn, current[changed], result[changed], store)
        else:
            revision = _store_changes(conn, current[changed], result[changed], store)
    return {**counts, "revision": revision}


def read_answers(conn: psycopg.Connection[Any], *, region_wkb: bytes | None = None,
                 include_closed: bool = False) -> pd.DataFrame:
    """The issues a reassignment considers (see :func:`reassign`) with their stored answers:
    id, status, lon, lat, category_code and the engine's result columns (NONE for none)."""
    where: sql.Composable = (sql.SQL("true") if include_closed else
                             sql.SQL("issue_is_open(status)"))
    params: list[Any] = []
    if region_wkb is not None:
        where = sql.SQL("{} AND ST_Intersects(geom, ST_GeomFromWKB(%s, 4326))").format(where)
        params.append(region_wkb)
    return _copy_out(conn, sql.SQL(
        "SELECT id, status, ST_X(geom) AS lon, ST_Y(geom) AS lat, category_code, {cols}"
        " FROM issue WHERE {where}").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, RESULT_COLUMNS)), where=where), params)


def changed_answers(current: pd.DataFrame, result: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Per row of ``current`` (:func:`read_answers`): whether the engine's ``result`` differs
    from the stored answer in any column."""
    return np.asarray(~(current[RESULT_COLUMNS].reset_index(drop=True) == result)
                      .all(axis=1).to_numpy(), bool)


def _copy_out(conn: psycopg.Connection[Any], query: sql.Composed, params: list[Any]
              ) -> pd.DataFrame:
    """Run ``query`` through COPY TO and parse it with pandas' C reader.

    For a million issues this is several times faster than fetching rows as Python tuples.
    """
    buf = io.BytesIO()
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(query)
    with conn.cursor() as cur, cur.copy(copy_sql, params or None) as copy:
        for chunk in copy:
            buf.write(chunk)
    buf.seek(0)
    frame = pd.read_csv(buf, dtype={"category_code": str})
    for column in RESULT_COLUMNS:
        if column in _FLAGS:
            frame[column] = frame[column].map({"t": True, "f": False}).astype(bool)
        else:
            frame[column] = frame[column].fillna(NONE).astype(np.int64)
    return frame


@dataclass(frozen=True)
class _Store:
    """Who stores a reassignment, why, and how many issues were examined for it."""

    actor: str
    origin: revisions.Origin
    examined: int


def _store_changes(conn: psycopg.Connection[Any], changed: pd.DataFrame,
                   after: pd.DataFrame, store: _Store) -> int:
    """Write the new answers and their revision with one change row per issue; its id.

    ``changed`` holds the issues as read (id, status and the old answers); both old and new
    go into one temp table (COPY), from which the revision's counts and change rows are
    built without reading issue again.
    """
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}, {} {}").format(
            sql.Identifier(c), sql.SQL("boolean" if c in _FLAGS else "bigint"),
            sql.Identifier("old_" + c), sql.SQL("boolean" if c in _FLAGS else "bigint"))
        for c in RESULT_COLUMNS)
    conn.execute(sql.SQL("CREATE TEMP TABLE reassigned (id bigint PRIMARY KEY, status text, {})"
                         " ON COMMIT DROP").format(columns))
    table = pd.concat([
        changed[["id", "status"]].reset_index(drop=True),
        as_db_values(after.reset_index(drop=True)),
        as_db_values(changed[RESULT_COLUMNS].reset_index(drop=True)).add_prefix("old_"),
    ], axis=1)
    ordered = ["id", "status", *[x for c in RESULT_COLUMNS for x in (c, "old_" + c)]]
    text = io.StringIO()
    table[ordered].to_csv(text, header=False, index=False)
    with conn.cursor() as cur, cur.copy("COPY reassigned FROM STDIN (FORMAT csv)") as copy:
        copy.write(text.getvalue())
    # Without statistics the planner guesses a tiny temp table and joins it to a million
    # issues by nested loop: 18 s instead of under one for 20,000 changed rows.
    conn.execute("ANALYZE reassigned")
    revision = revisions.record(conn, store.origin, actor=store.actor,
                                examined=store.examined, changes="reassigned")
    conn.execute(sql.SQL(
        "UPDATE issue i SET {}, version = i.version + 1, updated_at = now()"
        " FROM reassigned r WHERE r.id = i.id").format(sql.SQL(", ").join(
            sql.SQL("{} = r.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in RESULT_COLUMNS)))
    revisions.add_changes(conn, revision, "reassigned")
    conn.execute("DROP TABLE reassigned")
    return revision


@dataclass(frozen=True)
class Footprint:
    """Where a jurisdiction or site decides assignments: its shape (EPSG:4326 WKB) and how far
    beyond it its answer reaches (a site's surroundings buffer; a jurisdiction's
    nearest-polygon tolerance)."""

    shape: bytes
    reach_m: float


def footprint(conn: psycopg.Connection[Any], table: str, code: str) -> Footprint | None:
    """The footprint of the jurisdiction or site ``code``; None when there is no such row."""
    if table == "site":
        query = sql.SQL("SELECT ST_AsBinary(geom), greatest(buffer_m, 1)::float8"
                        " FROM site WHERE code = %s")
    elif table == "jurisdiction":
        query = sql.SQL("SELECT ST_AsBinary(geom), %s::float8 FROM jurisdiction"
                        " WHERE code = %s")
    else:
        raise ValueError(f"no footprint for table {table!r}")
    params: list[Any] = [code] if table == "site" else [DEFAULT_TOLERANCE_M, code]
    row = conn.execute(query, params).fetchone()
    if not row or row[0] is None:
        return None
    return Footprint(bytes(row[0]), float(row[1]))


def reassign_changed(
    conn: psycopg.Connection[Any],
    before: Footprint | None,
    after: Footprint | None,
    *,
    actor: str,
    origin: revisions.Origin = _PLAIN,
    only_shape: bool = False,
) -> dict[str, int]:
    """Reassign the open issues a change of one jurisdiction or site can affect.

    ``before``/``after`` are the row's footprints (see :func:`footprint`). When only the shape
    changed, answers can change only within reach of where the old and new shapes differ
    (their symmetric difference, buffered by the reach); otherwise (a new owner unit, say)
    within reach of either shape. The issues it moves are stored as one revision of
    ``origin``.

    The symmetric difference is taken of the shapes, then buffered, not of the buffered
    shapes: a strip handed to the neighbour lies within reach of both the old and the new
    shape, so the buffered shapes do not differ there, though every issue on it changes grid.
    """
    if before is None and after is None:
        return {"examined": 0, "changed": 0}
    reach = max(f.reach_m for f in (before, after) if f is not None)
    row = conn.execute(
        "SELECT ST_AsBinary(ST_Buffer((CASE WHEN %(shape)s THEN ST_SymDifference(a, b)"
        " ELSE ST_Union(a, b) END)::geography, %(reach)s)::geometry)"
        " FROM (SELECT coalesce(ST_GeomFromWKB(%(a)s, 4326), ST_GeomFromWKB(%(b)s, 4326)) AS a,"
        "              coalesce(ST_GeomFromWKB(%(b)s, 4326), ST_GeomFromWKB(%(a)s, 4326)) AS b"
        " ) x",
        {"a": before.shape if before else None, "b": after.shape if after else None,
         "reach": reach,
         "shape": only_shape and before is not None and after is not None}).fetchone()
    region = bytes(row[0]) if row and row[0] is not None else None
    if region is None:
        return {"examined": 0, "changed": 0}
    return reassign(conn, load_assigner(conn), actor=actor, origin=origin, region_wkb=region)
