"""The preview of every grid redrawn (issue 18): an import's preview writes nothing, so it
should cost no more than what it cannot avoid, the read plus the engine.

The file is the reassignment benchmark's new jurisdiction set (``bench.reassign.ROTATE_GRIDS``:
every grid takes its next sibling's polygon) written out as GeoJSON. The baseline, in the same
run on the same data: reading the issues' stored answers (``read_answers``), building the
engine from the new set and running it over them; once over the open issues (what the import
moves) and once over every issue (as that benchmark's "every grid changed" row, where the
demo's million issues are mostly closed). The preview adds reading and checking the
file as the import does, upserting it in memory, counting, and the new set's data-quality
report.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import partial
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


def _read_plus_engine(dsn: str, *, include_closed: bool) -> tuple[float, int]:
    """Seconds to read the issues' answers, build the engine from the rotated grids and run
    it; how many answers it changes. The rotation is rolled back."""
    with psycopg.connect(dsn) as conn:
        conn.execute(ROTATE_GRIDS)

        def work() -> int:
            current = assignment.read_answers(conn, include_closed=include_closed)
            engine = assignment.load_assigner(conn)
            result = engine.assign(current["lon"].to_numpy(), current["lat"].to_numpy(),
                                   current["category_code"].to_numpy(object),
                                   tolerance_m=assignment.DEFAULT_TOLERANCE_M)
            return int(assignment.changed_answers(current, result).sum())

        seconds, changed = timed(work)
        conn.rollback()
    return seconds, changed


def run(results: Results, dsn: str) -> None:
    """Time the preview of every grid redrawn against the read plus the engine: over the
    open issues (what the import would move) and over every issue (as the reassignment
    benchmark's "every grid changed" row)."""
    with tempfile.TemporaryDirectory(prefix="sw-bench-preview-") as folder:
        path = Path(folder) / "grids.geojson"
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(_ROTATED_FILE).fetchone()
            assert row is not None
            path.write_text(json.dumps(row[0]), encoding="utf-8")
            n_grids = len(row[0]["features"])
        for include_closed in (False, True):
            base, expected = _read_plus_engine(dsn, include_closed=include_closed)
            with psycopg.connect(dsn) as conn:  # one transaction: did it write anything?
                seconds, shown = timed(partial(import_preview.preview_import, conn,
                                               "jurisdictions", path,
                                               include_closed=include_closed))
                xid = conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()
                # What the import pays too, before it writes: reading and checking the file.
                checks, _ = timed(lambda: imports.check_jurisdictions(conn, path))
                conn.rollback()
            _add(results, Timing(seconds, base, checks), shown, expected, n_grids,
                 every=include_closed, wrote=bool(xid and xid[0]))


@dataclass(frozen=True)
class Timing:
    """Seconds: the preview, the read plus the engine, the file's checks alone."""

    preview: float
    base: float
    checks: float


def _add(results: Results, t: Timing, shown: Any, expected: int, n_grids: int, *,
         every: bool, wrote: bool) -> None:
    which = "every issue, closed too" if every else "open issues"
    results.add(Row(
        f"preview of every grid redrawn (no write), {which}", f"{t.preview:.1f} s",
        f"read + engine {t.base:.1f} s", f"{t.preview / t.base:.2f}x the read + engine",
        "<= 1x",
        f"{shown.changed:,} of {shown.examined:,} would change (the engine alone: "
        f"{expected:,}); includes reading and checking the {n_grids:,}-grid file as the "
        f"import does ({t.checks:.2f} s alone) and the new set's data-quality report; wrote "
        f"anything (a transaction id assigned): {wrote}"))


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
