"""Load the generated demo district (geo.demo) into an empty database, bulk data by COPY."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import pandas as pd
import psycopg
import shapely

from geo.assign import RESULT_COLUMNS
from geo.demo import DemoDistrict, generate_district
from geo.demo_issues import generate_issues
from layers.analysis import tallies
from layers.assignment import as_db_values, load_assigner
from layers.db.bulk import bulk_write_mode

Progress = Callable[[str, int, int], None]
# The demo campaign, May to December 2026, as wall-clock times of the district's zone (the
# zone load() is given).
CAMPAIGN_START = datetime(2026, 5, 1)
CAMPAIGN_END = datetime(2026, 12, 31, 23, 59)
# COPY in chunks so the progress bar moves and memory stays flat at a million issues.
_CHUNK = 100_000
_ISSUE_COLUMNS = ["public_id", "category", "wkb", "description", "source", "reported_at",
                  "status", "reporter", "rework_count", "assigned_at", "rectified_at",
                  "closed_at", *RESULT_COLUMNS]


def _silent(_step: str, _done: int, _total: int) -> None:
    """The default progress callback: report nothing."""


def has_data(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database already holds jurisdictions, sites or issues."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM jurisdiction) OR EXISTS (SELECT 1 FROM site)"
        " OR EXISTS (SELECT 1 FROM issue)"
    ).fetchone()
    return bool(row and row[0])


def load(
    conn: psycopg.Connection[Any],
    *,
    zone: tzinfo,
    n_issues: int = 3000,
    seed: int = 20260501,
    now: datetime | None = None,
    grids_per_community: int | None = None,
    streets: int = 1,
    progress: Progress = _silent,
) -> dict[str, int]:
    """Generate and load the demo district in one transaction, then tally its issues
    (layers.analysis.tallies); return row counts.

    The campaign runs in local time of ``zone`` (the district's), reported up to ``now``.
    ``streets`` above one loads a district of that many adjacent streets
    (:func:`geo.demo.generate_district`), ``n_issues`` each.
    """
    now = now or datetime.now(zone)
    district = generate_district(seed, grids_per_community=grids_per_community,
                                 streets=streets)
    with conn.transaction():
        _load_units(conn, district)
        _load_jurisdictions(conn, district)
        _load_sites(conn, district)
        categories = pd.DataFrame(
            conn.execute("SELECT code, name_zh, site_layer, deadline_hours FROM category"
                         " WHERE active ORDER BY code").fetchall(),
            columns=["code", "name_zh", "site_layer", "deadline_hours"],
        )
        progress("generating issues", 0, 1)
        issues = generate_issues(district, categories, n_issues, seed=seed,
                                 start=CAMPAIGN_START.replace(tzinfo=zone),
                                 end=CAMPAIGN_END.replace(tzinfo=zone), now=now, zone=zone)
        progress("generating issues", 1, 1)
        progress("assigning issues", 0, 1)
        assigned = as_db_values(load_assigner(conn).assign(
            issues["lon"].to_numpy(), issues["lat"].to_numpy(),
            issues["category"].to_numpy(object)))
        progress("assigning issues", 1, 1)
        with bulk_write_mode(conn, ["issue", "issue_event"]):
            _copy_issues(conn, pd.concat([issues, assigned], axis=1), progress)
            progress("writing audit trail", 0, 1)
            _write_events(conn)
            progress("writing audit trail", 1, 1)
            progress("building indexes and keys", 0, 1)
        progress("building indexes and keys", 1, 1)
    # Folded here rather than left to a worker: the demo's maps are ready when it returns.
    progress("tallying issues", 0, 1)
    tallies.fold(conn, zone, budget_s=float("inf"))
    progress("tallying issues", 1, 1)
    return {
        **({"streets": streets} if streets > 1 else {}),
        "units": len(district.units),
        "jurisdictions": len(district.jurisdictions),
        "sites": len(district.sites),
        "issues": len(issues),
    }


def _load_units(conn: psycopg.Connection[Any], district: DemoDistrict) -> None:
    # The four functional departments are seeded by migration; refresh their contacts.
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO unit (code, name, name_en, kind, leader, contact)"
            " VALUES (%(code)s, %(name)s, %(name_en)s, %(kind)s, %(leader)s, %(contact)s)"
            " ON CONFLICT (code) DO UPDATE SET name_en = EXCLUDED.name_en,"
            " leader = EXCLUDED.leader, contact = EXCLUDED.contact",
            [{str(k): v for k, v in r.items()} for r in district.units.to_dict("records")],
        )


def _load_jurisdictions(conn: psycopg.Connection[Any], district: DemoDistrict) -> None:
    frame = district.jurisdictions
    order = {"street": 0, "community": 1, "grid": 2}
    frame = frame.iloc[frame["level"].map(order).argsort(kind="stable")]
    rows = [
        {"code": r.code, "name": r.name, "level": r.level, "parent": r.parent,
         "unit": r.unit, "wkb": shapely.to_wkb(r.geometry)}
        for r in frame.itertuples()
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)"
            " VALUES (%(code)s, %(name)s, %(level)s,"
            " (SELECT id FROM jurisdiction WHERE code = %(parent)s),"
            " (SELECT id FROM unit WHERE code = %(unit)s),"
            " ST_Multi(ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326)))",
            rows,
        )


def _load_sites(conn: psycopg.Connection[Any], district: DemoDistrict) -> None:
    rows = [
        {"code": r.code, "name": r.name, "layer": r.layer, "unit": r.unit,
         "buffer_m": float(r.buffer_m), "interval": int(r.inspection_interval_days),
         "attributes": json.dumps(r.attributes, ensure_ascii=False),
         "wkb": shapely.to_wkb(r.geometry)}
        for r in district.sites.itertuples()
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO site (code, name, layer, unit_id, buffer_m, inspection_interval_days,"
            " attributes, geom) VALUES (%(code)s, %(name)s, %(layer)s,"
            " (SELECT id FROM unit WHERE code = %(unit)s), %(buffer_m)s, %(interval)s,"
            " %(attributes)s::jsonb, ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326))",
            rows,
        )


def _epoch_seconds(column: pd.Series) -> pd.Series:
    # Formatting a million tz-aware timestamps as text took 12 s per 100,000 rows in to_csv;
    # epoch seconds as numbers are written at memory speed and converted by to_timestamp().
    return (column - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _copy_issues(conn: psycopg.Connection[Any], issues: pd.DataFrame, progress: Progress
                 ) -> None:
    conn.execute(
        "CREATE TEMP TABLE demo_issue (public_id text, category text, wkb text,"
        " description text, source text, reported_at float8, status text, reporter text,"
        " rework_count int, assigned_at float8, rectified_at float8, closed_at float8,"
        " jurisdiction_id bigint, territorial_unit_id bigint, on_boundary boolean,"
        " outside_all boolean, site_id bigint, via_buffer boolean, functional_unit_id bigint,"
        " lead_unit_id bigint) ON COMMIT DROP"
    )
    times = ["reported_at", "assigned_at", "rectified_at", "closed_at"]
    frame = issues.assign(
        public_id=[f"SW{i:07d}" for i in range(1, len(issues) + 1)],
        wkb=shapely.to_wkb(shapely.points(issues["lon"].to_numpy(), issues["lat"].to_numpy()),
                           hex=True, include_srid=False),
        **{c: _epoch_seconds(issues[c]) for c in times},
    )[_ISSUE_COLUMNS]
    total = len(frame)
    with conn.cursor().copy("COPY demo_issue FROM STDIN (FORMAT csv)") as copy:
        for start in range(0, total, _CHUNK):
            buf = io.StringIO()
            frame.iloc[start:start + _CHUNK].to_csv(buf, header=False, index=False)
            copy.write(buf.getvalue())
            progress("copying issues", min(start + _CHUNK, total), total)
    # The months of the issues and of their trail first (0030), not the default partitions.
    conn.execute("SELECT issue_month_partitions(to_timestamp(min(reported_at)), to_timestamp("
                 "max(greatest(reported_at, assigned_at, rectified_at, closed_at))))"
                 " FROM demo_issue")
    conn.execute(
        "INSERT INTO issue (public_id, category_code, geom, description, source, reported_at,"
        " status, reporter, rework_count, closed_at, deadline, jurisdiction_id,"
        " territorial_unit_id, on_boundary, outside_all, site_id, via_buffer,"
        " functional_unit_id, lead_unit_id, first_rectified_at)"
        " SELECT public_id, category, ST_SetSRID(wkb::geometry, 4326), description, source,"
        " to_timestamp(reported_at), status, reporter, rework_count, to_timestamp(closed_at),"
        " issue_deadline(to_timestamp(reported_at), c.deadline_hours,"
        " c.deadline_working_days),"
        " d.jurisdiction_id, d.territorial_unit_id, d.on_boundary, d.outside_all, d.site_id,"
        " d.via_buffer, d.functional_unit_id, d.lead_unit_id, to_timestamp(d.rectified_at)"
        " FROM demo_issue d JOIN category c ON c.code = d.category"
    )
    conn.execute("SELECT setval('issue_public_seq', greatest(%s, 1))", [total])


def _write_events(conn: psycopg.Connection[Any]) -> None:
    """The audit trail the demo issues would have: one event per stage they reached.

    A verified issue with reworks (返工) gets, between its first rectification and its
    closing, a failed verification and a new rectification per rework.
    """
    conn.execute(
        """
        INSERT INTO issue_event (issue_id, at, actor, actor_role, action, from_status,
                                 to_status, note)
        SELECT i.id, e.at, e.actor, e.role, e.action, e.from_status, e.to_status, e.note
        FROM (SELECT public_id, reporter, status, rework_count,
                     to_timestamp(reported_at) AS reported_at,
                     to_timestamp(assigned_at) AS assigned_at,
                     to_timestamp(rectified_at) AS rectified_at,
                     to_timestamp(closed_at) AS closed_at,
                     CASE WHEN assigned_at IS NULL THEN 'reported' ELSE 'assigned' END
                         AS open_status
              FROM demo_issue) d
        JOIN issue i ON i.public_id = d.public_id
        LEFT JOIN unit lu ON lu.id = i.lead_unit_id
        CROSS JOIN LATERAL (VALUES
            (d.reported_at, coalesce(d.reporter, 'demo'), 'inspector', 'report', NULL,
             'reported', '演示数据 demo data'),
            (d.assigned_at, '创建办', 'admin', 'assign', 'reported', 'assigned', NULL),
            (d.rectified_at, coalesce(lu.name, 'unit'), 'unit', 'rectify', 'assigned',
             'rectified', NULL),
            (CASE WHEN d.status = 'verified' THEN d.closed_at END, '督查指导组', 'supervisor',
             'verify', 'rectified', 'verified', NULL),
            (CASE WHEN d.status = 'rejected' THEN d.closed_at END, '创建办', 'admin',
             'reject', d.open_status, 'rejected', NULL),
            (CASE WHEN d.status = 'duplicate' THEN d.closed_at END, '创建办', 'admin',
             'mark_duplicate', d.open_status, 'duplicate', NULL)
        ) AS e(at, actor, role, action, from_status, to_status, note)
        WHERE e.at IS NOT NULL
        UNION ALL
        SELECT i.id, d.at, e.actor, e.role, e.action, e.from_status, e.to_status, e.note
        FROM (SELECT public_id, rework_count, g,
                     to_timestamp(rectified_at + (closed_at - rectified_at) * g
                                  / (2 * rework_count + 1)) AS at
              FROM demo_issue, generate_series(1, 2 * rework_count) AS g
              WHERE status = 'verified' AND rework_count > 0) d
        JOIN issue i ON i.public_id = d.public_id
        LEFT JOIN unit lu ON lu.id = i.lead_unit_id
        CROSS JOIN LATERAL (VALUES
            (d.g % 2 = 1, '督查指导组', 'supervisor', 'reopen', 'rectified', 'assigned',
             '核查未通过，返工 verification failed: rework'),
            (d.g % 2 = 0, coalesce(lu.name, 'unit'), 'unit', 'rectify', 'assigned',
             'rectified', NULL)
        ) AS e(applies, actor, role, action, from_status, to_status, note)
        WHERE e.applies
        """
    )
