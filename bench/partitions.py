"""Monthly partitions (migration 0030) against the same rows unpartitioned, in the same run.

The database's issue and issue_event tables are copied, in the same database, into plain
tables with the indexes the tables had before 0030 (the unique keys on id and public_id, the
same secondary indexes): the baseline is the same rows on the same server at the same moment,
as the schema was at 0029. Each read is then timed on both, prepared as the app's connections
prepare them (psycopg prepares a statement from its sixth run): a look-up by public id (the
code's path through issue_key, and the plain probe of every month's index for contrast), the
first page of the newest issues with the total, a month's list with its count, a quarter's
counts by status and category, one issue's trail. A row also shows how many partitions the
period query's plan reads.

Run alone: ``python -m bench.partitions`` (``BENCH_ISSUES`` sizes it, as ``make bench``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from bench.harness import Results, Row, Sizes, demo_database, run_alone, timed
from layers.db import partitions
from layers.db.settings import Settings
from layers.issues import records

ZONE = Settings().zone
NOW = datetime.fromisoformat("2026-11-20T00:00:00+08:00")  # as bench.tallies
LOOKUPS = 300
REPEATS = 15
FLAT, FLAT_EVENTS = "bench_flat_issue", "bench_flat_issue_event"


def _flat_copies(conn: psycopg.Connection[Any]) -> float:
    """Plain copies of issue and issue_event with their pre-0030 keys and indexes; seconds."""
    def build() -> None:
        for flat, source, keys in ((FLAT, "issue", "PRIMARY KEY (id), ADD UNIQUE (public_id)"),
                                   (FLAT_EVENTS, "issue_event", "PRIMARY KEY (id)")):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(flat)))
            conn.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                sql.Identifier(flat), sql.Identifier(source)))
            conn.execute(sql.SQL("ALTER TABLE {} ADD {}").format(sql.Identifier(flat),
                                                                  sql.SQL(keys)))
            # The parent's index definitions, on the copy (the two that stand in for the lost
            # unique keys are left out: the copy has the keys themselves).
            for (definition,) in conn.execute(
                    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary"
                    " AND c.relname NOT IN ('issue_id_idx', 'issue_public_id_idx')",
                    [source]).fetchall():
                found = re.match(r"CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?\S+ (.*)", definition)
                assert found is not None
                conn.execute(f"CREATE {found[1] or ''}INDEX {flat}_{found[2]} ON {flat}"
                             f" {found[3]}")
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(flat)))
        conn.commit()
    return timed(build)[0]


def _median_ms(run: Callable[[Any], object], arguments: list[Any]) -> float:
    times = [timed(partial(run, a))[0] for a in arguments]
    return statistics.median(times) * 1000


def _compare(results: Results, conn: psycopg.Connection[Any], name: str,
             partitioned: Callable[[Any], object], flat: Callable[[Any], object],
             arguments: list[Any], target: str, note: str = "") -> None:
    # Alternate the two, twice, so neither gets the warmer cache or the quieter moment.
    one = [_median_ms(partitioned, arguments), _median_ms(flat, arguments)]
    two = [_median_ms(partitioned, arguments), _median_ms(flat, arguments)]
    mine, base = min(one[0], two[0]), min(one[1], two[1])
    results.add(Row(f"partitions: {name}", f"{mine:.2f} ms", f"{base:.2f} ms unpartitioned",
                    f"{mine / base:.2f}", target, note))


def _count(table: str, *, period: bool = False) -> sql.Composed:
    query = ("SELECT count(*) FROM {} WHERE reported_at >= %s AND reported_at < %s" if period
             else "SELECT count(*) FROM {}")
    return sql.SQL(query).format(sql.Identifier(table))


def _rows(conn: psycopg.Connection[Any], query: sql.Composed | str,
          params: Any = None) -> Callable[[Any], object]:
    def run(argument: Any) -> object:
        values = params(argument) if callable(params) else argument
        return conn.execute(query, values).fetchall()
    return run


def _issue_select(conn: psycopg.Connection[Any], table: str) -> str:
    """The issues list's own SELECT (layers.issues.records) over ``table``."""
    text = records.ISSUE_SELECT.as_string(conn)
    return text.replace("FROM issue i", f"FROM {table} i")


def _planned_partitions(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> int:
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, params).fetchall())
    return len(set(re.findall(r"\bon (issue_(?:y\d{4}m\d{2}|before|after))\b", plan)))


def run(results: Results, dsn: str, label: str = "") -> None:
    """Every comparison on the database at ``dsn`` (partitioned by its migrations)."""
    with psycopg.connect(dsn) as conn:
        count = conn.execute("SELECT count(*) FROM issue").fetchone()
        tag = label or f"{int(count[0]) if count else 0:,} issues"
        months = partitions.months(conn)
        copy_s = _flat_copies(conn)
        # Spread over the whole archive, the same ones every run.
        ids = [r[0] for r in conn.execute(
            "SELECT public_id FROM issue_key ORDER BY md5(id::text) LIMIT %s",
            [LOOKUPS]).fetchall()]
        internal = [r[0] for r in conn.execute(
            "SELECT id FROM issue_key WHERE public_id = ANY(%s)", [ids]).fetchall()]
        conn.commit()
    results.facts.append(
        f"Partitions ({tag}): {len(months)} monthly partitions of issue and of issue_event;"
        f" the unpartitioned copies for the baseline took {copy_s:.0f} s to build.")
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_key = _issue_select(conn, "issue") + " WHERE " + \
            partitions.ISSUE_BY_PUBLIC_ID.as_string(conn)
        _compare(results, conn, f"look-up by public id ({tag})",
                 _rows(conn, by_key, lambda a: [a]),
                 _rows(conn, _issue_select(conn, FLAT) + " WHERE i.public_id = %s",
                       lambda a: [a]), ids, "≤ 1.5",
                 "the code's path: issue_key names the month, one partition is read")
        _compare(results, conn, f"look-up by public id, every month's index ({tag})",
                 _rows(conn, _issue_select(conn, "issue") + " WHERE i.public_id = %s",
                       lambda a: [a]),
                 _rows(conn, _issue_select(conn, FLAT) + " WHERE i.public_id = %s",
                       lambda a: [a]), ids, "report",
                 "for contrast: without issue_key each month's index is probed")
        page = " ORDER BY i.reported_at DESC, i.id DESC LIMIT 100"
        _compare(results, conn, f"issues list, newest 100 ({tag})",
                 _rows(conn, _issue_select(conn, "issue") + page, lambda a: []),
                 _rows(conn, _issue_select(conn, FLAT) + page, lambda a: []),
                 list(range(REPEATS)), "≤ 1.5",
                 "the page reads back from the newest month (ordered Append)")
        _compare(results, conn, f"issues total ({tag})",
                 _rows(conn, _count("issue"), lambda a: []),
                 _rows(conn, _count(FLAT), lambda a: []),
                 list(range(REPEATS)), "≤ 1.5")
        month = max(months, key=lambda m: m.rows)
        period = [month.lower, month.upper]
        window = (" WHERE i.reported_at >= %s AND i.reported_at < %s"
                  " ORDER BY i.reported_at DESC, i.id DESC LIMIT 100")
        read = _planned_partitions(conn, "SELECT count(*) FROM issue WHERE reported_at >= %s"
                                         " AND reported_at < %s", period)
        _compare(results, conn, f"a month's list and its count ({tag})",
                 lambda a: (_rows(conn, _issue_select(conn, "issue") + window)(period),
                            _rows(conn, _count("issue", period=True))(period)),
                 lambda a: (_rows(conn, _issue_select(conn, FLAT) + window)(period),
                            _rows(conn, _count(FLAT, period=True))(period)),
                 list(range(REPEATS)), "≤ 1",
                 f"{month.name}, {month.rows:,} issues: the plan reads {read} partition(s)")
        quarter = [month.upper - timedelta(days=92), month.upper]
        counts = ("SELECT status, category_code, count(*) FROM {} WHERE reported_at >= %s"
                  " AND reported_at < %s GROUP BY 1, 2")
        read = _planned_partitions(conn, counts.format("issue"), quarter)
        _compare(results, conn, f"a quarter's counts by status and category ({tag})",
                 _rows(conn, counts.format("issue"), lambda a: quarter),
                 _rows(conn, counts.format(FLAT), lambda a: quarter),
                 list(range(REPEATS)), "≤ 1", f"92 days: the plan reads {read} partition(s)")
        trail = "SELECT * FROM {} WHERE issue_id = %s ORDER BY at, id"
        _compare(results, conn, f"one issue's trail ({tag})",
                 _rows(conn, trail.format("issue_event"), lambda a: [a]),
                 _rows(conn, trail.format(FLAT_EVENTS), lambda a: [a]), internal[:100],
                 "report", "by issue_id: every month's index of issue_event is probed")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {FLAT}, {FLAT_EVENTS}")


def alone(results: Results, node: Any, sizes: Sizes) -> str:
    """``python -m bench.partitions``: a demo district of ``sizes.issues`` issues."""
    dsn = demo_database(node, "bench_partitions", issues=sizes.issues, now=NOW)
    run(results, dsn)
    return dsn


if __name__ == "__main__":
    run_alone(alone)
