"""Issues: create them already assigned (one statement for one or many), read and list them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from geo.assign import NONE, Assigner
from layers.assignment import DEFAULT_TOLERANCE_M
from layers.auth import roles
from layers.db import partitions
from layers.errors import Forbidden, NotFound, ValidationFailed
from layers.text import quoted
from layers.vocab import SOURCES, Source, Status

# Points farther than this outside the district's extent are refused as wrong coordinates
# (swapped lon/lat, a GCJ-02 fix declared as WGS84 in another city); nearer ones are kept in
# the unassigned queue if no polygon takes them.
SERVICE_MARGIN_M = 2000.0
# Sources that say the supervision group or the national assessors found a problem weigh in
# scores and accountability (points lost, 问责), so a single report claims them only with the
# permission report_as_supervision (layers.auth.roles). (Findings of an inspection round are
# stored as supervision by layers.inspections.visits: the round itself is the supervision
# group's.)
SUPERVISION_SOURCES = ("supervision", "external_assessment")
# A report's own reported_at may lie this long before its arrival (a phone that queued it
# in a basement without signal) or after it (a phone's clock running ahead), no more: one
# backdated into May would be overdue on arrival and cost its unit points, one dated 2999
# would never fall due. Imports of old records keep their own rules (layers.io.imports).
REPORT_MAX_DELAY = timedelta(hours=48)
REPORT_MAX_AHEAD = timedelta(minutes=10)


@dataclass(frozen=True)
class NewIssue:
    """A problem as reported, coordinates already in WGS84."""

    category: str
    lon: float
    lat: float
    description: str
    source: str = "self_inspection"
    reported_at: datetime | None = None
    photos: Sequence[str] = field(default_factory=tuple)
    reporter: str | None = None
    reporter_contact: str | None = None


def check_report(new: NewIssue, role: str, received: datetime) -> None:
    """Refuse what a single report may not claim: a source above the caller's role (403), a
    ``reported_at`` outside ``received`` - 48 h ... ``received`` + 10 min (422)."""
    if new.source in SUPERVISION_SOURCES and not roles.allows(role, "report_as_supervision"):
        allowed = roles.holders("report_as_supervision")
        raise Forbidden(f"来源只能由督查组或创建办填写 / source {new.source!r} may be set by "
                        f"{' or '.join(allowed)} only; a report of role {role!r} is "
                        "self_inspection or citizen")
    check_reported_at(new.reported_at, received)


def check_reported_at(at: datetime | None, received: datetime, field_name: str = "reported_at"
                      ) -> None:
    """ValidationFailed unless ``at`` (None: now) lies within the reporting window."""
    if at is not None and not received - REPORT_MAX_DELAY <= at <= received + REPORT_MAX_AHEAD:
        hours = REPORT_MAX_DELAY.total_seconds() / 3600
        minutes = REPORT_MAX_AHEAD.total_seconds() / 60
        message = (f"发现时间须在{hours:g}小时前至{minutes:g}分钟后之间，更早的记录请导入 / "
                   f"reported_at must lie within {hours:g} hours before now and {minutes:g} "
                   "minutes after it; older records go through an import")
        raise ValidationFailed(message, details=[{"field": field_name, "message": message}])


def create_many(
    conn: psycopg.Connection[Any],
    assigner: Assigner,
    issues: Sequence[NewIssue],
    *,
    actor: str,
    actor_role: str,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> list[str]:
    """Validate, assign and store issues with their 'report' (and 'assign') events.

    All or nothing: any invalid issue raises ValidationFailed listing every bad one (by
    position) and nothing is written. Returns the public ids in input order.
    """
    if not issues:
        return []
    return store(conn, *prepare(assigner, issues, tolerance_m=tolerance_m), actor=actor,
                 actor_role=actor_role)


def prepare(assigner: Assigner, issues: Sequence[NewIssue], *,
            tolerance_m: float = DEFAULT_TOLERANCE_M
            ) -> tuple[Sequence[NewIssue], pd.DataFrame]:
    """Validate and assign in process (no database); ValidationFailed lists every problem."""
    errors = _validate(issues, assigner)
    if errors:
        raise ValidationFailed("some issues are not valid; nothing was stored", details=errors)
    result = assigner.assign(np.array([i.lon for i in issues], np.float64),
                             np.array([i.lat for i in issues], np.float64),
                             np.array([i.category for i in issues], dtype=object),
                             tolerance_m=tolerance_m)
    return issues, result


def store(conn: psycopg.Connection[Any], issues: Sequence[NewIssue], result: pd.DataFrame, *,
          actor: str, actor_role: str) -> list[str]:
    """Insert prepared issues and their events in one statement; public ids in order."""
    rows = conn.execute(_INSERT, _insert_params(issues, result, actor, actor_role)).fetchall()
    return [str(r[0]) for r in rows]


def _validate(issues: Sequence[NewIssue], assigner: Assigner) -> list[dict[str, Any]]:
    """Every problem of every issue, by position; the engine knows the catalog and area."""
    errors: list[dict[str, Any]] = []

    def bad(i: int, field_name: str, message: str) -> None:
        errors.append({"index": i, "field": field_name, "message": message})

    for i, row in enumerate(issues):
        if row.category not in assigner.active_categories:
            bad(i, "category", f"unknown or inactive category {quoted(row.category)}")
        if not (np.isfinite(row.lon) and -180 <= row.lon <= 180):
            bad(i, "lon", "longitude must be a number between -180 and 180")
        if not (np.isfinite(row.lat) and -90 <= row.lat <= 90):
            bad(i, "lat", "latitude must be a number between -90 and 90")
        if not isinstance(row.description, str) or not 1 <= len(row.description.strip()) <= 4000:
            bad(i, "description", "description must be 1 to 4000 characters")
        if row.source not in SOURCES:
            bad(i, "source", f"source must be one of {', '.join(SOURCES)}")
    in_range = [e["index"] for e in errors if e["field"] in ("lon", "lat")]
    ok = np.setdiff1d(np.arange(len(issues)), in_range)
    lon = np.array([i.lon for i in issues], np.float64)
    lat = np.array([i.lat for i in issues], np.float64)
    outside = assigner.outside_service_area(lon[ok], lat[ok], SERVICE_MARGIN_M)
    for position in np.flatnonzero(outside).tolist():
        bad(int(ok[position]), "location", "the point is outside the district's service area")
    return errors


def _insert_params(issues: Sequence[NewIssue], result: pd.DataFrame, actor: str,
                   actor_role: str) -> dict[str, Any]:
    # Plain lists from the engine's arrays: pandas conversions here cost 14 ms a request.
    def ids(column: str) -> list[int | None]:
        return [None if v == NONE else v for v in result[column].to_numpy().tolist()]

    def flags(column: str) -> list[bool]:
        return [bool(v) for v in result[column].to_numpy().tolist()]

    return {
        "category": [i.category for i in issues],
        "lon": [float(i.lon) for i in issues],
        "lat": [float(i.lat) for i in issues],
        "description": [i.description.strip() for i in issues],
        "source": [i.source for i in issues],
        "reported_at": [i.reported_at for i in issues],
        "photos": [json.dumps(list(i.photos), ensure_ascii=False) for i in issues],
        "reporter": [i.reporter for i in issues],
        "reporter_contact": [i.reporter_contact for i in issues],
        "jurisdiction_id": ids("jurisdiction_id"),
        "territorial_unit_id": ids("territorial_unit_id"),
        "functional_unit_id": ids("functional_unit_id"),
        "lead_unit_id": ids("lead_unit_id"),
        "site_id": ids("site_id"),
        "on_boundary": flags("on_boundary"),
        "outside_all": flags("outside_all"),
        "via_buffer": flags("via_buffer"),
        "actor": actor,
        "actor_role": actor_role,
    }


# One statement for one issue or thousands: arrays in, rows and their events out, in order.
_INSERT = """
WITH input AS (
    SELECT * FROM unnest(
        %(category)s::text[], %(lon)s::float8[], %(lat)s::float8[], %(description)s::text[],
        %(source)s::text[], %(reported_at)s::timestamptz[], %(photos)s::jsonb[],
        %(reporter)s::text[], %(reporter_contact)s::text[], %(jurisdiction_id)s::bigint[],
        %(territorial_unit_id)s::bigint[], %(functional_unit_id)s::bigint[],
        %(lead_unit_id)s::bigint[], %(site_id)s::bigint[], %(on_boundary)s::boolean[],
        %(outside_all)s::boolean[], %(via_buffer)s::boolean[]
    ) WITH ORDINALITY AS t(category, lon, lat, description, source, reported_at, photos,
                           reporter, reporter_contact, jurisdiction_id, territorial_unit_id,
                           functional_unit_id, lead_unit_id, site_id, on_boundary,
                           outside_all, via_buffer, n)
), inserted AS (
    INSERT INTO issue (category_code, geom, description, source, reported_at, photos,
                       reporter, reporter_contact, status, deadline, jurisdiction_id,
                       territorial_unit_id, functional_unit_id, lead_unit_id, site_id,
                       on_boundary, outside_all, via_buffer)
    SELECT i.category, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), i.description, i.source,
           coalesce(i.reported_at, now()), i.photos, i.reporter, i.reporter_contact,
           CASE WHEN i.lead_unit_id IS NULL THEN 'reported' ELSE 'assigned' END,
           issue_deadline(coalesce(i.reported_at, now()), c.deadline_hours,
                          c.deadline_working_days),
           i.jurisdiction_id, i.territorial_unit_id, i.functional_unit_id, i.lead_unit_id,
           i.site_id, i.on_boundary, i.outside_all, i.via_buffer
    FROM input i JOIN category c ON c.code = i.category
    ORDER BY i.n
    RETURNING id, public_id, status, reported_at, jurisdiction_id, territorial_unit_id,
              functional_unit_id, lead_unit_id, site_id, on_boundary, outside_all, via_buffer
), numbered AS (
    SELECT *, row_number() OVER (ORDER BY id) AS n FROM inserted
), events AS (
    INSERT INTO issue_event (issue_id, at, actor, actor_role, action, from_status, to_status,
                             data)
    SELECT id, reported_at, %(actor)s, %(actor_role)s, 'report', NULL, 'reported', '{}'
    FROM numbered
    UNION ALL
    SELECT id, now(), 'sitewatch', 'system', 'assign', 'reported', 'assigned',
           jsonb_build_object('jurisdiction_id', jurisdiction_id,
                              'territorial_unit_id', territorial_unit_id,
                              'functional_unit_id', functional_unit_id,
                              'lead_unit_id', lead_unit_id, 'site_id', site_id,
                              'on_boundary', on_boundary, 'outside_all', outside_all,
                              'via_buffer', via_buffer)
    FROM numbered WHERE status = 'assigned'
)
SELECT public_id FROM numbered ORDER BY n
"""


# Every read of issues (one, lists, supervision orders) selects the same columns.
ISSUE_SELECT = sql.SQL("""
SELECT i.id, i.public_id, i.category_code AS category, c.name_zh AS category_zh,
       c.name_en AS category_en, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.description,
       i.photos, i.source, i.reported_at, i.status, i.deadline, i.closed_at,
       issue_is_overdue(i.status, i.deadline, now()) AS overdue,
       issue_traffic_light(i.status, i.reported_at, i.deadline) AS traffic_light,
       j.code AS jurisdiction, j.name AS jurisdiction_name,
       tu.code AS territorial_unit, fu.code AS functional_unit, lu.code AS lead_unit,
       lu.name AS lead_unit_name, s.code AS site, s.name AS site_name,
       i.on_boundary, i.outside_all, i.via_buffer, i.rework_count, i.version, i.updated_at,
       st.code AS street, i.on_street_border
FROM issue i JOIN category c ON c.code = i.category_code
LEFT JOIN jurisdiction j ON j.id = i.jurisdiction_id
LEFT JOIN jurisdiction st ON st.id = i.street_id
LEFT JOIN unit tu ON tu.id = i.territorial_unit_id
LEFT JOIN unit fu ON fu.id = i.functional_unit_id
LEFT JOIN unit lu ON lu.id = i.lead_unit_id
LEFT JOIN site s ON s.id = i.site_id
""")


#: issue_traffic_light (migration 0007): green before 80 % of the time allowed, yellow up to
#: the deadline, red after; None when closed.
TrafficLight = Literal["green", "yellow", "red"]


@dataclass(frozen=True)
class Issue:
    """An issue as every read gives it (``ISSUE_SELECT``): its ground, site and units by code
    and name, overdue and the traffic light derived now."""

    id: int  # internal; the public id is the one outside
    public_id: str
    category: str
    category_zh: str
    category_en: str
    lon: float
    lat: float
    description: str
    photos: list[str]
    source: Source
    reported_at: datetime
    status: Status
    deadline: datetime | None
    closed_at: datetime | None
    overdue: bool
    traffic_light: TrafficLight | None
    jurisdiction: str | None
    jurisdiction_name: str | None
    territorial_unit: str | None
    functional_unit: str | None
    lead_unit: str | None
    lead_unit_name: str | None
    site: str | None
    site_name: str | None
    on_boundary: bool
    outside_all: bool
    via_buffer: bool
    rework_count: int
    version: int
    updated_at: datetime
    # The street (街道) of the issue's ground, and whether it lies on a border between two
    # streets (migration 0032): the district office settles those.
    street: str | None = None
    on_street_border: bool = False
    # Personal data is never read with the issue: a caller who may see it gets it added
    # (layers.auth.access.personal_data), so no other read can pass it on by mistake.
    reporter: str | None = None
    reporter_contact: str | None = None

    @property
    def units(self) -> tuple[str | None, str | None, str | None]:
        """The codes of the units that answer for the issue: lead, territorial, functional."""
        return self.lead_unit, self.territorial_unit, self.functional_unit


def get(conn: psycopg.Connection[Any], public_id: str) -> Issue:
    """One issue by public id, with names of its ground, site and units."""
    with conn.cursor(row_factory=class_row(Issue)) as cur:
        row = cur.execute(ISSUE_SELECT + sql.SQL(" WHERE ") + partitions.ISSUE_BY_PUBLIC_ID,
                          [public_id]).fetchone()
    if row is None:
        raise NotFound(f"no issue {quoted(public_id)}")
    return row


@dataclass(frozen=True)
class IssueFilter:
    """Filters of ``GET /api/v1/issues``; None means "any"."""

    bbox: tuple[float, float, float, float] | None = None
    ids: Sequence[str] = ()  # public ids
    status: Sequence[str] = ()
    category: Sequence[str] = ()
    unit: str | None = None
    jurisdiction: str | None = None
    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    overdue: bool | None = None
    limit: int = 100
    offset: int = 0


def list_issues(conn: psycopg.Connection[Any], f: IssueFilter) -> tuple[list[Issue], int]:
    """Issues matching ``f`` (newest first, paged) and the total number matching."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if f.bbox is not None:
        clauses.append(sql.SQL("i.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"))
        params.extend(f.bbox)
    if f.ids:
        clauses.append(sql.SQL("i.public_id = ANY(%s)"))
        params.append(list(f.ids))
    if f.status:
        clauses.append(sql.SQL("i.status = ANY(%s)"))
        params.append(list(f.status))
    if f.category:
        clauses.append(sql.SQL("i.category_code = ANY(%s)"))
        params.append(list(f.category))
    if f.unit:
        clauses.append(sql.SQL("(lu.code = %s OR tu.code = %s OR fu.code = %s)"))
        params.extend([f.unit] * 3)
    if f.jurisdiction:
        # A community's code also finds the issues in its grids.
        clauses.append(sql.SQL(
            "ST_Covers((SELECT geom FROM jurisdiction WHERE code = %s), i.geom)"))
        params.append(f.jurisdiction)
    if f.site:
        clauses.append(sql.SQL("s.code = %s"))
        params.append(f.site)
    if f.since:
        clauses.append(sql.SQL("i.reported_at >= %s"))
        params.append(f.since)
    if f.until:
        clauses.append(sql.SQL("i.reported_at < %s"))
        params.append(f.until)
    if f.overdue is not None:
        clauses.append(sql.SQL("issue_is_overdue(i.status, i.deadline, now()) = %s"))
        params.append(f.overdue)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    with conn.cursor(row_factory=class_row(Issue)) as cur:
        rows = cur.execute(
            ISSUE_SELECT + where + sql.SQL(" ORDER BY i.reported_at DESC, i.id DESC"
                                            " LIMIT %s OFFSET %s"),
            [*params, f.limit, f.offset]).fetchall()
    # The total from the issue table alone unless a filter names a joined table (unit, site):
    # every issue has its category, so the count is the same, and a period alone (under a
    # street's policy too: index (street_id, reported_at)) is counted from the index, not
    # from every heap page of the period, which a street's issues share with the other
    # streets' (EXPLAIN ANALYZE, one street of ten at 30,000 issues each: 175 ms against 7 ms).
    counted = ISSUE_SELECT if f.unit or f.site else sql.SQL("SELECT 1 FROM issue i")
    total = conn.execute(
        sql.SQL("SELECT count(*) FROM ({}) q").format(counted + where), params).fetchone()
    return rows, int(total[0]) if total else 0


@dataclass(frozen=True)
class NearbyIssue:
    """An open issue of the same category close to another: perhaps the same problem."""

    public_id: str
    status: Status
    reported_at: datetime
    distance_m: float  # to a decimetre


def nearby_open(conn: psycopg.Connection[Any], public_id: str, radius_m: float = 50.0
                ) -> list[NearbyIssue]:
    """Open issues of the same category within ``radius_m`` of this one (duplicate hints)."""
    with conn.cursor(row_factory=class_row(NearbyIssue)) as cur:
        return cur.execute("""
            SELECT o.public_id, o.status, o.reported_at,
                   round(ST_Distance(o.geom::geography, i.geom::geography)::numeric, 1)::float8
                       AS distance_m
            FROM issue i JOIN issue o ON o.category_code = i.category_code AND o.id <> i.id
            WHERE i.public_id = %s AND issue_is_open(o.status)
              -- degree prefilter for the index: radius/55000 covers longitude below 60°
              AND ST_DWithin(o.geom, i.geom, %s / 55000.0)
              AND ST_DWithin(o.geom::geography, i.geom::geography, %s)
            ORDER BY distance_m, o.id LIMIT 10""", [public_id, radius_m, radius_m]).fetchall()


@dataclass(frozen=True)
class IssueEvent:
    """One entry of an issue's append-only audit trail."""

    at: datetime
    actor: str
    actor_role: str | None
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    evidence: list[Any]
    data: dict[str, Any]


#: The order of an audit trail (view ``issue_trail``, migration 0022): by time; at the same
#: instant events before revision changes, each in the order written.
TRAIL_ORDER = sql.SQL("at, revision_id NULLS FIRST, event_id, revision_id")


def events(conn: psycopg.Connection[Any], public_id: str) -> list[IssueEvent]:
    """The audit trail of one issue, oldest first: its events and, each as a 'reassign'
    event naming its revision, the revision changes that moved it."""
    # Through the issue, not issue_key alone: a street-scoped caller finds only its street's
    # issues (the policies of migration 0032 are on issue).
    row = conn.execute(sql.SQL("SELECT i.id FROM issue i WHERE {}").format(
        partitions.ISSUE_BY_PUBLIC_ID), [public_id]).fetchone()
    if row is None:
        raise NotFound(f"no issue {quoted(public_id)}")
    with conn.cursor(row_factory=class_row(IssueEvent)) as cur:
        return cur.execute(sql.SQL("""
            SELECT at, actor, actor_role, action, from_status, to_status, note, evidence, data
            FROM issue_trail WHERE issue_id = %s ORDER BY {}""").format(TRAIL_ORDER),
                           [row[0]]).fetchall()
