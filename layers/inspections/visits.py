"""Inspection rounds in the field: stops with their checklist, visits, findings as issues.

**Checklist.** A stop's checklist is the active categories of its site's layer (code, names,
points at stake), what an assessor scores at such a place. A layer without categories of its
own (one an admin added) gets the territorial checklist instead, the categories bound to no
layer (city appearance, civilised behaviour): those apply on any ground, so the team never
stands at a stop with nothing to check.

**Findings** become ordinary issues (source ``supervision``), created by
:func:`layers.issues.records.create_many` and therefore assigned, deadlined and audited like
any other;
a link table ties them to the round and, when named, the stop. A finding at a stop also
records the stop as visited: the team was evidently there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import kwargs_row

from geo.assign import Assigner
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.inspections.rounds import PlannedStop, get_round
from layers.issues import records


@dataclass(frozen=True)
class Finding:
    """A problem found on a round; coordinates already in WGS84."""

    category: str
    lon: float
    lat: float
    description: str
    #: The stop it was found at, if any (findings between stops are welcome too).
    seq: int | None = None
    photos: Sequence[str] = field(default_factory=tuple)
    reported_at: datetime | None = None


@dataclass(frozen=True)
class ChecklistItem:
    """A category to check at the stop, with the points at stake."""

    code: str
    name_zh: str
    name_en: str
    points: float


#: Active categories by site layer; key None holds the territorial checklist.
Checklists = dict[str | None, list[ChecklistItem]]


@dataclass(frozen=True)
class Stop:
    """A stop as the team walks it: the site, why it was drawn, what to check, what was
    found (issue public ids); ``lon``/``lat`` in WGS84."""

    seq: int
    site_code: str | None
    site_name: str | None
    layer: str
    community: str | None
    community_name: str | None
    lon: float
    lat: float
    risk: float
    reason: dict[str, Any]
    visited_at: datetime | None
    visited_by: str | None
    findings: list[str]
    checklist: list[ChecklistItem]


def checklists(conn: psycopg.Connection[Any]) -> Checklists:
    """Active categories by site layer; key None holds the territorial checklist."""
    by_layer: Checklists = {None: []}
    with conn.cursor(row_factory=kwargs_row(_layer_item)) as cur:
        for layer, item in cur.execute("SELECT code, name_zh, name_en, points::float8 AS points,"
                                       " site_layer FROM category WHERE active ORDER BY code"):
            by_layer.setdefault(layer, []).append(item)
    return by_layer


def _layer_item(site_layer: str | None, **item: Any) -> tuple[str | None, ChecklistItem]:
    return site_layer, ChecklistItem(**item)


def checklist_for(lists: Checklists, layer: str) -> list[ChecklistItem]:
    """The layer's own checklist, or the territorial one for a layer without categories."""
    return lists.get(layer) or lists[None]


def proposed(stops: Sequence[PlannedStop], lists: Checklists) -> list[Stop]:
    """A proposal's stops as the team would walk them: not visited, nothing found yet."""
    return [Stop(seq=s.seq, site_code=s.site_code, site_name=s.site_name, layer=s.layer,
                 community=s.community, community_name=s.community_name, lon=s.lon,
                 lat=s.lat, risk=s.risk, reason=s.reason, visited_at=None, visited_by=None,
                 findings=[], checklist=checklist_for(lists, s.layer)) for s in stops]


def stops(conn: psycopg.Connection[Any], round_id: int) -> list[Stop]:
    """The round's stops in walking order, with site, community, checklist and findings."""
    get_round(conn, round_id)
    lists = checklists(conn)

    def stop(**row: Any) -> Stop:
        return Stop(**row, checklist=checklist_for(lists, row["layer"]))

    with conn.cursor(row_factory=kwargs_row(stop)) as cur:
        return cur.execute("""
            SELECT st.seq, s.code AS site_code, s.name AS site_name, st.layer,
                   j.code AS community, j.name AS community_name,
                   ST_X(st.geom) AS lon, ST_Y(st.geom) AS lat, st.risk, st.reason,
                   st.visited_at, st.visited_by,
                   coalesce((SELECT array_agg(i.public_id ORDER BY i.id)
                             FROM inspection_finding f JOIN issue i ON i.id = f.issue_id
                             WHERE f.round_id = st.round_id AND f.seq = st.seq),
                            '{}') AS findings
            FROM inspection_stop st
            LEFT JOIN site s ON s.id = st.site_id
            LEFT JOIN jurisdiction j ON j.id = st.community_id
            WHERE st.round_id = %s ORDER BY st.seq""", [round_id]).fetchall()


def visit(conn: psycopg.Connection[Any], round_id: int, seq: int, *, actor: str) -> Stop:
    """Record that the team was at stop ``seq``; Conflict if it was already recorded."""
    with conn.transaction():
        get_round(conn, round_id)
        row = conn.execute(
            "SELECT visited_at, visited_by FROM inspection_stop"
            " WHERE round_id = %s AND seq = %s FOR UPDATE", [round_id, seq]).fetchone()
        if row is None:
            raise NotFound(f"round {round_id} has no stop {seq}")
        if row[0] is not None:
            raise Conflict(f"stop {seq} was already visited", details={
                "visited_at": row[0].isoformat(), "visited_by": row[1]})
        _mark_visited(conn, round_id, [seq], actor)
    return next(s for s in stops(conn, round_id) if s.seq == seq)


def _mark_visited(conn: psycopg.Connection[Any], round_id: int, seqs: Sequence[int],
                  actor: str) -> None:
    """Stops not yet visited become visited now; the round's status follows its stops."""
    conn.execute("UPDATE inspection_stop SET visited_at = now(), visited_by = %s"
                 " WHERE round_id = %s AND seq = ANY(%s) AND visited_at IS NULL",
                 [actor, round_id, list(seqs)])
    conn.execute("""
        UPDATE inspection_round r SET status = CASE
            WHEN NOT EXISTS (SELECT 1 FROM inspection_stop s
                             WHERE s.round_id = r.id AND s.visited_at IS NULL) THEN 'done'
            WHEN EXISTS (SELECT 1 FROM inspection_stop s
                         WHERE s.round_id = r.id AND s.visited_at IS NOT NULL)
                THEN 'in_progress'
            ELSE 'planned' END
        WHERE r.id = %s""", [round_id])


def record_findings(conn: psycopg.Connection[Any], assigner: Assigner, round_id: int,
                    findings: Sequence[Finding], *, actor: str, actor_role: str
                    ) -> list[str]:
    """Store findings as issues linked to the round, all or nothing; their public ids.

    ValidationFailed lists every bad finding by position (unknown stop, or anything
    :func:`layers.issues.records.create_many` refuses) and nothing is written.
    """
    if not findings:
        raise ValidationFailed("no findings given", details=[{"field": "findings",
                                                               "message": "give at least one"}])
    with conn.transaction():
        get_round(conn, round_id)
        known = {int(r[0]) for r in conn.execute(
            "SELECT seq FROM inspection_stop WHERE round_id = %s", [round_id])}
        bad_stops: list[dict[str, Any]] = [
            {"index": i, "field": "seq", "message": f"the round has no stop {f.seq}"}
            for i, f in enumerate(findings) if f.seq is not None and f.seq not in known]
        new = [records.NewIssue(category=f.category, lon=f.lon, lat=f.lat,
                               description=f.description, source="supervision",
                               reported_at=f.reported_at, photos=tuple(f.photos),
                               reporter=actor) for f in findings]
        try:
            prepared = records.prepare(assigner, new)
        except ValidationFailed as exc:
            details = exc.details if isinstance(exc.details, list) else []
            raise ValidationFailed("some findings are not valid; nothing was stored",
                                   details=sorted(bad_stops + details,
                                                  key=lambda d: d["index"])) from None
        if bad_stops:
            raise ValidationFailed("some findings are not valid; nothing was stored",
                                   details=bad_stops)
        public_ids = records.store(conn, *prepared, actor=actor, actor_role=actor_role)
        seqs = [f.seq for f in findings]
        conn.execute("""
            INSERT INTO inspection_finding (round_id, issue_id, seq)
            SELECT %s, i.id, t.seq FROM unnest(%s::text[], %s::int[]) AS t(public_id, seq)
            JOIN issue i ON i.public_id = t.public_id""", [round_id, public_ids, seqs])
        at_stops = sorted({s for s in seqs if s is not None})
        if at_stops:
            _mark_visited(conn, round_id, at_stops, actor)
    return public_ids
