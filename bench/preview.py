"""The preview of every grid redrawn (issue 18): an import's preview writes nothing, so it
should cost no more than what it cannot avoid, the read plus the engine.

The file is the reassignment benchmark's new jurisdiction set (``bench.reassign.ROTATE_GRIDS``:
every grid takes its next sibling's polygon) written out as GeoJSON. The baseline, in the same
run on the same data: reading the open issues' stored answers (``read_answers``), building the
engine from the new set and running it over them. The preview adds reading and checking the
file as the import does, upserting it in memory, counting, and the new set's data-quality
report.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Results, Row, fresh_database, run_alone, timed
from bench.reassign import NOW, ROTATE_GRIDS
from layers import assignment
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.io import demo, import_preview, imports

# The grids as ROTATE_GRIDS leaves them, as a GeoJSON FeatureCollection of the import's
# columns.
_ROTATED_FILE = """
SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object(
    'type', 'Feature', 'geometry', ST_AsGeoJSON(n.geom, 15)::json,
    'properties', json_build_object('code', j.code, 'name', j.name, 'level', j.level,
                                    'parent', p.code)) ORDER BY j.code))
FROM (SELECT id, coalesce(lead(geom) OVER w, first_value(geom) OVER w) AS geom
      FROM jurisdiction WHERE level = 'grid'
      WINDOW w AS (PARTITION BY parent_id ORDER BY code
                   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) n
JOIN jurisdiction j ON j.id = n.id JOIN jurisdiction p ON p.id = j.parent_id
"""


def _read_plus_engine(dsn: str) -> tuple[float, int]:
    """Seconds to read the open issues' answers, build the engine from the rotated grids
    and run it; how many answers it changes. The rotation is rolled back."""
    with psycopg.connect(dsn) as conn:
        conn.execute(ROTATE_GRIDS)

        def work() -> int:
            current = assignment.read_answers(conn)
            engine = assignment.load_assigner(conn)
            result = engine.assign(current["lon"].to_numpy(), current["lat"].to_numpy(),
                                   current["category_code"].to_numpy(object),
                                   tolerance_m=assignment.DEFAULT_TOLERANCE_M)
            return int(assignment.changed_answers(current, result).sum())

        seconds, changed = timed(work)
        conn.rollback()
    return seconds, changed


def run(results: Results, dsn: str) -> None:
    """Time the preview of every grid redrawn against the read plus the engine."""
    with tempfile.TemporaryDirectory(prefix="sw-bench-preview-") as folder:
        path = Path(folder) / "grids.geojson"
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(_ROTATED_FILE).fetchone()
            assert row is not None
            path.write_text(json.dumps(row[0]), encoding="utf-8")
            n_grids = len(row[0]["features"])
        base, expected = _read_plus_engine(dsn)
        with psycopg.connect(dsn) as conn:  # one transaction: did it write anything?
            seconds, shown = timed(lambda: import_preview.preview_import(
                conn, "jurisdictions", path))
            xid = conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()
            # What the import pays too, before it writes: reading and checking the file.
            checks, _ = timed(lambda: imports.check_jurisdictions(conn, path))
            conn.rollback()
    _add(results, seconds, base, shown, expected, n_grids, checks=checks,
         wrote=bool(xid and xid[0]))


def _add(results: Results, seconds: float, base: float, shown: Any, expected: int,
         n_grids: int, *, checks: float, wrote: bool) -> None:
    results.add(Row(
        "preview of every grid redrawn (no write)", f"{seconds:.1f} s",
        f"read + engine {base:.1f} s", f"{seconds / base:.2f}x the read + engine",
        "<= 1x",
        f"{shown.changed:,} of {shown.examined:,} open issues would change (the engine "
        f"alone: {expected:,}); includes reading and checking the {n_grids:,}-grid file as "
        f"the import does ({checks:.2f} s alone) and the new set's data-quality report; "
        f"wrote anything (a transaction id assigned): {wrote}"))


def main() -> None:
    """Run this benchmark alone on the demo district sized by ``BENCH_ISSUES`` and
    ``BENCH_GRIDS_PER_COMMUNITY`` as ``make bench`` is."""

    def alone(results: Results, node: Cluster, sizes: Any) -> str:
        dsn = fresh_database(node, "bench_preview")
        with psycopg.connect(dsn) as conn:
            demo.load(conn, zone=Settings().zone, n_issues=sizes.issues, now=NOW,
                      grids_per_community=sizes.grids_per_community)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        run(results, dsn)
        return dsn

    run_alone(alone)


if __name__ == "__main__":
    main()
