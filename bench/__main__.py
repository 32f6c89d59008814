"""``make bench``: run every benchmark on a private cluster and write bench/RESULTS.md.

Environment: ``BENCH_ISSUES`` (default 1,000,000) and ``BENCH_GRIDS_PER_COMMUNITY`` (default
170, i.e. over 2,000 grid polygons) size the data set; ``BENCH_LOAD_SECONDS`` (default 20)
the length of each ingest and read run.
"""

from __future__ import annotations

from pathlib import Path

from bench import (
    exports,
    hotspots,
    ingest,
    maps,
    notify,
    openloop,
    partitions,
    preview,
    reassign,
    replica,
    streets,
    tallies,
)
from bench.harness import Results, Sizes, machine, private_cluster


def main() -> None:
    """Run the benchmarks and write the results table."""
    sizes = Sizes.from_environment()
    n_issues, grids, seconds = sizes.issues, sizes.grids_per_community, sizes.load_seconds
    results = Results()
    with private_cluster() as node:
        print(f"assignment benchmarks: {n_issues:,} issues, {grids} grids per community",
              flush=True)
        dsn = reassign.run(results, node, n_issues, grids)
        preview.run(results, dsn)  # the same data set: every grid redrawn, previewed
        tallies.run(results, dsn)  # first: it folds the reassignments' journal
        partitions.run(results, dsn)  # the same rows, partitioned and not
        hotspots.run(results, dsn)
        maps.run(results, dsn)
        maps.run_sizes(results, node)
        streets.run(results, node, sizes.streets, n_issues // sizes.streets)
        exports.run_sizes(results, node, dsn)
        ingest.run(results, node, seconds)
        openloop.run(results, node, seconds)
        replica.run(results, node, seconds)  # a standby of this cluster, then gone
        notify.run(results, node)
        text = results.markdown(machine(dsn))
    out = Path(__file__).with_name("RESULTS.md")
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
