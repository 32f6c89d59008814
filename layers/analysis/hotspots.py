"""Hotspots, emerging hotspots and chronic sites from the stored issues (geo.hotspots).

Issues are read with one COPY; the statistics run in :mod:`geo.hotspots`. Results are stored
as analysis snapshots (layers/analysis/snapshots.py) with the *data version* they were
computed from (:func:`layers.analysis.snapshots.data_version`): counters that triggers move
in every transaction that changes the assignment inputs or the issue table, so any insert,
update or delete changes it and reading it costs two tiny queries. The version is read
*before* the issues: a write committed in between then makes the stored result look stale,
never a stale result look current. :data:`DEFAULTS` holds the parameters every caller
leaves out. Results leave as records (:mod:`layers.analysis.hotspot_records`), not geo's
frames; the emerging hotspots leave as geo's arrays per cell (:class:`EmergingResult`).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import h3.api.numpy_int as h3int
import numpy as np
import pandas as pd
import psycopg
import shapely
from numpy.typing import NDArray
from psycopg import sql

from geo.assign import LEVEL_RANK, Assigner
from geo.hotspots import analyse_counts, cell_values, sites_per_cell
from geo.hotspots import budget as geo_budget
from geo.hotspots.binning import DEFAULT_RESOLUTION, DEFAULT_RING, StudyGrid, fishnet_grid, h3_grid
from geo.hotspots.budget import Limits
from geo.hotspots.chronic import DEFAULT_CYCLE_DAYS, DEFAULT_WINDOW_DAYS, rank_pairs
from geo.hotspots.clusters import cluster_summary, dbscan_labels
from geo.hotspots.emerging import Emerging, emerging_hotspots
from geo.hotspots.getis import gi_star
from layers.analysis import budget, hotspot_records, tallies
from layers.analysis.hotspot_records import ChronicPair, Cluster, GiResult
from layers.catalog.periods import Period
from layers.errors import ValidationFailed
from layers.vocab import DISMISSED_STATUSES, STATUSES, Status

Method = Literal["h3", "fishnet"]
# A fishnet counts each tallied H3 cell (about 76 m across) at its centre, so its squares
# must be a few cells wide for a count to be about the square's own ground.
MIN_CELL_M = 200.0
# Rejected and duplicate reports are not problems on the ground.
COUNTED: tuple[Status, ...] = tuple(s for s in STATUSES if s not in DISMISSED_STATUSES)


@dataclass(frozen=True)
class Defaults:
    """The analyses' default parameters, the one place the REST routes, the hotspot page and
    ``sitewatch hotspots`` read them from (geo.hotspots explains the values)."""

    method: Method = "h3"
    resolution: int = DEFAULT_RESOLUTION
    ring: int = DEFAULT_RING
    cell_m: float = 200.0
    confidence: int = 95
    level: Literal["street", "community", "grid"] = "community"
    # Emerging hotspots: one Gi* per inspection cycle (the supervision group's 10 days).
    step_days: float = float(DEFAULT_CYCLE_DAYS)
    time_window: int = 1
    # Chronic sites: a recurrence comes back within this many whole days after closure.
    chronic_window_days: int = DEFAULT_WINDOW_DAYS
    # DBSCAN clusters of single reports.
    eps_m: float = 25.0
    min_reports: int = 5


DEFAULTS = Defaults()


@dataclass(frozen=True)
class HotspotQuery:
    """What to analyse (the period as :class:`layers.catalog.periods.Period` gives it)."""

    method: Method = DEFAULTS.method
    resolution: int = DEFAULTS.resolution
    ring: int = DEFAULTS.ring
    cell_m: float = DEFAULTS.cell_m
    since: datetime | None = None
    until: datetime | None = None
    categories: tuple[str, ...] = ()
    layer: str | None = None
    normalise: Literal["none", "km2", "site"] = "none"
    confidence: int = DEFAULTS.confidence
    level: str = DEFAULTS.level

    def __post_init__(self) -> None:
        if self.method == "h3" and not 7 <= self.resolution <= tallies.RESOLUTION:
            raise ValidationFailed(f"H3 分辨率须在 7–{tallies.RESOLUTION} 之间 / resolution"
                                   f" must be 7-{tallies.RESOLUTION}")
        if not 1 <= self.ring <= 5:
            raise ValidationFailed("邻域环数须在 1–5 之间 / ring must be 1-5")
        if self.method == "fishnet" and not MIN_CELL_M <= self.cell_m <= 2000:
            raise ValidationFailed(f"格网边长须在 {MIN_CELL_M:g}–2000 米之间 / cell_m must be"
                                   f" {MIN_CELL_M:g}-2000 m")
        if self.confidence not in (90, 95, 99):
            raise ValidationFailed("置信度须为 90、95 或 99 / confidence must be 90, 95 or 99")
        if self.level not in LEVEL_RANK:
            raise ValidationFailed("层级须为 street、community 或 grid / level must be street,"
                                   " community or grid")

    @property
    def min_bin(self) -> int:
        """The Gi bin an area's cells need at this confidence."""
        return {99: 3, 95: 2, 90: 1}[self.confidence]


def read_issues(conn: psycopg.Connection[Any], query: HotspotQuery,
                columns: str = "ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,"
                               " i.category_code AS category", *,
                at_sites: bool = False) -> pd.DataFrame:
    """Counted issues matching the query's period, categories and site layer, by COPY;
    ``at_sites``: only those linked to a site."""
    where, params = _filter(query, at_sites=at_sites)
    select = sql.SQL("SELECT {} FROM issue i WHERE {}").format(sql.SQL(columns), where)
    buf = io.BytesIO()
    copy = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(select)
    with conn.cursor() as cur, cur.copy(copy, params) as stream:
        for chunk in stream:
            buf.write(chunk)
    buf.seek(0)
    return pd.read_csv(buf, dtype={"category": str})


def _filter(query: HotspotQuery, *, at_sites: bool = False
            ) -> tuple[sql.Composable, list[Any]]:
    """The query's selection of issues as a condition on alias ``i``, with its values."""
    where = [sql.SQL("i.status = ANY(%s)")]
    if at_sites:
        where.append(sql.SQL("i.site_id IS NOT NULL"))
    params: list[Any] = [list(COUNTED)]
    if query.since is not None:
        where.append(sql.SQL("i.reported_at >= %s"))
        params.append(query.since)
    if query.until is not None:
        where.append(sql.SQL("i.reported_at < %s"))
        params.append(query.until)
    if query.categories:
        where.append(sql.SQL("i.category_code = ANY(%s)"))
        params.append(list(query.categories))
    if query.layer is not None:
        where.append(sql.SQL("i.site_id IN (SELECT id FROM site WHERE layer = %s)"))
        params.append(query.layer)
    return sql.SQL(" AND ").join(where), params


# The parameters that narrow the issues an analysis reads, for a refusal to name.
NARROWING = ("period", "category", "layer")


def _checked_rows(conn: psycopg.Connection[Any], query: HotspotQuery, limit: Limits, *,
                  at_sites: bool = False) -> tuple[int, float | None]:
    """The issues the query reads and the first one's epoch; refused over the ceiling."""
    rows, first = budget.count_issues(conn, *_filter(query, at_sites=at_sites))
    budget.check_rows(rows, limit, NARROWING)
    return rows, first


def check_grid(assigner: Assigner, query: HotspotQuery, limit: Limits) -> tuple[int, int]:
    """(cells, neighbours) of the query's study grid, refused over the ceilings."""
    return budget.grid_size(assigner, query.method, query.resolution, query.ring,
                            query.cell_m, limit)


def study_area(assigner: Assigner) -> Any:
    """The union of the coarsest jurisdictions (the street): the hotspot study area."""
    if not len(assigner.j_geoms):
        raise ValidationFailed("尚无辖区，无法分析热点 / no jurisdictions to analyse")
    coarsest = assigner.j_rank == assigner.j_rank.max()
    return shapely.union_all(assigner.j_geoms[coarsest])


# Study grids already built, by engine and grid parameters (the engine itself kept with its
# grid, so its id is not reused). Building the demo's H3 grid (hexagons and contiguity) took
# 0.10 s, twice for every hotspot page (Gi* and the space-time cube): a sixth of a cold page at
# 1M issues once the counts came from the tallies (profiled 2026-11-30). The grid depends on
# the jurisdictions only, which a new engine follows.
_GRIDS: OrderedDict[tuple[int, str, int, int, float], tuple[Assigner, StudyGrid]] = \
    OrderedDict()
_GRIDS_KEPT = 16
_GRIDS_LOCK = threading.Lock()


def study_grid(assigner: Assigner, query: HotspotQuery) -> StudyGrid:
    """The grid the query asks for over the study area (built once per engine and
    parameters; read-only)."""
    key = (id(assigner), query.method, query.resolution, query.ring, query.cell_m)
    with _GRIDS_LOCK:
        kept = _GRIDS.get(key)
        if kept is not None and kept[0] is assigner:
            _GRIDS.move_to_end(key)
            return kept[1]
    area = study_area(assigner)
    grid = (fishnet_grid(area, query.cell_m, query.ring) if query.method == "fishnet"
            else h3_grid(area, query.resolution, query.ring))
    with _GRIDS_LOCK:
        _GRIDS[key] = (assigner, grid)
        while len(_GRIDS) > _GRIDS_KEPT:
            _GRIDS.popitem(last=False)
    return grid


def hotspots(conn: psycopg.Connection[Any], assigner: Assigner, query: HotspotQuery,
             limit: Limits | None = None) -> GiResult:
    """Cells and merged hot areas for the query (see :func:`geo.hotspots.analyse_counts`),
    from the tallies; :class:`layers.analysis.budget.OverBudget` before any work when the grid
    would exceed ``limit``."""
    limit = limit or Limits()
    study_area(assigner)  # no jurisdictions: say so rather than estimate nothing
    check_grid(assigner, query, limit)
    grid = study_grid(assigner, query)
    sites = None
    if query.normalise == "site":
        mask = (assigner.s_layer == query.layer) if query.layer else np.ones(
            len(assigner.s_ids), bool)
        sites = sites_per_cell(grid, assigner.s_geoms[mask])
    counted = _counted(conn, grid, query, sites)
    found = analyse_counts(grid, locate(grid, counted["cell"]),
                           counted["category_code"].to_numpy(object),
                           counted["issues"].to_numpy(np.int64), assigner,
                           normalise=query.normalise, sites=sites, min_bin=query.min_bin,
                           level=query.level)
    return GiResult(cells=hotspot_records.cells(found.cells),
                    areas=hotspot_records.areas(found.areas), outside=found.outside)


def _counted(conn: psycopg.Connection[Any], grid: StudyGrid, query: HotspotQuery,
             sites: NDArray[np.float64] | None) -> pd.DataFrame:
    """The query's issues per tallied cell, by category in the cells that are hot and as one
    row (category "") elsewhere: only a hot area's categories are shown, and reading the
    categories of every cell would read the larger tallies for the whole period."""
    per_cell = tallies.count(conn, selection(query), ("cell",))
    where = locate(grid, per_cell["cell"])
    counts = grid.counts(where, per_cell["issues"].to_numpy(np.float64))
    bins = gi_star(cell_values(grid, counts, query.normalise, sites), grid.neighbours).gi_bin
    hot = np.zeros(len(where), bool)
    hot[where >= 0] = bins[where[where >= 0]] >= query.min_bin
    cold = per_cell[~hot].assign(category_code="")
    if not hot.any():
        return cold
    hot_cells = tuple(int(c) for c in per_cell["cell"][hot])
    by_category = tallies.count(conn, replace(selection(query), cells=hot_cells),
                                ("cell", "category_code"))
    return pd.concat([cold, by_category], ignore_index=True)


def selection(query: HotspotQuery) -> tallies.Selection:
    """The tallied issues the query counts."""
    return tallies.Selection(Period(query.since, query.until), query.categories, query.layer)


def locate(grid: StudyGrid, cells: pd.Series[Any]) -> NDArray[np.int64]:
    """The grid's cell index holding each tallied H3 cell (−1 outside the grid)."""
    tallied = cells.to_numpy(np.int64).astype(np.uint64)
    if grid.kind == "h3":
        return grid.locate_h3_cells(tallied)
    centres = np.array([h3int.cell_to_latlng(int(c)) for c in tallied.tolist()],
                       dtype=np.float64).reshape(-1, 2)
    return grid.locate(centres[:, 1], centres[:, 0])


@dataclass(frozen=True)
class EmergingResult:
    """The grid, the step edges (epoch seconds) and the per-cell classification."""

    grid: StudyGrid
    edges: np.ndarray[Any, np.dtype[np.float64]]
    result: Emerging


def emerging(conn: psycopg.Connection[Any], assigner: Assigner, query: HotspotQuery, *,
             step_days: float = DEFAULTS.step_days, time_window: int = DEFAULTS.time_window,
             limit: Limits | None = None
             ) -> EmergingResult:
    """The space-time cube of the query's period in ``step_days`` steps (whole local days,
    ending with the period's last day), classified, from the tallies;
    :class:`layers.analysis.budget.OverBudget` before any work when it would exceed ``limit``."""
    limit = limit or Limits()
    if step_days != int(step_days) or step_days < 1:
        raise ValidationFailed("时间步须为整天数 / step_days must be a whole number of days")
    study_area(assigner)
    cells, near = check_grid(assigner, query, limit)
    zone = tallies.basis_zone(conn)
    first, end = tallies.local_days(Period(query.since, query.until), zone)
    if query.since is None:  # from the first day with issues
        first = tallies.first_day(conn, selection(query)) or end
    # Whole steps ending with the period's last day; a leading remainder is left out.
    steps = (end - first).days // int(step_days)
    start = end - timedelta(days=steps * int(step_days))

    def epoch(day: date) -> float:
        return datetime.combine(day, datetime.min.time(), zone).timestamp()

    budget.check_cube(cells, near, geo_budget.steps(epoch(end) - epoch(first), step_days),
                      step_days, time_window, limit)
    if steps < 1:
        raise ValidationFailed("时段短于一个时间步 / the period is shorter than one"
                               " time step")
    if steps < 3:
        raise ValidationFailed("趋势分析至少需要 3 个时间步 / a trend needs at least 3 steps")
    edges = np.array([epoch(start + timedelta(days=k * int(step_days)))
                      for k in range(steps + 1)], np.float64)
    counted = tallies.count(conn, selection(query), ("cell", "step"),
                            steps=tallies.Steps(start, int(step_days)))
    grid = study_grid(assigner, query)
    cell = locate(grid, counted["cell"])
    step = counted["step"].to_numpy(np.int64)
    ok = (cell >= 0) & (step >= 0) & (step < steps)
    cube = np.bincount(step[ok] * grid.size + cell[ok],
                       weights=counted["issues"].to_numpy(np.float64)[ok],
                       minlength=steps * grid.size).reshape(steps, grid.size).T.astype(np.float64)
    if query.normalise == "km2":
        cube = cube / grid.area_km2[:, None]
    result = emerging_hotspots(cube, grid.neighbours, time_window=time_window)
    return EmergingResult(grid=grid, edges=edges, result=result)


def _now(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute("SELECT extract(epoch FROM now())").fetchone()
    assert row is not None
    return float(row[0])


def chronic(conn: psycopg.Connection[Any], query: HotspotQuery, *,
            window_days: int = DEFAULTS.chronic_window_days,
            min_recurrences: int | None = None) -> list[ChronicPair]:
    """Chronic (site, category) pairs with the site's code, name and layer, ranked, from the
    site tallies: a recurrence looks back over the site's whole history, and the period's
    first and last reports of a pair are local days."""
    if not 1 <= window_days <= tallies.MAX_GAP_DAYS:
        raise ValidationFailed(f"复发窗口须在 1–{tallies.MAX_GAP_DAYS} 天之间 / window_days"
                               f" must be 1-{tallies.MAX_GAP_DAYS}")
    counted = tallies.site_pairs(conn, selection(query), window_days)
    ranked = rank_pairs(counted.pairs, span_days=counted.span_days,
                        min_recurrences=min_recurrences)
    if ranked.empty:
        return []
    days = tallies.pair_days(conn, selection(query), ranked[["site_id", "category"]])
    ranked = ranked.drop(columns=["first_reported", "last_reported"]).merge(
        days, on=["site_id", "category"], how="left")
    sites = pd.DataFrame(conn.execute("SELECT id, code, name, layer FROM site").fetchall(),
                         columns=["site_id", "code", "name", "layer"])
    return hotspot_records.chronic(ranked.merge(sites, on="site_id", how="left"))


def clusters(conn: psycopg.Connection[Any], assigner: Assigner, query: HotspotQuery, *,
             eps_m: float = DEFAULTS.eps_m, min_reports: int = DEFAULTS.min_reports,
             limit: Limits | None = None) -> list[Cluster]:
    """DBSCAN clusters of the query's issues (duplicate-heavy spots); refused before any
    work when their neighbour lists would exceed ``limit`` (estimated over the district)."""
    limit = limit or Limits()
    rows, _ = _checked_rows(conn, query, limit)
    budget.check_dbscan(rows, assigner, eps_m, limit)
    frame = read_issues(conn, query)
    labels = dbscan_labels(frame["lon"].to_numpy(np.float64), frame["lat"].to_numpy(np.float64),
                           eps_m=eps_m, min_reports=min_reports)
    return hotspot_records.clusters(cluster_summary(
        frame["lon"].to_numpy(np.float64), frame["lat"].to_numpy(np.float64),
        frame["category"].to_numpy(object), labels))


def names(conn: psycopg.Connection[Any]) -> tuple[dict[int, tuple[str, str]],
                                                   dict[int, tuple[str, str]]]:
    """Jurisdiction and unit ids to (code, name), for labelling results."""
    jur = {int(i): (str(c), str(n)) for i, c, n in conn.execute(
        "SELECT id, code, name FROM jurisdiction").fetchall()}
    units = {int(i): (str(c), str(n)) for i, c, n in conn.execute(
        "SELECT id, code, name FROM unit").fetchall()}
    return jur, units

