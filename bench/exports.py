"""Issue exports at scale: GeoJSON and XLSX of 100,000 and 1,000,000 issues.

Each export runs in a fresh process, the way the server does it (``layers.io.exports.extract``
with a connection, the connection closed, then ``write``), and reports its time and its peak
memory (the process's RSS high-water mark, VmHWM, imports included). Baseline (same run, same
kind of process): the extract step alone, COPY of the same rows into the spool file, i.e. what
reading the rows costs before any formatting. Linear growth shows as the same time per 1,000 rows at
100k and at 1M, and as flat memory. Target (issue 13): linear, memory independent of the row
count (< 1 GB at 1M).

Run alone: ``python -m bench.exports`` (private cluster, 100k and 1M; about ten minutes), or
``python -m bench.exports DSN [DSN ...]`` on databases that already hold the demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Results, Row, fresh_database, machine, private_cluster
from layers.db.settings import Settings
from layers.io import demo, exports

SIZES = (100_000, 1_000_000)
FORMATS = ("geojson", "xlsx")


def _child(dsn: str, fmt: str, out: str) -> None:
    """In the measured process: extract (and, unless ``fmt`` is "spool", write); print JSON."""
    start = time.perf_counter()
    folder = Path(out).parent
    with psycopg.connect(dsn) as conn:
        found = exports.extract(conn, "issues", folder, fmt="csv" if fmt == "spool" else fmt)
    if fmt != "spool":
        exports.write(found, Path(out), fmt)
    seconds = time.perf_counter() - start
    written = found.spool if fmt == "spool" else Path(out)
    size = written.stat().st_size if written is not None else 0
    peak = _peak_mb()
    print(json.dumps({"seconds": seconds, "rows": found.rows, "peak_mb": peak,
                      "mb": size / 2**20}))


def _peak_mb() -> float:
    """This process's RSS high-water mark in MB.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across
    fork and exec, so a child of the bench (which held the generated district) would report
    the parent's peak."""
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")) / 1024


def measure(dsn: str, fmt: str) -> dict[str, Any]:
    """Time, rows, peak memory and file size of one export in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="sw-bench-export-") as folder:
        done = subprocess.run(
            [sys.executable, "-m", "bench.exports", "--child", dsn, fmt,
             str(Path(folder) / f"issues.{fmt}")],
            check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(results: Results, dsn: str) -> list[tuple[str, int, float, float]]:
    """Measure the baseline and each format on ``dsn``; add rows; return
    (format, rows, seconds, peak MB) for the linearity fact."""
    base = measure(dsn, "spool")
    n = int(base["rows"])
    seen = []
    for fmt in FORMATS:
        got = measure(dsn, fmt)
        assert got["rows"] == n
        per_k = got["seconds"] / n * 1000
        results.add(Row(
            f"export {n:,} issues as {fmt.upper()}",
            f"{got['seconds']:.1f} s ({per_k * 1000:.0f} µs a row), peak {got['peak_mb']:,.0f}"
            f" MB, {got['mb']:,.0f} MB file",
            f"COPY to the spool: {base['seconds']:.1f} s, peak {base['peak_mb']:,.0f} MB",
            f"{got['seconds'] / base['seconds']:.1f}x the read",
            "linear; memory flat (< 1 GB)",
            "fresh process: extract (connection closed) then write, as the server does"))
        seen.append((fmt, n, float(got["seconds"]), float(got["peak_mb"])))
    return seen


def linearity(results: Results, seen: list[tuple[str, int, float, float]]) -> None:
    """One fact per format: time per 1,000 rows and peak memory at each size."""
    for fmt in FORMATS:
        points = sorted((n, s, m) for f, n, s, m in seen if f == fmt)
        if len(points) > 1:
            results.facts.append(f"{fmt.upper()} export growth: " + "; ".join(
                f"{n:,} rows {s / n * 1000:.2f} s per 1,000, peak {m:,.0f} MB"
                for n, s, m in points))


def demo_database(node: Any, n: int) -> str:
    """A fresh database holding the demo district with ``n`` issues (COPY)."""
    dsn = fresh_database(node, f"bench_exports_{n}")
    with psycopg.connect(dsn) as conn:
        demo.load(conn, zone=Settings().zone, n_issues=n)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return dsn


def run_sizes(results: Results, node: Any, big_dsn: str | None = None) -> None:
    """100k on a fresh district; 1M on ``big_dsn`` (the assignment benchmark's) or fresh."""
    seen = run(results, demo_database(node, SIZES[0]))
    seen += run(results, big_dsn or demo_database(node, SIZES[1]))
    linearity(results, seen)


def main() -> None:
    """``python -m bench.exports [DSN ...]``; ``--child`` is the measured process."""
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        _child(*args[1:4])
        return
    results = Results()
    if args:
        seen = [point for dsn in args for point in run(results, dsn)]
        linearity(results, seen)
        print(results.markdown("(see the machine line of bench/RESULTS.md)"))
        return
    with private_cluster() as node:
        seen = []
        for n in SIZES:
            started = time.perf_counter()
            dsn = demo_database(node, n)
            print(f"demo with {n:,} issues loaded in {time.perf_counter() - started:.0f} s",
                  flush=True)
            seen += run(results, dsn)
        linearity(results, seen)
        print(results.markdown(machine(dsn)))


if __name__ == "__main__":
    main()
