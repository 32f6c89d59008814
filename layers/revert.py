"""Revert a revision: the lines it changed back to what they were just before it, and the open
issues reassigned back by the one engine, stored as a new revision naming it.

The lines a revision changed are the versions its transaction started or ended (migration
0026, ``revision.xact``): a version it ended is the line before it; one it started, the line
after it. Restoring writes those "before" rows back (updating changed rows, re-inserting
removed ones under their old ids, deleting the rows it added), which the triggers record as
new versions of the revert's own transaction; then every open issue is assigned again by
:func:`layers.assignment.reassign` against the restored lines, its moves stored as the revert
revision's changes.

Refused (Conflict, 409) when a line the revision changed was changed again afterwards (the
later revision is named: revert that one first), when it was already reverted, when it was
stored before the lines' history was kept, when a closed issue was judged on a line it added
(removing the line would rewrite a closed case), and when it changed no lines at all: a plain
``sitewatch reassign`` put issues where the lines of its time said, and those lines are still
there, so the engine would only give the same answers again; putting the old answers back by
hand would leave issues disagreeing with the lines until the next reassignment silently undid
it. To move issues back, change the lines (or revert the revision that changed them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from geo.assign import Assigner
from layers import assignment, history, revisions
from layers.errors import Conflict, NotFound
from layers.history import LINE_TABLES, LineTable

# The content columns of each line table, restored from its versions.
_CONTENT: dict[LineTable, tuple[str, ...]] = {
    "jurisdiction": ("code", "name", "level", "parent_id", "unit_id", "geom"),
    "site": ("layer", "code", "name", "geom", "attributes", "buffer_m",
             "inspection_interval_days", "unit_id"),
    "responsibility_rule": ("task", "category_code", "jurisdiction_id", "site_id", "unit_id",
                            "leader", "contact"),
}
# Parents before children when re-inserting, children before parents when deleting.
_LEVEL_ORDER = sql.SQL("array_position(ARRAY['street', 'community', 'grid'], level)")


@dataclass(frozen=True)
class Touched:
    """One line a revision changed: its version before (None: it added the row) and after
    (None: it removed the row)."""

    table: LineTable
    id: int
    label: str
    before: int | None
    after: int | None


@dataclass(frozen=True)
class Reverted:
    """The revert revision stored, and how many lines and issues it put back."""

    revision: int
    reverts: int
    lines: int
    examined: int
    changed: int


def revert(conn: psycopg.Connection[Any], revision_id: int, *, actor: str,
           note: str | None = None) -> Reverted:
    """Revert revision ``revision_id`` (see the module's docstring); the new revision."""
    with conn.transaction():
        # One revert at a time, and no edit of the lines while it checks and restores.
        conn.execute("LOCK TABLE jurisdiction, site, responsibility_rule"
                     " IN SHARE ROW EXCLUSIVE MODE")
        xact = _revertible(conn, revision_id)
        touched = [t for table in LINE_TABLES for t in _touched(conn, table, xact)]
        if not touched:
            raise Conflict(
                f"修订 {revision_id} 未改动任何边界、点位或责任规则，撤销无可恢复；问题已按现行"
                f"边界与规则分派 / revision {revision_id} changed no lines: its issues follow "
                "the lines and rules still in force, so there is nothing to restore (change "
                "the lines, or revert the revision that changed them)")
        _refuse_later_changes(conn, revision_id, touched)
        added = {table: [t.id for t in touched if t.table == table and t.before is None]
                 for table in LINE_TABLES}
        _refuse_closed_on_added(conn, revision_id, added)
        _restore(conn, touched)
        origin = revisions.Origin("revert", f"revision {revision_id}", note=note,
                                  reverts=revision_id)
        counts = assignment.reassign(conn, _engine_without(conn, added), actor=actor,
                                     origin=origin)
        _delete_added(conn, revision_id, added)
        stored = history.record_line_change(conn, origin, actor=actor,
                                            examined=counts["examined"])
        assert stored is not None  # restoring wrote versions
    return Reverted(stored, revision_id, len(touched), counts["examined"], counts["changed"])


def _revertible(conn: psycopg.Connection[Any], revision_id: int) -> Any:
    """The transaction id of ``revision_id``; NotFound or Conflict when it cannot be
    reverted."""
    row = conn.execute("SELECT xact, (SELECT min(id) FROM revision WHERE reverts = r.id)"
                       " FROM revision r WHERE id = %s", [revision_id]).fetchone()
    if row is None:
        raise NotFound(f"no revision {revision_id}")
    xact, reverted_by = row
    if reverted_by is not None:
        raise Conflict(f"修订 {revision_id} 已被修订 {reverted_by} 撤销 / revision "
                       f"{revision_id} was already reverted by revision {reverted_by}")
    if xact is None:
        raise Conflict(f"修订 {revision_id} 早于边界历史记录，无法撤销 / revision {revision_id} "
                       "was stored before the history of the lines was kept; it cannot be "
                       "reverted")
    return xact


def _touched(conn: psycopg.Connection[Any], table: LineTable, xact: Any) -> list[Touched]:
    # A rule is named as a preview names it: category / community / site, '*' for any.
    label = (sql.SQL("coalesce(a.code, b.code, a.name, b.name)") if table != "responsibility_rule"
             else sql.SQL(
                 "concat_ws(' / ', coalesce(a.category_code, b.category_code, '*'),"
                 " coalesce((SELECT code FROM jurisdiction_version WHERE id ="
                 "  coalesce(a.jurisdiction_id, b.jurisdiction_id) ORDER BY version_id DESC"
                 "  LIMIT 1), '*'),"
                 " coalesce((SELECT coalesce(code, name) FROM site_version WHERE id ="
                 "  coalesce(a.site_id, b.site_id) ORDER BY version_id DESC LIMIT 1), '*'))"))
    rows = conn.execute(sql.SQL("""
        SELECT coalesce(a.id, b.id), {label}, b.version_id, a.version_id
        FROM (SELECT * FROM {versions} WHERE xact_to = %(x)s) b
        FULL JOIN (SELECT * FROM {versions} WHERE xact_from = %(x)s) a ON a.id = b.id
        ORDER BY 1""").format(label=label, versions=sql.Identifier(table + "_version")),
                        {"x": xact}).fetchall()
    return [Touched(table, int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def _refuse_later_changes(conn: psycopg.Connection[Any], revision_id: int,
                          touched: list[Touched]) -> None:
    """Conflict naming the first later revision that changed one of ``touched`` again.

    A line is changed since when it is not now what the revision left: its content differs
    from the version the revision wrote, or a row it removed is back. (A later change that
    was itself reverted leaves it as the revision left it: no conflict.)
    """
    for t in touched:
        columns = _CONTENT[t.table]
        now = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier("t", c) for c in columns))
        left = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier("a", c) for c in columns))
        row = conn.execute(sql.SQL(
            "SELECT (SELECT xact_from FROM {v} WHERE id = %(id)s"
            "        AND version_id > coalesce(%(after)s, %(before)s)"
            "        ORDER BY version_id LIMIT 1)"
            " FROM (SELECT 1) one LEFT JOIN {t} t ON t.id = %(id)s"
            " LEFT JOIN {v} a ON a.version_id = %(after)s"
            " WHERE CASE WHEN %(after)s::bigint IS NULL THEN t.id IS NOT NULL"
            "       ELSE t.id IS NULL OR {now} IS DISTINCT FROM {left} END").format(
                v=sql.Identifier(t.table + "_version"), t=sql.Identifier(t.table),
                now=now, left=left),
            {"after": t.after, "before": t.before, "id": t.id}).fetchone()
        if row is None:
            continue
        later = conn.execute("SELECT min(id) FROM revision WHERE xact = %s", [row[0]]
                             ).fetchone()
        later_id = later[0] if later else None
        zh, en = (("修订 " + str(later_id), f"revision {later_id}") if later_id is not None
                  else ("未记录修订的改动", "a change stored without a revision"))
        raise Conflict(
            f"{t.table} {t.label} 在修订 {revision_id} 之后已被{zh}再次改动，请先撤销后者 / "
            f"{t.table} {t.label} was changed again after revision {revision_id}, by {en}; "
            "revert that first",
            details={"table": t.table, "line": t.label, "later_revision": later_id})


def _refuse_closed_on_added(conn: psycopg.Connection[Any], revision_id: int,
                            added: dict[LineTable, list[int]]) -> None:
    """Conflict when a closed issue was judged on a jurisdiction or site the revision added
    (removing the line would rewrite that closed case), or a later rule names one."""
    row = conn.execute(
        "SELECT public_id FROM issue WHERE NOT issue_is_open(status)"
        " AND (jurisdiction_id = ANY(%s) OR site_id = ANY(%s)) ORDER BY id LIMIT 1",
        [added["jurisdiction"], added["site"]]).fetchone()
    if row is not None:
        raise Conflict(
            f"已办结问题 {row[0]} 属于修订 {revision_id} 新增的辖区或点位，无法撤销 / closed "
            f"issue {row[0]} was judged on a jurisdiction or site that revision "
            f"{revision_id} added; it cannot be reverted", details={"issue": row[0]})
    # A rule written since for a place the revision added would go with it (ON DELETE
    # CASCADE): a later change lost without a word. Its revision is named instead.
    rule = conn.execute(
        "SELECT (SELECT min(r.id) FROM revision r WHERE r.xact = v.xact_from)"
        " FROM responsibility_rule t JOIN responsibility_rule_version v"
        "   ON v.id = t.id AND v.valid_to IS NULL"
        " WHERE (t.jurisdiction_id = ANY(%s) OR t.site_id = ANY(%s)) AND NOT t.id = ANY(%s)"
        " ORDER BY t.id LIMIT 1",
        [added["jurisdiction"], added["site"], added["responsibility_rule"]]).fetchone()
    if rule is not None:
        zh, en = (("修订 " + str(rule[0]), f"revision {rule[0]}") if rule[0] is not None
                  else ("未记录修订的改动", "a change stored without a revision"))
        raise Conflict(
            f"修订 {revision_id} 新增的辖区或点位已被{zh}写入责任规则，请先撤销后者 / a "
            f"responsibility rule written since by {en} names a place revision {revision_id} "
            "added; revert that first", details={"later_revision": rule[0]})


def _restore(conn: psycopg.Connection[Any], touched: list[Touched]) -> None:
    """Write back the "before" rows: re-insert removed ones (parents first), update changed
    ones. Places before rules, which refer to them."""
    for table in LINE_TABLES:
        columns = _CONTENT[table]
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        versions = sql.Identifier(table + "_version")
        removed = [t.before for t in touched if t.table == table and t.after is None]
        changed = [t.before for t in touched if t.table == table
                   and t.after is not None and t.before is not None]
        order = _LEVEL_ORDER if table == "jurisdiction" else sql.SQL("id")
        try:
            if removed:
                conn.execute(sql.SQL(
                    "INSERT INTO {t} (id, {cols}) OVERRIDING SYSTEM VALUE"
                    " SELECT id, {cols} FROM {v} WHERE version_id = ANY(%s) ORDER BY {o}"
                    ).format(t=sql.Identifier(table), cols=cols, v=versions, o=order),
                    [removed])
            if changed:
                stamp = sql.SQL(", updated_at = now()") if table != "responsibility_rule" \
                    else sql.SQL("")
                conn.execute(sql.SQL(
                    "UPDATE {t} t SET ({cols}) = (SELECT {vcols} FROM {v} v"
                    " WHERE v.version_id = b.version_id){stamp}"
                    " FROM (SELECT id, version_id FROM {v} WHERE version_id = ANY(%s)) b"
                    " WHERE t.id = b.id").format(
                        t=sql.Identifier(table), cols=cols, v=versions, stamp=stamp,
                        vcols=sql.SQL(", ").join(sql.Identifier("v", c) for c in columns)),
                    [changed])
        except psycopg.errors.IntegrityError as exc:
            raise Conflict(f"{table} 无法恢复到修订前的状态（与现有数据冲突）/ the {table} rows "
                           "cannot be put back as they were: they clash with what is stored "
                           f"now ({exc.diag.constraint_name or 'constraint'})") from None


def _engine_without(conn: psycopg.Connection[Any], added: dict[LineTable, list[int]]
                    ) -> Assigner:
    """The engine of the restored lines without the rows the revision added.

    Those rows can go only after the reassignment (open issues still refer to them until it
    moves them), so the engine is built from the tables as read now, less those rows and the
    rules that name them (which would go with them).
    """
    frames = assignment.engine_inputs(conn, extra={"rules": "id"})
    places: dict[str, LineTable] = {"jurisdictions": "jurisdiction", "sites": "site"}
    for key, table in places.items():
        frames[key] = frames[key][~frames[key]["id"].isin(added[table])]
    rules = frames["rules"]
    gone = (rules["id"].isin(added["responsibility_rule"])
            | rules["jurisdiction_id"].isin(added["jurisdiction"])
            | rules["site_id"].isin(added["site"]))
    frames["rules"] = rules[~gone].drop(columns="id")
    return Assigner.build(**frames)


def _delete_added(conn: psycopg.Connection[Any], revision_id: int,
                  added: dict[LineTable, list[int]]) -> None:
    try:
        with conn.transaction():
            _delete_rows(conn, added)
    except psycopg.errors.IntegrityError:
        raise Conflict(f"修订 {revision_id} 新增的辖区仍被引用（如后来新增的下级），无法撤销 / a "
                       f"jurisdiction revision {revision_id} added is still referred to (by a "
                       "child or an issue added since); it cannot be reverted") from None


def _delete_rows(conn: psycopg.Connection[Any], added: dict[LineTable, list[int]]) -> None:
    conn.execute("DELETE FROM responsibility_rule WHERE id = ANY(%s)",
                 [added["responsibility_rule"]])
    conn.execute("DELETE FROM site WHERE id = ANY(%s)", [added["site"]])
    for level in ("grid", "community", "street"):
        conn.execute("DELETE FROM jurisdiction WHERE id = ANY(%s) AND level = %s",
                     [added["jurisdiction"], level])
