"""Hotspot analysis at scale, against the time it takes merely to read the points.

Baseline: the issues' coordinates read out of PostGIS by COPY (what any analysis must do).
Measured in the same run: the hotspot pipeline (read + bin + weights + Gi* + FDR + areas +
jurisdiction split) and emerging hotspots over a campaign year of 10-day steps; peak memory
of a fresh process doing both. Targets (issue 8): hotspots ≤ 3×, emerging ≤ 10× the read.

Run alone on a smaller data set: ``python -m bench.hotspots 200000``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import psycopg

from bench.harness import Results, Row, fresh_database, private_cluster, timed
from layers.analysis import hotspots
from layers.assignment import load_assigner
from layers.db.settings import Settings
from layers.io import demo

NOW = datetime.fromisoformat("2026-11-20T00:00:00+08:00")  # 203 days into the demo campaign
YEAR = hotspots.HotspotQuery(since=NOW - timedelta(days=360), until=NOW)
_CHILD = """
import json, resource, sys, psycopg
from bench.hotspots import YEAR
from layers.analysis import hotspots
from layers.assignment import load_assigner
with psycopg.connect(sys.argv[1]) as conn:
    engine = load_assigner(conn)
    hotspots.hotspots(conn, engine, hotspots.HotspotQuery())
    hotspots.emerging(conn, engine, YEAR)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def run(results: Results, dsn: str) -> None:
    """Time read, hotspots and emerging on the database at ``dsn`` and record the rows."""
    with psycopg.connect(dsn) as conn:
        engine = load_assigner(conn)
        query = hotspots.HotspotQuery()
        read = min(timed(lambda: hotspots.read_issues(
            conn, query, "ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat"))[0] for _ in range(3))
        hot, found = min((timed(lambda: hotspots.hotspots(conn, engine, query))
                          for _ in range(3)), key=lambda r: r[0])
        year, cube = timed(lambda: hotspots.emerging(conn, engine, YEAR))
        n = sum(c.count for c in found.cells) + found.outside
    child = subprocess.run([sys.executable, "-c", _CHILD, dsn], capture_output=True,
                           text=True, check=True)
    peak_mb = json.loads(child.stdout.strip().splitlines()[-1])
    note = (f"{n:,} issues, {len(found.cells):,} cells, {len(found.areas)} areas; "
            f"emerging {cube.result.bins.shape[1]} steps")
    results.add(Row("hotspots (Gi*+FDR+areas+split)", f"{hot:.2f} s", f"read {read:.2f} s",
                    f"{hot / read:.1f}×", "≤ 3×", note))
    results.add(Row("emerging hotspots, campaign year", f"{year:.2f} s", f"read {read:.2f} s",
                    f"{year / read:.1f}×", "≤ 10×", note))
    results.add(Row("hotspots + emerging peak memory", f"{peak_mb:,.0f} MB", "—", "—",
                    "< 2 GB", "fresh process, RSS high-water mark"))


def main() -> None:
    """Load the demo with ``argv[1]`` issues on a private cluster and run the benchmark."""
    n_issues = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    results = Results()
    with private_cluster() as node:
        dsn = fresh_database(node, "bench_hotspots")
        with psycopg.connect(dsn) as conn:
            demo.load(conn, zone=Settings().zone, n_issues=n_issues, now=NOW)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE issue")
        run(results, dsn)


if __name__ == "__main__":
    main()
