"""Tallies: issue counts per H3 cell, local day and category, kept as issues change.

Every map page and analysis reads these instead of the issue table, so its cost follows the
cells, days and categories it covers, not the archive (migration 0023 explains the tables and
the journal the triggers fill). :func:`fold` is the worker's ``tally`` job: it takes the
journal in batches, bins each row's point in its H3 cell (:data:`RESOLUTION`; coarser cells
are its parents, geo.hotspots.binning), adds the signed rows up by key and applies the sums
to ``tally_day`` and ``tally_month`` in the same transaction that deletes them from the
journal, so each change is counted exactly once whatever fails.

A period is read as whole local days: its whole months from ``tally_month``, its edge days
from ``tally_day`` (:func:`period_source`). "Overdue" is counted at reading time from the open
issues' deadlines, which the tallies keep while they are to come; a deadline that has passed is
kept as :data:`OVERDUE` (:func:`compact`), so the rows keyed by exact deadlines are the open
work not yet due, small whatever the archive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from geo.hotspots.binning import BIN_RESOLUTION, h3_cells
from layers.catalog.periods import Period
from layers.db import database
from layers.db.settings import Settings
from layers.vocab import DISMISSED_STATUSES

RESOLUTION = BIN_RESOLUTION
# Journal rows folded per transaction: ~0.5 s of work, short enough not to hold the
# tallies' rows long, large enough that a million-issue backfill takes twenty of them.
BATCH = 50_000
# One job run folds for at most this long, then lets the worker's other jobs run.
BUDGET_S = 30.0
# pg_advisory_xact_lock key: one folder at a time (two would each add the other's rows'
# keys in a different order and could deadlock on the tallies' rows).
_LOCK = 0x7A11E5

# Every day-keyed tally is also keyed by the street (migration 0033), so a street's
# analyses read its own rows.
KEY = ("cell", "day", "category_code", "jurisdiction_id", "site_id", "open", "deadline",
       "late", "assessed", "street_id")
# The key of the per-cell tallies (tally_cell_day, tally_cell_month).
CELL_KEY = ("cell", "day", "open", "deadline", "street_id")
# The key of the per-jurisdiction tallies (ground_day, ground_month).
GROUND_KEY = ("day", "jurisdiction_id", "category_code", "open", "deadline", "late", "assessed",
              "street_id")
# The longest recurrence window a caller may ask for, in days (site_day.gap: migration 0025).
MAX_GAP_DAYS = 365
# Dirty (site, category, day) taken per transaction (site_day, site_month: migration 0025).
DAYS = 5_000
# Past this many dirty (site, category, day), the site tallies are counted again whole, in one
# pass over every site-linked issue (:func:`rebuild_sites`), rather than day by day: after the
# tallies are rebuilt (a change of zone, migration 0033) or a district's lines redrawn nearly
# every day is dirty, and the day-by-day recount (index look-ups per day across the monthly
# partitions) ran at 380 days a second at 10M issues: 936,000 dirty days, 41 minutes; counted
# whole, 48 s (10 streets x 1M, 2026-11-30).
BULK_DAYS = 50_000

# The journal rows a batch folds, with what the keys and the scores' sums need.
_TAKE = """
DELETE FROM tally_journal WHERE seq IN (
    SELECT seq FROM tally_journal ORDER BY seq LIMIT %(batch)s)
RETURNING sign, lon, lat, (reported_at AT TIME ZONE %(zone)s)::date AS day, category_code,
          jurisdiction_id, site_id, issue_is_open(status) AS open,
          CASE WHEN issue_is_open(status) THEN
              CASE WHEN deadline < now() THEN 'epoch' ELSE deadline END END AS deadline,
          NOT issue_is_open(status) AND issue_ran_past_deadline(deadline, closed_at, now())
              AS late,
          source = 'external_assessment' AS assessed, lead_unit_id,
          status = ANY(%(dismissed)s) AS dismissed, status = 'verified' AS verified,
          status = 'verified' AND closed_at <= deadline AS on_time,
          rework_count AS reworks, (rework_count > 0)::int AS reworked,
          (status IN ('rectified', 'verified') OR rework_count > 0)::int AS rework_cases,
          (first_rectified_at IS NOT NULL)::int AS rectified,
          coalesce(extract(epoch FROM first_rectified_at - reported_at), 0)::float8
              AS rectify_seconds, street_id
"""
_TAKEN = ("sign", "lon", "lat", "day", "category_code", "jurisdiction_id", "site_id", "open",
          "deadline", "late", "assessed", "lead_unit_id", "dismissed", "verified", "on_time",
          "reworks", "reworked", "rework_cases", "rectified", "rectify_seconds", "street_id")
# The key of the scores' tallies (duty_day, duty_month) and the sums they keep.
DUTY_KEY = ("day", "lead_unit_id", "jurisdiction_id", "site_id", "category_code", "open",
            "deadline", "late", "assessed", "dismissed", "verified", "on_time", "street_id")
DUTY_SUMS = ("n", "reworks", "reworked", "rework_cases", "rectified", "rectify_seconds")


@dataclass(frozen=True)
class Folded:
    """What one :func:`fold` call did: journal rows folded and whether it rebuilt."""

    rows: int
    rebuilt: bool


def fold(conn: psycopg.Connection[Any], zone: tzinfo, *, batch: int = BATCH,
         budget_s: float = BUDGET_S, bulk_days: int = BULK_DAYS) -> Folded:
    """Fold the journal into the tallies until it is empty or ``budget_s`` has passed.

    The tallies are rebuilt from the issue table first when they were built for another time
    zone or resolution (an operator changed ``SITEWATCH_TIMEZONE``). ``conn`` must not be in
    a transaction; each batch commits on its own.
    """
    zone_name = str(zone)
    started = time.monotonic()
    total, rebuilt = 0, False
    while True:
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK]).fetchone()
            if not (locked and locked[0]):
                return Folded(total, rebuilt)
            if not rebuilt and _basis_changed(conn, zone_name):
                rebuild(conn, zone_name)
                rebuilt = True
            compact(conn)
            rows = conn.execute(_TAKE, {"batch": batch, "zone": zone_name,
                                        "dismissed": list(DISMISSED_STATUSES)}).fetchall()
            if rows:
                signed = _signed(rows)
                _apply(conn, signed)
                _dirty(conn, signed)
                conn.execute("UPDATE tally_basis SET folds = folds + 1")
            total += len(rows)
        if time.monotonic() - started > budget_s:
            return Folded(total, rebuilt)
        if len(rows) < batch:
            break
    # The journal is empty: recount the days it touched (a day's count depends on the issue
    # before it, so it is recounted once all of them are in).
    while time.monotonic() - started <= budget_s:
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK]).fetchone()
            if not (locked and locked[0]):
                break
            dirty = conn.execute("SELECT count(*) FROM (SELECT FROM site_dirty LIMIT %s) d",
                                 [bulk_days + 1]).fetchone()
            done = (rebuild_sites(conn, zone_name) if dirty and dirty[0] > bulk_days
                    else recount_sites(conn, zone_name))
            if done:
                conn.execute("UPDATE tally_basis SET folds = folds + 1")
        if done < DAYS:
            break
    return Folded(total, rebuilt)


# The stand-in deadline of open issues already overdue ('epoch' in SQL; migration 0028): any
# time before every reading's now() answers "deadline < now()" as the real one did.
OVERDUE = datetime(1970, 1, 1, tzinfo=UTC)
# The tallies keyed by an open issue's deadline, with the sums each keeps.
_DUE = (("tally_day", KEY, ("n",)), ("tally_month", KEY, ("n",)),
        ("tally_cell_day", CELL_KEY, ("n",)), ("tally_cell_month", CELL_KEY, ("n",)),
        ("ground_day", GROUND_KEY, ("n",)), ("ground_month", GROUND_KEY, ("n",)),
        ("duty_day", DUTY_KEY, DUTY_SUMS), ("duty_month", DUTY_KEY, DUTY_SUMS))


def compact(conn: psycopg.Connection[Any]) -> None:
    """Move the open rows whose deadline has passed to :data:`OVERDUE` (inside the caller's
    transaction, before it folds journal rows, which it maps the same way as of the same
    now())."""
    for table, key, sums in _DUE:
        others = [c for c in key if c != "deadline"]
        conn.execute(sql.SQL("""
            WITH passed AS (
                DELETE FROM {table} WHERE open AND deadline > 'epoch' AND deadline < now()
                RETURNING {others}, {sums})
            INSERT INTO {table} AS t ({others}, deadline, {sums})
            SELECT {others}, 'epoch', {summed} FROM passed GROUP BY {others}
            ON CONFLICT ({key}) DO UPDATE SET {add}""").format(
            table=sql.Identifier(table),
            others=sql.SQL(", ").join(map(sql.Identifier, others)),
            sums=sql.SQL(", ").join(map(sql.Identifier, sums)),
            summed=sql.SQL(", ").join(sql.SQL("sum({})").format(sql.Identifier(c))
                                      for c in sums),
            key=sql.SQL(", ").join(map(sql.Identifier, key)),
            add=sql.SQL(", ").join(sql.SQL("{0} = t.{0} + EXCLUDED.{0}").format(
                sql.Identifier(c)) for c in sums)))
    conn.execute("UPDATE tally_basis SET compacted_to = now()")


def _basis_changed(conn: psycopg.Connection[Any], zone_name: str) -> bool:
    row = conn.execute("SELECT zone, resolution FROM tally_basis").fetchone()
    if row is None:
        conn.execute("INSERT INTO tally_basis (zone, resolution) VALUES (%s, %s)",
                     [zone_name, RESOLUTION])
        return False
    return (str(row[0]), int(row[1])) != (zone_name, RESOLUTION)


def rebuild(conn: psycopg.Connection[Any], zone_name: str) -> None:
    """Empty the tallies and journal every issue again (inside the caller's transaction)."""
    conn.execute("TRUNCATE tally_journal, tally_day, tally_month, tally_cell_day,"
                 " tally_cell_month, duty_day, duty_month, ground_day, ground_month, site_day,"
                 " site_month, site_dirty")
    conn.execute("SELECT journal_every_issue()")
    conn.execute("INSERT INTO tally_basis (zone, resolution) VALUES (%s, %s)"
                 " ON CONFLICT (one) DO UPDATE SET zone = EXCLUDED.zone,"
                 " resolution = EXCLUDED.resolution", [zone_name, RESOLUTION])


def _signed(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The journal rows with their cell, every sum multiplied by the row's sign."""
    frame = pd.DataFrame(rows, columns=list(_TAKEN)).astype(
        {"jurisdiction_id": "Int64", "site_id": "Int64", "lead_unit_id": "Int64",
         "street_id": "Int64", "deadline": object})
    frame["cell"] = h3_cells(frame["lon"].to_numpy(np.float64),
                             frame["lat"].to_numpy(np.float64), RESOLUTION).astype(np.int64)
    sign = frame["sign"].to_numpy(np.int64)
    frame["n"] = sign
    for column in DUTY_SUMS[1:]:
        frame[column] = frame[column].to_numpy(np.float64 if column == "rectify_seconds"
                                               else np.int64) * sign
    return frame


# Each tally: its key, its sums and whether it counts rejected and duplicate reports.
_TALLIES = (("tally_day", KEY, ("n",), False), ("tally_cell_day", CELL_KEY, ("n",), False),
            ("ground_day", GROUND_KEY, ("n",), False), ("duty_day", DUTY_KEY, DUTY_SUMS, True))


def _apply(conn: psycopg.Connection[Any], frame: pd.DataFrame) -> None:
    """Add the signed journal rows to each day tally and, by month, to each month tally."""
    months = frame.assign(day=[d.replace(day=1) for d in frame["day"]])
    for day_table, key, sums, dismissed in _TALLIES:
        for table, rows in ((day_table, frame), (day_table.replace("_day", "_month"), months)):
            part = rows if dismissed else rows[~rows["dismissed"].astype(bool)]
            summed = part.groupby(list(key), dropna=False, sort=True)[list(sums)].sum()
            # A change within one key (a rework: one issue out and back in) moves the sums
            # but not the count: kept unless every sum is zero.
            _upsert(conn, table, key, sums, summed[(summed != 0).any(axis=1)].reset_index())


def _dirty(conn: psycopg.Connection[Any], frame: pd.DataFrame) -> None:
    """Mark the site, category and local day of each site-linked journal row for recounting."""
    days = frame.loc[frame["site_id"].notna(), ["site_id", "category_code", "day"]
                     ].drop_duplicates()
    if days.empty:
        return
    conn.execute("""
        INSERT INTO site_dirty (site_id, category_code, day)
        SELECT * FROM unnest(%s::bigint[], %s::text[], %s::date[]) ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING""", [[int(v) for v in days["site_id"].tolist()],
                                    days["category_code"].tolist(), days["day"].tolist()])


# The dirty days taken for recounting, oldest first, with the day of the next issue of each
# pair after each (a change on a day moves the gap of the issue that follows it, which is on
# that day or is the pair's first issue after it).
_TAKE_DAYS = """
WITH taken AS (
    DELETE FROM site_dirty WHERE (site_id, category_code, day) IN (
        SELECT site_id, category_code, day FROM site_dirty
        ORDER BY at, site_id, category_code, day LIMIT %(days)s)
    RETURNING site_id, category_code, day)
INSERT INTO site_days
SELECT site_id, category_code, day FROM taken
UNION
SELECT t.site_id, t.category_code, (n.reported_at AT TIME ZONE %(zone)s)::date
FROM taken t CROSS JOIN LATERAL (
    SELECT i.reported_at FROM issue i
    WHERE i.site_id = t.site_id AND i.category_code = t.category_code
      AND i.reported_at >= ((t.day + 1)::timestamp AT TIME ZONE %(zone)s)
      AND i.status <> ALL(%(dismissed)s)
    ORDER BY i.reported_at, i.id LIMIT 1) n
"""
# Each day's counted issues with their gap (geo.hotspots.chronic.recurrence_gaps, in whole
# days rounded up, kept when 0-365: migration 0025), the issue before the day taken along so
# that the day's first issue has its predecessor.
_RECOUNT = """
INSERT INTO site_day (day, site_id, category_code, gap, n)
SELECT d.day, d.site_id, d.category_code,
       CASE WHEN x.gap_s BETWEEN 0 AND 365 * 86400 THEN ceil(x.gap_s / 86400)::smallint END,
       count(*)
FROM site_days d CROSS JOIN LATERAL (
    SELECT extract(epoch FROM y.reported_at) - extract(epoch FROM lag(
               CASE WHEN y.status = 'verified' THEN y.closed_at END) OVER (
               ORDER BY y.reported_at, y.id)) AS gap_s, y.on_day
    FROM ((SELECT i.id, i.reported_at, i.status, i.closed_at, true AS on_day FROM issue i
           WHERE i.site_id = d.site_id AND i.category_code = d.category_code
             AND i.reported_at >= (d.day::timestamp AT TIME ZONE %(zone)s)
             AND i.reported_at < ((d.day + 1)::timestamp AT TIME ZONE %(zone)s)
             AND i.status <> ALL(%(dismissed)s))
          UNION ALL
          (SELECT i.id, i.reported_at, i.status, i.closed_at, false FROM issue i
           WHERE i.site_id = d.site_id AND i.category_code = d.category_code
             AND i.reported_at < (d.day::timestamp AT TIME ZONE %(zone)s)
             AND i.status <> ALL(%(dismissed)s)
           ORDER BY i.reported_at DESC, i.id DESC LIMIT 1)) y) x
WHERE x.on_day
GROUP BY 1, 2, 3, 4
"""


def recount_sites(conn: psycopg.Connection[Any], zone_name: str, *, days: int = DAYS) -> int:
    """Recount the site tallies of up to ``days`` dirty (site, category, day) and the days
    their changes reach, from the issues of those days and the one before each (inside the
    caller's transaction); returns how many days were recounted."""
    for temp in ("site_days", "site_months"):
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (site_id bigint,"
                             " category_code text, day date) ON COMMIT DELETE ROWS").format(
            sql.Identifier(temp)))
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(temp)))
    params = {"days": days, "zone": zone_name, "dismissed": list(DISMISSED_STATUSES)}
    conn.execute(_TAKE_DAYS, params)
    row = conn.execute("SELECT count(*) FROM site_days").fetchone()
    if not row or not row[0]:
        return 0
    conn.execute("""
        DELETE FROM site_day t USING site_days d WHERE t.site_id = d.site_id
        AND t.category_code = d.category_code AND t.day = d.day""")
    conn.execute(_RECOUNT, params)
    # The months of those days, summed again from their days.
    conn.execute("""
        INSERT INTO site_months SELECT DISTINCT site_id, category_code,
               date_trunc('month', day)::date FROM site_days""")
    conn.execute("""
        DELETE FROM site_month t USING site_months m WHERE t.site_id = m.site_id
        AND t.category_code = m.category_code AND t.day = m.day""")
    conn.execute("""
        INSERT INTO site_month (day, site_id, category_code, gap, n)
        SELECT m.day, t.site_id, t.category_code, t.gap, sum(t.n)
        FROM site_months m JOIN site_day t
             ON t.site_id = m.site_id AND t.category_code = m.category_code
            AND t.day >= m.day AND t.day < (m.day + interval '1 month')::date
        GROUP BY 1, 2, 3, 4""")
    return int(row[0])


def rebuild_sites(conn: psycopg.Connection[Any], zone_name: str) -> int:
    """Count the site tallies again whole from the issue table (inside the caller's
    transaction, which holds the folder's lock): each counted site-linked issue's gap to the
    closure of the previous issue of its pair, by one window over every pair's history, as
    :data:`_RECOUNT` counts a day. Every dirty mark is consumed (a change committed after this
    statement's snapshot is still in the journal and marks its day again when folded);
    returns how many there were. Rows are deleted, not truncated, so readers keep the old
    counts until this commits."""
    row = conn.execute("WITH gone AS (DELETE FROM site_dirty RETURNING 1)"
                       " SELECT count(*) FROM gone").fetchone()
    conn.execute("DELETE FROM site_day")
    conn.execute("""
        INSERT INTO site_day (day, site_id, category_code, gap, n)
        SELECT (reported_at AT TIME ZONE %(zone)s)::date, site_id, category_code,
               CASE WHEN gap_s BETWEEN 0 AND 365 * 86400 THEN ceil(gap_s / 86400)::smallint
               END, count(*)
        FROM (SELECT site_id, category_code, reported_at,
                     extract(epoch FROM reported_at) - extract(epoch FROM lag(
                         CASE WHEN status = 'verified' THEN closed_at END) OVER (
                         PARTITION BY site_id, category_code ORDER BY reported_at, id))
                         AS gap_s
              FROM issue WHERE site_id IS NOT NULL AND status <> ALL(%(dismissed)s)) x
        GROUP BY 1, 2, 3, 4""", {"zone": zone_name, "dismissed": list(DISMISSED_STATUSES)})
    conn.execute("DELETE FROM site_month")
    conn.execute("""
        INSERT INTO site_month (day, site_id, category_code, gap, n)
        SELECT date_trunc('month', day)::date, site_id, category_code, gap, sum(n)
        FROM site_day GROUP BY 1, 2, 3, 4""")
    return int(row[0]) if row else 0


def _upsert(conn: psycopg.Connection[Any], table: str, key: tuple[str, ...],
            sums: tuple[str, ...], part: pd.DataFrame) -> None:
    """Add ``part`` (sums per key, keys unique) to ``table``; drop the rows left without
    issues."""
    if part.empty:
        return
    names = sql.SQL(", ").join(sql.Identifier(c) for c in (*key, *sums))
    columns = [[_plain(v) for v in part[name].tolist()] for name in (*key, *sums)]
    delta = sql.Identifier(f"{table}_delta")
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS"
                         ).format(delta, sql.Identifier(table)))
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(delta, names)) as copy:
            for record in zip(*columns, strict=True):
                copy.write_row(record)
        # Applied in key order (sorted above), one folder at a time (the advisory lock).
        emptied = cur.execute(sql.SQL("""
            INSERT INTO {table} AS t ({names}) SELECT {names} FROM {delta}
            ON CONFLICT ({conflict}) DO UPDATE SET {add}
            RETURNING ctid, n""").format(
            table=sql.Identifier(table), names=names, delta=delta,
            conflict=sql.SQL(", ").join(sql.Identifier(c) for c in key),
            add=sql.SQL(", ").join(sql.SQL("{0} = t.{0} + EXCLUDED.{0}").format(
                sql.Identifier(c)) for c in sums))).fetchall()
        gone = [ctid for ctid, n in emptied if n == 0]
        if gone:
            # The rows were written by this transaction, which holds them: their ctid stays.
            cur.execute(sql.SQL("DELETE FROM {} WHERE ctid = ANY(%s::tid[])").format(
                sql.Identifier(table)), [gone])
        cur.execute(sql.SQL("TRUNCATE {}").format(delta))


def _plain(value: Any) -> Any:
    """A frame's value as psycopg takes it: missing values as None, numpy ints as int."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def lag(conn: psycopg.Connection[Any]) -> timedelta:
    """How far the tallies are behind the issues: the age of the oldest journal row not yet
    folded or pair not yet recounted (zero when there is none).

    The journal's oldest row is found by its key, not by ``min(at)``, which reads the whole
    table: emptied after a rebuild of ten million rows, it kept 1.7 GB of empty pages until
    vacuumed, and every map page paid a second for it. Rows are numbered as they are written,
    so the first is the oldest, to within one writing transaction's length."""
    row = conn.execute("SELECT now() - least((SELECT at FROM tally_journal ORDER BY seq"
                       " LIMIT 1), (SELECT min(at) FROM site_dirty))").fetchone()
    return row[0] if row and row[0] is not None else timedelta(0)


# Reading -----------------------------------------------------------------------------------

def basis_zone(conn: psycopg.Connection[Any]) -> tzinfo:
    """The time zone the tallies' local days are in (UTC before the first fold).

    Readers take it from the tallies rather than from the settings: a period must be cut into
    the days the tallies were counted in, and after a change of the district's zone they are
    in the old one until the job has rebuilt them."""
    row = conn.execute("SELECT zone FROM tally_basis").fetchone()
    return ZoneInfo(str(row[0])) if row else UTC


def local_days(period: Period, zone: tzinfo) -> tuple[date, date]:
    """The period as local days ``[first, end)``: a bound inside a day takes the whole day;
    an open start is the first day there could be, an open end the end of today."""
    first = date(1, 1, 1) if period.since is None else period.since.astimezone(zone).date()
    if period.until is None:
        return first, datetime.now(zone).date() + timedelta(days=1)
    local = period.until.astimezone(zone)
    end = local.date()
    if local.time() != datetime.min.time():
        end += timedelta(days=1)
    return first, end


def period_source(first: date, end: date, *, family: Family = "full"
                  ) -> tuple[sql.Composable, dict[str, Any]]:
    """Tally rows covering local days ``[first, end)``: whole months from the month table, the
    days before the first and after the last whole month from the day table, of one family
    of tallies."""
    month0 = first if first.day == 1 else _next_month(first)
    month1 = end.replace(day=1)
    if month0 >= month1:  # no whole month inside: days only
        month0 = month1 = end
    days, months = _tables(family)
    query = sql.SQL("""(
        SELECT * FROM {months} WHERE day >= %(month0)s AND day < %(month1)s
        UNION ALL
        SELECT * FROM {days} WHERE day >= %(first)s AND day < %(month0)s
        UNION ALL
        SELECT * FROM {days} WHERE day >= %(month1)s AND day < %(end)s)""").format(
        days=days, months=months)
    return query, {"first": first, "end": end, "month0": month0, "month1": month1}


# The tallies by what they are keyed by: the full key, the cell alone, the scores' key.
Family = Literal["full", "cell", "ground", "site", "duty"]
_FAMILIES: dict[str, tuple[str, str]] = {"full": ("tally_day", "tally_month"),
                                         "cell": ("tally_cell_day", "tally_cell_month"),
                                         "ground": ("ground_day", "ground_month"),
                                         "site": ("site_day", "site_month"),
                                         "duty": ("duty_day", "duty_month")}


def _tables(family: Family) -> tuple[sql.Identifier, sql.Identifier]:
    day, month = _FAMILIES[family]
    return sql.Identifier(day), sql.Identifier(month)


@dataclass(frozen=True)
class Selection:
    """Which tallied issues to count: a period, categories (none: all), a site layer
    (issues linked to its sites), or issues at any site; in some cells only (H3 integers at
    :data:`RESOLUTION`; none: all); of one street only (its jurisdiction id; none: every
    street the session sees, a street-scoped session its own by the street policies)."""

    period: Period = field(default_factory=Period)
    categories: tuple[str, ...] = ()
    layer: str | None = None
    at_sites: bool = False
    cells: tuple[int, ...] = ()
    street: int | None = None


# What a reading can count per group; "now" is the reading's moment.
MEASURES: dict[str, str] = {
    "issues": "sum(t.n)",
    "open": "coalesce(sum(t.n) FILTER (WHERE t.open), 0)",
    "overdue": "coalesce(sum(t.n) FILTER (WHERE t.open AND t.deadline < now()), 0)",
    # layers.supervision.scores.LOST, at the tallies' grain.
    "points_lost": "coalesce(sum(t.n * c.points) FILTER (WHERE t.assessed OR t.late"
                   " OR (t.open AND t.deadline < now())), 0)::float8",
}
GROUPS = ("cell", "day", "category_code", "jurisdiction_id", "site_id", "street_id")


@dataclass(frozen=True)
class Steps:
    """Time steps of ``days`` local days from ``start``: the group ``step`` of
    :func:`count` is the step a day falls in (0 from ``start``)."""

    start: date
    days: int


def count(conn: psycopg.Connection[Any], selection: Selection, by: tuple[str, ...],
          measures: tuple[str, ...] = ("issues",), *, steps: Steps | None = None
          ) -> pd.DataFrame:
    """The selection's measures per group of ``by`` (columns of :data:`GROUPS`, or ``step``
    with ``steps``, which counts from its start on), one row per group that has issues,
    ordered by the groups."""
    unknown = set(by) - set(GROUPS) - ({"step"} if steps else set()) \
        | set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown groups or measures: {sorted(unknown)}")
    first, end = local_days(selection.period, basis_zone(conn))
    # The per-cell tallies answer whatever needs no category, ground or site.
    family = _family(selection, by, measures)
    if steps is not None:  # steps need days, which months would blur
        source: sql.Composable = sql.SQL(
            "(SELECT * FROM {} WHERE day >= %(first)s AND day < %(end)s)").format(
            _tables(family)[0])
        params: dict[str, Any] = {"first": max(first, steps.start), "end": end,
                                  "step0": steps.start, "step_days": steps.days}
    else:
        source, params = period_source(first, end, family=family)
    where = _where(selection, params, family)
    keys = sql.SQL(", ").join(
        sql.SQL("(t.day - %(step0)s) / %(step_days)s") if b == "step"
        else sql.SQL("t.{}").format(sql.Identifier(b)) for b in by)
    query = sql.SQL("SELECT {keys}{comma}{measures} FROM {source} t {join} WHERE {where}"
                    " {group}").format(
        keys=keys, comma=sql.SQL(", ") if by else sql.SQL(""),
        measures=sql.SQL(", ").join(sql.SQL(f"{MEASURES[m]} AS {m}") for m in measures),
        source=source,
        join=sql.SQL("JOIN category c ON c.code = t.category_code")
        if "points_lost" in measures else sql.SQL(""),
        where=where,
        group=sql.SQL("GROUP BY {} ORDER BY {}").format(keys, keys) if by else sql.SQL(""))
    frame = pd.DataFrame(conn.execute(query, params).fetchall(), columns=[*by, *measures])
    if "step" in by:
        frame["step"] = frame["step"].astype(np.int64)
    if not by:
        frame = frame.fillna(0)
    for m in measures:
        frame[m] = frame[m].astype(np.float64 if m == "points_lost" else np.int64)
    return frame


def _family(selection: Selection, by: tuple[str, ...], measures: tuple[str, ...]) -> Family:
    """The smallest tallies that answer: per cell alone whatever needs no category, ground
    or site; per jurisdiction and category whatever needs no cell or site; else the full key.
    Every one of them is keyed by street too (migration 0033), so a street, named or scoped,
    reads the same family as the district."""
    groups = set(by) - {"day", "step", "street_id"}
    by_site = selection.layer is not None or selection.at_sites or bool(selection.cells)
    if not groups - {"cell"} and "points_lost" not in measures and not (
            selection.categories or by_site):
        return "cell"
    if not groups - {"jurisdiction_id", "category_code"} and not by_site:
        return "ground"
    return "full"


def _where(selection: Selection, params: dict[str, Any], family: Family) -> sql.Composable:
    """The selection's categories, layer, sites, cells and street as a condition on tally
    rows ``t`` of ``family`` (its values added to ``params``)."""
    where = [sql.SQL("true")]
    if selection.street is not None:
        # The site tallies are keyed by site, which lies in one street.
        where.append(sql.SQL("t.site_id IN (SELECT id FROM site WHERE street_id = %(street)s)")
                     if family == "site" else sql.SQL("t.street_id = %(street)s"))
        params["street"] = selection.street
    if selection.categories:
        where.append(sql.SQL("t.category_code = ANY(%(categories)s)"))
        params["categories"] = list(selection.categories)
    if selection.layer is not None:
        where.append(sql.SQL("t.site_id IN (SELECT id FROM site WHERE layer = %(layer)s)"))
        params["layer"] = selection.layer
    elif selection.at_sites:
        where.append(sql.SQL("t.site_id IS NOT NULL"))
    if selection.cells:
        where.append(sql.SQL("t.cell = ANY(%(cells)s)"))
        params["cells"] = list(selection.cells)
    return sql.SQL(" AND ").join(where)


def first_day(conn: psycopg.Connection[Any], selection: Selection) -> date | None:
    """The first local day on which the selection has issues (its period's start ignored),
    found by the day index: the tally rows are read in day order until one matches."""
    params: dict[str, Any] = {}
    family = _family(selection, (), ())
    where = _where(selection, params, family)
    row = conn.execute(sql.SQL("SELECT min(t.day) FROM {} t WHERE {}").format(
        _tables(family)[0], where), params).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class SitePairs:
    """A selection's (site, category) pairs with their issues and recurrences
    (geo.hotspots.chronic.PAIR_COLUMNS; first and last reports left empty: see
    :func:`pair_days`), and the days from its first site-linked report to its last."""

    pairs: pd.DataFrame
    span_days: float


def site_pairs(conn: psycopg.Connection[Any], selection: Selection, window_days: int
               ) -> SitePairs:
    """Per (site, category) of the selection's site-linked issues: issues, and recurrences
    within ``window_days`` whole days of the previous closure (site tallies)."""
    first, end = local_days(selection.period, basis_zone(conn))
    source, params = period_source(first, end, family="site")
    where = _where(selection, params, "site")
    params["window"] = window_days
    rows = conn.execute(sql.SQL("""
        SELECT t.site_id, t.category_code, coalesce(sum(t.n) FILTER (
                   WHERE t.gap <= %(window)s), 0), sum(t.n)
        FROM {} t WHERE {} GROUP BY 1, 2 ORDER BY 1, 2""").format(source, where),
        params).fetchall()
    pairs = pd.DataFrame(rows, columns=["site_id", "category", "recurrences", "issues"]).astype(
        {"site_id": np.int64, "recurrences": np.int64, "issues": np.int64})
    pairs["first_reported"] = pairs["last_reported"] = None
    span = conn.execute(sql.SQL("""
        SELECT (SELECT max(t.day) FROM site_day t WHERE {w} AND t.day >= %(first)s
                AND t.day < %(end)s)
             - (SELECT min(t.day) FROM site_day t WHERE {w} AND t.day >= %(first)s
                AND t.day < %(end)s)""").format(w=where), params).fetchone()
    return SitePairs(pairs, float(span[0]) if span and span[0] is not None else 0.0)


def pair_days(conn: psycopg.Connection[Any], selection: Selection, pairs: pd.DataFrame
              ) -> pd.DataFrame:
    """The first and last local day of the selection's period on which each of ``pairs``
    (``site_id``, ``category``: a few, the ranked ones) was reported."""
    first, end = local_days(selection.period, basis_zone(conn))
    rows = conn.execute("""
        SELECT t.site_id, t.category_code, min(t.day), max(t.day)
        FROM site_day t JOIN unnest(%s::bigint[], %s::text[]) AS p (site_id, category_code)
             ON p.site_id = t.site_id AND p.category_code = t.category_code
        WHERE t.day >= %s AND t.day < %s GROUP BY 1, 2""",
        [[int(v) for v in pairs["site_id"].tolist()], pairs["category"].tolist(),
         first, end]).fetchall()
    return pd.DataFrame(rows, columns=["site_id", "category", "first_reported",
                                       "last_reported"]).astype({"site_id": np.int64})


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def tally_job(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """The worker's ``tally`` job: :func:`fold` on a connection of its own, so that each
    batch commits (the runner's transaction would hold every folded row until the run ended)."""
    with psycopg.connect(database.conninfo(settings), autocommit=True) as own:
        done = fold(own, settings.zone)
    return f"{done.rows} journal row(s) folded" + (" after a rebuild" if done.rebuilt else "")
