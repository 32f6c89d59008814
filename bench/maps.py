"""Map pages at scale, against the page that embeds every issue.

Baseline (same run): folium with 10,000 single issue markers and popups, the way the first
overview was built (issue 7 measured 7 s and 10.7 MB). Measured: the overview page built
from the stored layers, cold (empty cache) and warm (aggregates cached per data version), its
size; the hotspot and unit pages (warm); vector tile latency at zoom 16 over the district.
Targets (issue 7): every page < 1 s and < 2 MB at a million issues.

Run alone on databases that already hold the demo: ``python -m bench.maps DSN [DSN ...]``;
or on a private cluster: ``python -m bench.maps 100000``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import folium
import psycopg

from api import map_pages
from bench.harness import Results, Row, fresh_database, percentile, private_cluster, timed
from layers import demo, mapdata, mapviews
from layers.assignment import load_assigner
from layers.hotspots import ResultCache

BASELINE_MARKERS = 10_000


def _baseline(conn: psycopg.Connection[Any]) -> tuple[float, int]:
    """Seconds and bytes of a folium page with one marker and popup per issue."""
    issues = mapdata.issues(conn, limit=BASELINE_MARKERS)

    def build() -> str:
        fmap = folium.Map(prefer_canvas=True)
        for row in issues.itertuples():
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=4,
                                popup=f"{row.public_id} {row.category_zh} {row.status}"
                                ).add_to(fmap)
        return str(fmap.get_root().render())

    seconds, html = timed(build)
    return seconds, len(html.encode())


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


def run(results: Results, dsn: str, label: str = "") -> None:
    """Time the pages and tiles on the database at ``dsn`` and record the rows."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM issue").fetchone()
        n = int(row[0]) if row else 0
        tag = label or f"{n:,} issues"
        base_s, base_bytes = _baseline(conn)
        everything = mapviews.period(conn)
        cache = ResultCache()
        cold, html = timed(lambda: map_pages.overview(conn, cache, everything))
        warm = min(timed(lambda: map_pages.overview(conn, cache, everything))[0]
                   for _ in range(3))
        size = len(html.encode())
        baseline = f"{BASELINE_MARKERS:,} markers {base_s:.2f} s, {base_bytes / 1e6:.1f} MB"
        results.add(Row(f"overview page, {tag}", f"cold {cold:.2f} s, warm {warm:.2f} s, "
                        f"{size / 1e6:.2f} MB", baseline, f"{warm / base_s:.2f}× time, "
                        f"{size / base_bytes:.2f}× size", "< 1 s, < 2 MB"))
        assigner = load_assigner(conn)
        hot_cache = ResultCache()
        hot_cold, hot_html = timed(lambda: map_pages.hotspots_page(conn, assigner, hot_cache))
        hot_warm = min(timed(lambda: map_pages.hotspots_page(conn, assigner, hot_cache))[0]
                       for _ in range(3))
        results.add(Row(f"hotspot page, {tag}", f"cold {hot_cold:.2f} s, warm {hot_warm:.2f} s,"
                        f" {len(hot_html.encode()) / 1e6:.2f} MB", baseline,
                        f"{hot_warm / base_s:.2f}× time", "< 1 s, < 2 MB",
                        "cold runs Gi* and emerging hotspots (cached per data version)"))
        unit = conn.execute("SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                            " GROUP BY u.code ORDER BY count(*) DESC LIMIT 1").fetchone()
        if unit is not None:
            unit_s, unit_html = timed(lambda: map_pages.unit(conn, str(unit[0])))
            results.add(Row(f"unit page (busiest unit), {tag}", f"{unit_s:.2f} s, "
                            f"{len(unit_html.encode()) / 1e6:.2f} MB", baseline,
                            f"{unit_s / base_s:.2f}× time", "< 1 s, < 2 MB",
                            "open issues capped at 2,000 per page"))
        latencies, sizes = [], []
        for z, x, y in _tiles(conn):
            seconds, body = timed(lambda z=z, x=x, y=y: mapviews.issue_tile(
                conn, z, x, y, everything))
            latencies.append(seconds * 1000)
            sizes.append(len(body))
        results.add(Row(f"issue vector tile z16, {tag}",
                        f"p50 {percentile(latencies, 50):.0f} ms, p95 "
                        f"{percentile(latencies, 95):.0f} ms, max {max(sizes) / 1e3:.0f} kB",
                        baseline, "—", "p95 < 500 ms",
                        f"{len(latencies)} tiles over the district, ≤ "
                        f"{mapviews.TILE_LIMIT:,} issues each"))


def main() -> None:
    """``python -m bench.maps DSN...`` or ``python -m bench.maps N`` (private cluster)."""
    results = Results()
    args = sys.argv[1:] or ["100000"]
    if all(a.isdigit() for a in args):
        with private_cluster() as node:
            for n in args:
                dsn = fresh_database(node, f"bench_maps_{n}")
                with psycopg.connect(dsn) as conn:
                    demo.load(conn, n_issues=int(n), now=demo.CAMPAIGN_START.replace(
                        month=11, day=20))
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
                run(results, dsn)
    else:
        for dsn in args:
            run(results, dsn)
    print(results.markdown("(see the machine line of bench/RESULTS.md)"))


if __name__ == "__main__":
    main()
