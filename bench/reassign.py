"""Assignment at scale: full and incremental reassignment against plain PostGIS, and the
database time of assigning one new issue.

The data set is the demo district with a million issues and its communities split into
~2,000 grids. The baseline is the statement a PostGIS user would write:
``UPDATE issue SET jurisdiction_id = j.id FROM jurisdiction j WHERE ST_Intersects(...)``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from bench.harness import (
    Results,
    Row,
    fresh_database,
    percentile,
    run_alone,
    timed,
)
from layers.assignment import AssignerCache, load_assigner, reassign
from layers.catalog import jurisdictions
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.io import demo
from layers.issues import records

NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
BASELINE_SQL = """
    UPDATE issue i SET jurisdiction_id = j.id FROM jurisdiction j
    WHERE j.level = 'grid' AND ST_Intersects(j.geom, i.geom)
"""
ROTATE_GRIDS = """
    -- A new jurisdiction set: every grid takes its next sibling's polygon, so every issue's
    -- grid changes.
    UPDATE jurisdiction j SET geom = n.geom FROM (
        SELECT id, coalesce(lead(geom) OVER w, first_value(geom) OVER w) AS geom
        FROM jurisdiction WHERE level = 'grid'
        WINDOW w AS (PARTITION BY parent_id ORDER BY code
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) n
    WHERE n.id = j.id
"""


def _baseline(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        seconds, _ = timed(lambda: conn.execute(BASELINE_SQL))
        conn.rollback()
    _vacuum(dsn)
    return seconds


def _vacuum(dsn: str) -> None:
    # Rolled-back million-row updates leave dead tuples that would slow the next run.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE issue")


def _full(dsn: str, *, rotate: bool) -> tuple[float, dict[str, int], bool]:
    """Full reassignment of every issue; whether the result equals the engine's answer."""
    with psycopg.connect(dsn) as conn:
        if rotate:
            conn.execute(ROTATE_GRIDS)
        seconds, counts = timed(lambda: reassign(conn, load_assigner(conn), actor="bench",
                                                 include_closed=True))
        agrees = _stored_equals_engine(conn)
        conn.rollback()
    _vacuum(dsn)
    return seconds, counts, agrees


def _stored_equals_engine(conn: psycopg.Connection[Any], sample: int = 2000) -> bool:
    """Stored answers equal a fresh engine's, in bulk for all and one by one for a sample."""
    rows = conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), category_code,"
        " coalesce(jurisdiction_id, -1), coalesce(territorial_unit_id, -1), on_boundary,"
        " outside_all, coalesce(site_id, -1), via_buffer, coalesce(functional_unit_id, -1),"
        " coalesce(lead_unit_id, -1) FROM issue ORDER BY id").fetchall()
    lon = np.array([r[0] for r in rows])
    lat = np.array([r[1] for r in rows])
    cat = np.array([r[2] for r in rows], dtype=object)
    stored = [tuple(r[3:]) for r in rows]
    assigner = load_assigner(conn)
    bulk = [tuple(x) for x in assigner.assign(lon, lat, cat).itertuples(index=False)]
    picks = np.random.default_rng(1).choice(len(rows), min(sample, len(rows)), replace=False)
    single = all(
        tuple(assigner.assign(lon[i:i + 1], lat[i:i + 1], cat[i:i + 1]).iloc[0]) == stored[i]
        for i in picks)
    return bulk == stored and single


def _incremental(dsn: str) -> tuple[float, int, bool]:
    """Move a community border: a 25 m strip passes from a grid of one community to the
    neighbouring grid of another (grids are about 80 m across), through the normal edit path
    (both grids edited).

    Issues are assigned to grids, the finest level, so moving a community's own outline
    while its grids stay where they were moves no issue (this scenario did that until
    2026-11-30, and reported 0 issues reassigned in every run).
    """
    with psycopg.connect(dsn) as conn:
        a, b, new_a, new_b = conn.execute("""
            SELECT a.code, b.code,
                   ST_AsGeoJSON(ST_Multi(ST_CollectionExtract(ST_MakeValid(
                       ST_Difference(a.geom, s)), 3)), 15)::json,
                   ST_AsGeoJSON(ST_Multi(ST_CollectionExtract(ST_MakeValid(
                       ST_Union(b.geom, s)), 3)), 15)::json
            FROM jurisdiction a JOIN jurisdiction b
              ON a.parent_id <> b.parent_id AND a.id < b.id
             AND ST_DWithin(a.geom, b.geom, 1e-6)
            CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(a.geom,
                ST_Buffer(b.geom::geography, 25)::geometry), 3) AS s) strip
            WHERE a.level = 'grid' AND b.level = 'grid'
              AND ST_Area(s::geography) BETWEEN 0.1 * ST_Area(a.geom::geography)
                                            AND 0.9 * ST_Area(a.geom::geography)
              -- a strip that holds open issues, so that the edit moves some
              AND EXISTS (SELECT 1 FROM issue i WHERE issue_is_open(i.status)
                          AND i.jurisdiction_id = a.id AND ST_Intersects(i.geom, s))
            ORDER BY a.id, b.id LIMIT 1""").fetchone() or (None, None, None, None)
        assert a is not None, "no two neighbouring grids of different communities"

        def edit() -> int:
            before = conn.execute("SELECT count(*) FROM revision_change"
                                  ).fetchone()
            jurisdictions.update(conn, a, {"geometry": new_a}, actor="bench")
            jurisdictions.update(conn, b, {"geometry": new_b}, actor="bench")
            after = conn.execute("SELECT count(*) FROM revision_change"
                                 ).fetchone()
            return int(after[0]) - int(before[0]) if after and before else 0

        seconds, changed = timed(edit)
        # Agreement: a full pass over open issues afterwards finds nothing left to change.
        agrees = reassign(conn, load_assigner(conn), actor="bench")["changed"] == 0
        conn.rollback()
    return seconds, changed, agrees


def _single(dsn: str, n: int = 500
            ) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per new issue, client-measured on loopback: the assignment's database time (the
    layers-version check that validates the cached engine), the engine (in process), the
    one INSERT that stores issue and events, and a plain GiST point-in-polygon lookup."""
    cache = AssignerCache()
    version, engine, insert, gist = [], [], [], []
    rng = np.random.default_rng(2)
    with psycopg.connect(dsn) as conn:
        box = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                           " (SELECT ST_Extent(geom)::geometry AS e FROM jurisdiction) x"
                           ).fetchone()
        assert box is not None
        cache.get(conn)
        for _ in range(n):
            lon, lat = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
            t0 = time.perf_counter()
            conn.execute("SELECT id FROM jurisdiction WHERE level = 'grid' AND"
                         " ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
                         " LIMIT 1", [lon, lat]).fetchone()
            gist.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            assigner = cache.get(conn)
            t2 = time.perf_counter()
            prepared = records.prepare(assigner, [records.NewIssue(
                category="CTY-05", lon=lon, lat=lat, description="bench")])
            t3 = time.perf_counter()
            records.store(conn, *prepared, actor="bench", actor_role="inspector")
            t4 = time.perf_counter()
            version.append(t2 - t1)
            engine.append(t3 - t2)
            insert.append(t4 - t3)
        conn.rollback()
    return version, engine, insert, gist


def run(results: Results, node: Cluster, n_issues: int, grids_per_community: int) -> str:
    """Load the data set, run every scenario, add the rows; return the database's dsn."""
    dsn = fresh_database(node, "bench_assign")
    with psycopg.connect(dsn) as conn:
        load_s, counts = timed(lambda: demo.load(conn, zone=Settings().zone, n_issues=n_issues,
                                                 now=NOW,
                                                 grids_per_community=grids_per_community))
        grids = conn.execute("SELECT count(*) FROM jurisdiction WHERE level = 'grid'"
                             ).fetchone()
    _vacuum(dsn)
    n_grids = int(grids[0]) if grids else 0
    results.facts.append(f"Demo district with {counts['issues']:,} issues and {n_grids:,} grid "
                         f"polygons generated and loaded (COPY) in {load_s:.0f} s.")
    base = _baseline(dsn)
    results.facts.append(f"Baseline `UPDATE issue ... FROM jurisdiction WHERE ST_Intersects` "
                         f"over {counts['issues']:,} issues x {n_grids:,} grids: {base:.1f} s.")
    for rotate, label in ((False, "nothing changed"), (True, "every grid changed")):
        seconds, done, agrees = _full(dsn, rotate=rotate)
        results.add(Row(f"full reassignment, {label}", f"{seconds:.1f} s",
                        f"{base:.1f} s", f"{base / seconds:.1f}x faster", ">= 2x",
                        f"{done['changed']:,} of {done['examined']:,} changed (one revision,"
                        f" a change row each);"
                        f" equals engine bulk + single: {agrees}"))
    seconds, changed, agrees = _incremental(dsn)
    results.add(Row("one community's boundary edited", f"{seconds:.2f} s", f"{base:.1f} s",
                    f"{base / seconds:.0f}x faster", ">= 20x",
                    f"{changed} open issues reassigned; full pass after it finds nothing "
                    f"left: {agrees}"))
    version, engine, insert, gist = _single(dsn)

    def ms(values: list[float], q: float = 50) -> str:
        return f"{percentile(values, q) * 1000:.2f} ms"

    results.add(Row("one new issue: assignment's database time p50", ms(version),
                    f"GiST lookup {ms(gist)}",
                    f"{percentile(version, 50) / percentile(gist, 50):.1f}x the lookup",
                    "< 2 ms",
                    f"engine in process {ms(engine)} (validation included); storing issue + "
                    f"2 events (one INSERT) {ms(insert)} p50, {ms(insert, 99)} p99"))
    return dsn


def main() -> None:
    """Run the assignment benchmarks alone, sized by ``BENCH_ISSUES`` and
    ``BENCH_GRIDS_PER_COMMUNITY`` as ``make bench`` is."""
    run_alone(lambda results, node, sizes: run(results, node, sizes.issues,
                                               sizes.grids_per_community))

if __name__ == "__main__":
    main()
