"""Map pages at scale, against the page that embeds every issue.

Baseline (same run): folium with 10,000 single issue markers and popups, the way the first
overview was built (issue 7 measured 7 s and 10.7 MB). Measured at 1k, 100k and 1M issues:
the overview and hotspot pages built from their analysis snapshot, right after a data change
(stale snapshot served, refresh in the background) and on the first view ever (the request
computes the snapshot), the background refresh's time; the unit page (read live); vector tile
latency at zoom 16 over the district (1M). Targets (issue 7): every page < 1 s and < 2 MB.

Run alone on databases that already hold the demo: ``python -m bench.maps DSN [DSN ...]``;
or on a private cluster: ``python -m bench.maps 100000``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import folium
import psycopg

from api.services import hotspot_results, map_pages
from bench.harness import Results, Row, fresh_database, percentile, private_cluster, timed
from layers.analysis import snapshots
from layers.analysis.hotspots import HotspotQuery
from layers.analysis.snapshots import Snapshots, Spec
from layers.assignment import load_assigner
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.io import demo
from layers.views import mapdata, mapviews

BASELINE_MARKERS = 10_000
# Page sizes reported besides the million-issue district (issue 7 asks for 1k, 100k, 1M).
SMALLER = (1_000, 100_000)
# The demo as seen on 20 November 2026, deep into the campaign.
DEMO_NOW = datetime.fromisoformat("2026-11-20T00:00:00+08:00")


def _baseline(conn: psycopg.Connection[Any]) -> tuple[float, int, int]:
    """Seconds, bytes and markers of a folium page with one marker and popup per issue
    (up to BASELINE_MARKERS: fewer on a smaller district)."""
    issues = mapdata.issues(conn, limit=BASELINE_MARKERS)

    def build() -> str:
        fmap = folium.Map(prefer_canvas=True)
        for row in issues.itertuples():
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=4,
                                popup=f"{row.public_id} {row.category_zh} {row.status}"
                                ).add_to(fmap)
        return str(fmap.get_root().render())

    seconds, html = timed(build)
    return seconds, len(html.encode()), len(issues)


def _tiles(conn: psycopg.Connection[Any], z: int = 16) -> list[tuple[int, int, int]]:
    """Every zoom-``z`` tile over the district's extent."""
    row = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                       " (SELECT ST_Extent(geom) AS e FROM jurisdiction) s").fetchone()
    assert row is not None
    n = 2 ** z

    def tile(lon: float, lat: float) -> tuple[int, int]:
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    (x0, y1), (x1, y0) = tile(row[0], row[1]), tile(row[2], row[3])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _page_row(results: Results, conn: psycopg.Connection[Any], dsn: str, name: str,
              spec: Spec, build: Callable[[Snapshots], str], baseline: str,
              base_s: float, base_bytes: int) -> None:
    """Time one page the three ways a reader meets it (see layers/analysis/snapshots.py):
    built from the current snapshot; right after a data change (the stale snapshot served,
    the refresh queued); the first view ever (no snapshot: the request computes it)."""
    conn.execute("DELETE FROM analysis_snapshot WHERE key = %s", [spec.key])
    conn.commit()
    first, html = timed(lambda: build(Snapshots(snapshots.connector(dsn))))
    conn.commit()
    current = min(timed(lambda: build(Snapshots(snapshots.connector(dsn))))[0]
                  for _ in range(3))
    # A change the data version sees (an update that changes nothing else), to a snapshot
    # old enough to be refreshed (layers.analysis.snapshots: at most one refresh per min_interval).
    conn.execute("UPDATE issue SET updated_at = updated_at WHERE id = (SELECT min(id)"
                 " FROM issue)")
    conn.execute("UPDATE analysis_snapshot SET computed_at = now() - interval '1 minute'"
                 " WHERE key = %s", [spec.key])
    conn.commit()
    served = Snapshots(snapshots.connector(dsn))
    stale, stale_html = timed(lambda: build(served))
    conn.commit()
    served.close()  # waits for the background refresh
    refreshed = snapshots.read(conn, spec.key)
    assert refreshed is not None and refreshed.data_version == snapshots.data_version(conn)
    size = len(html.encode())
    results.add(Row(
        name, f"{current:.2f} s from the snapshot, {stale:.2f} s after a change, "
        f"{size / 1e6:.2f} MB", baseline, f"{max(current, stale) / base_s:.2f}× time, "
        f"{size / base_bytes:.2f}× size", "< 1 s, < 2 MB",
        f"analysis refreshed in the background in {refreshed.seconds:.2f} s; first view"
        f" ever (no snapshot) {first:.2f} s; stale page {len(stale_html.encode()) / 1e6:.2f}"
        " MB"))


def run(results: Results, dsn: str, label: str = "", *, tiles: bool = True) -> None:
    """Time the pages (and tiles) on the database at ``dsn`` and record the rows."""
    zone = Settings().zone
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
        n = int(row[0]) if row else 0
        tag = label or f"{n:,} issues"
        base_s, base_bytes, markers = _baseline(conn)
        baseline = f"{markers:,} markers {base_s:.2f} s, {base_bytes / 1e6:.1f} MB"
        everything = Period()
        _page_row(results, conn, dsn, f"overview page, {tag}",
                  map_pages.overview_spec(everything, zone),
                  lambda s: map_pages.overview(conn, s, everything, zone=zone), baseline, base_s,
                  base_bytes)
        # The page's heaviest snapshot (Gi* cells and areas) stands for its three.
        gi = hotspot_results.gi_spec(HotspotQuery(), load_assigner)
        _page_row(results, conn, dsn, f"hotspot page, {tag}", gi,
                  lambda s: map_pages.hotspots_page(conn, s, zone=zone), baseline, base_s,
                  base_bytes)
        unit = conn.execute("SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                            " GROUP BY u.code ORDER BY count(*) DESC LIMIT 1").fetchone()
        if unit is not None:
            unit_s, unit_html = timed(lambda: map_pages.unit(conn, str(unit[0]), zone=zone))
            results.add(Row(f"unit page (busiest unit), {tag}", f"{unit_s:.2f} s, "
                            f"{len(unit_html.encode()) / 1e6:.2f} MB", baseline,
                            f"{unit_s / base_s:.2f}× time", "< 1 s, < 2 MB",
                            "no snapshot: read live; open issues capped at 2,000 per page"))
        if not tiles:
            return
        latencies, sizes = [], []
        for z, x, y in _tiles(conn):
            seconds, body = timed(partial(mapviews.issue_tile, conn, z, x, y, everything))
            latencies.append(seconds * 1000)
            sizes.append(len(body))
        results.add(Row(f"issue vector tile z16, {tag}",
                        f"p50 {percentile(latencies, 50):.0f} ms, p95 "
                        f"{percentile(latencies, 95):.0f} ms, max {max(sizes) / 1e3:.0f} kB",
                        baseline, "—", "p95 < 500 ms",
                        f"{len(latencies)} tiles over the district, ≤ "
                        f"{mapviews.TILE_LIMIT:,} issues each"))


def run_sizes(results: Results, node: Any, sizes: tuple[int, ...] = SMALLER) -> None:
    """The pages on fresh demo districts of ``sizes`` issues (the 1M one runs on the
    assignment benchmark's database)."""
    for n in sizes:
        dsn = fresh_database(node, f"bench_maps_{n}")
        with psycopg.connect(dsn) as conn:
            demo.load(conn, zone=Settings().zone, n_issues=n, now=DEMO_NOW)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        run(results, dsn, tiles=False)


def main() -> None:
    """``python -m bench.maps DSN...`` or ``python -m bench.maps N`` (private cluster)."""
    results = Results()
    args = sys.argv[1:] or ["100000"]
    if all(a.isdigit() for a in args):
        with private_cluster() as node:
            for n in args:
                dsn = fresh_database(node, f"bench_maps_{n}")
                with psycopg.connect(dsn) as conn:
                    demo.load(conn, zone=Settings().zone, n_issues=int(n), now=DEMO_NOW)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
                run(results, dsn)
    else:
        for dsn in args:
            run(results, dsn)
    print(results.markdown("(see the machine line of bench/RESULTS.md)"))


if __name__ == "__main__":
    main()
