"""Bulk and incremental reassignment: same answers as the engine, audited, closed kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from layers.assignment import load_assigner, reassign
from layers.catalog import jurisdictions
from layers.issues import records
from layers.vocab import OPEN_STATUSES
from tests import small_district

STORED = """
    SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, category_code, status,
           coalesce(jurisdiction_id, -1), coalesce(territorial_unit_id, -1), on_boundary,
           outside_all, coalesce(site_id, -1), via_buffer, coalesce(functional_unit_id, -1),
           coalesce(lead_unit_id, -1)
    FROM issue ORDER BY id
"""


def _move_piece_between_grids(conn: psycopg.Connection[Any]) -> bytes:
    """Give a 150 m strip of one grid to its neighbour; return the strip (EPSG:4326 WKB)."""
    pair = conn.execute("""
        SELECT a.id, b.id FROM jurisdiction a JOIN jurisdiction b
          ON a.parent_id = b.parent_id AND a.id < b.id
        WHERE a.level = 'grid' AND b.level = 'grid'
          AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 300
        ORDER BY a.id, b.id LIMIT 1""").fetchone()
    assert pair is not None
    piece = conn.execute("""
        SELECT ST_AsBinary(ST_CollectionExtract(ST_Intersection(a.geom,
                   ST_Buffer(b.geom::geography, 150)::geometry), 3))
        FROM jurisdiction a, jurisdiction b WHERE a.id = %s AND b.id = %s""", pair).fetchone()
    assert piece is not None
    conn.execute("""
        UPDATE jurisdiction SET geom = ST_Multi(ST_CollectionExtract(CASE
            WHEN id = %(a)s THEN ST_Difference(geom, ST_GeomFromWKB(%(piece)s, 4326))
            ELSE ST_Union(geom, ST_GeomFromWKB(%(piece)s, 4326)) END, 3))
        WHERE id IN (%(a)s, %(b)s)""", {"a": pair[0], "b": pair[1], "piece": piece[0]})
    return bytes(piece[0])


def test_full_reassignment_of_unchanged_layers_changes_nothing(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        counts = reassign(conn, load_assigner(conn), actor="test")
        events = conn.execute(
            "SELECT count(*) FROM issue_trail WHERE action = 'reassign'").fetchone()
        stored = conn.execute("SELECT count(*) FROM revision").fetchone()
    assert counts["examined"] > 0
    assert counts["changed"] == 0 and "revision" not in counts
    assert events == (0,) and stored == (0,)


def test_incremental_after_a_boundary_edit_matches_full_and_single(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        before = conn.execute(STORED).fetchall()
        region = _move_piece_between_grids(conn)
        assigner = load_assigner(conn)
        incremental = reassign(conn, assigner, actor="test", region_wkb=region)
        after_full = reassign(conn, assigner, actor="test")
        after = conn.execute(STORED).fetchall()
        # Each change shows in the trail as an event naming what changed, old and new:
        # {"jurisdiction_id": [12, 13], ..., "revision": 1}.
        reassign_events = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE data - 'revision' <> '{}' AND (SELECT"
            "   bool_and(jsonb_typeof(v) = 'array' AND jsonb_array_length(v) = 2"
            "            AND v -> 0 <> v -> 1)"
            "   FROM jsonb_each(data - 'revision') AS x(k, v)) AND data ? 'revision')"
            " FROM issue_trail WHERE action = 'reassign'").fetchone()
    assert incremental["changed"] > 0
    assert incremental["examined"] < len(before) / 5  # only the strip was looked at
    assert after_full["changed"] == 0  # the incremental pass left nothing for the full one
    assert reassign_events == (incremental["changed"], incremental["changed"])

    # Every open issue now holds exactly what the engine answers for its point.
    open_rows = [r for r in after if r[4] in OPEN_STATUSES]
    expected = assigner.assign(np.array([r[1] for r in open_rows]),
                               np.array([r[2] for r in open_rows]),
                               np.array([r[3] for r in open_rows], dtype=object))
    assert [tuple(r[5:]) for r in open_rows] == [
        tuple(x) for x in expected.itertuples(index=False)]

    # Closed issues keep the unit they were judged under.
    closed_before = {r[0]: r[5:] for r in before if r[4] not in OPEN_STATUSES}
    closed_after = {r[0]: r[5:] for r in after if r[4] not in OPEN_STATUSES}
    assert closed_before == closed_after


def test_closed_issue_in_the_moved_strip_is_not_reassigned(demo_dsn: str) -> None:
    status = "verified"
    with psycopg.connect(demo_dsn) as conn:
        region = _move_piece_between_grids(conn)
        row = conn.execute(
            "SELECT id, jurisdiction_id FROM issue WHERE status = %s"
            " AND ST_Intersects(geom, ST_GeomFromWKB(%s, 4326)) LIMIT 1",
            [status, region]).fetchone()
        assert row is not None  # the demo has closed issues everywhere
        reassign(conn, load_assigner(conn), actor="test", region_wkb=region)
        kept = conn.execute("SELECT jurisdiction_id FROM issue WHERE id = %s",
                            [row[0]]).fetchone()
        untouched = conn.execute(
            "SELECT count(*) FROM revision_change c JOIN issue i ON i.id = c.issue_id"
            " WHERE i.status = %s", [status]).fetchone()
    assert kept == (row[1],)
    assert untouched == (0,)


def test_a_strip_narrower_than_the_tolerance_moves_its_issues(dsn: str) -> None:
    """The border between two communities moves 47 m east: the issue 28 m east of it now lies
    in the west community. It is within the tolerance (50 m) of both communities' old and new
    shapes, so only the difference of the shapes themselves, not of their buffers, finds it."""
    with psycopg.connect(dsn) as conn:
        small_district.build(conn)
        [near] = records.store(conn, *records.prepare(load_assigner(conn), [records.NewIssue(
            category="CMP-03", lon=small_district.MIDDLE + 0.0003, lat=31.305,
            description="乱堆乱放 靠近边界")]), actor="巡查员", actor_role="inspector")
        moved = small_district.MIDDLE + 0.0005
        jurisdictions.update(conn, "CW", {"geometry": small_district.box(
            small_district.WEST, moved)}, actor="创建办")
        jurisdictions.update(conn, "CE", {"geometry": small_district.box(
            moved, small_district.EAST)}, actor="创建办")
        row = conn.execute("SELECT j.code, u.code FROM issue i JOIN jurisdiction j ON"
                           " j.id = i.jurisdiction_id JOIN unit u ON u.id = i.lead_unit_id"
                           " WHERE i.public_id = %s", [near]).fetchone()
        assert row == ("CW", "W")
        # And a full pass afterwards has nothing left to do.
        assert reassign(conn, load_assigner(conn), actor="test")["changed"] == 0
