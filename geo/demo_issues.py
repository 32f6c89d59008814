"""Demo issues for the demo district, with planted patterns analyses must find.

Patterns, all placed from :class:`geo.demo.DemoDistrict` fields:

- hotspots: dense clusters around ``hotspot_markets`` and along ``back_street`` all period;
- rebound: many compound problems at ``rebound_site`` in May-June, almost none in
  July-August, many again from October;
- chronic: at each of ``chronic_sites`` one category recurs, each report a few days after
  the previous one was closed;
- background: the rest over the district, weighted towards sites;
- street borders (a district of several streets): :data:`BORDER_SHARE` of each street's
  issues lie exactly on vertices of the borders it shares with its neighbours.

Everything is vectorised with numpy and shapely 2, so a million issues take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, tzinfo
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from geo.demo import GRID_M, METRIC_CRS, WGS84, DemoDistrict, sample_in_polygons, to_metric
from geo.demo_streets import street_borders

SOURCES = ("self_inspection", "supervision", "external_assessment", "citizen")
STATUSES = ("reported", "assigned", "rectified", "verified", "rejected", "duplicate")
_SOURCE_P = (0.55, 0.30, 0.05, 0.10)
_REPORTERS = ("张建华", "李秀英", "王志强", "刘伟", "陈静", "杨帆", "赵磊", "黄丽", "周涛",
              "吴敏", "徐军", "孙红梅", "朱海峰", "马晓燕", "胡斌", "沈佳")
_PHRASES = ("路口", "后街背巷", "主干道沿线", "人行道", "公交站台旁", "商铺门前")
_HOUR = 3600.0
_DAY = 86400.0
#: Layers by precedence when a point is near several sites.
_LAYERS = ("market", "construction_site", "old_compound")
_LAYER_WEIGHT = (2.0, 1.5, 1.0)
#: Share of ``n`` for market hotspot A, market hotspot B, back street, rebound, chronic (cap).
_SHARES = (0.09, 0.08, 0.06, 0.05, 0.05)
#: Share of each street's issues put on street borders (a district of several streets).
BORDER_SHARE = 0.01

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class _Geo:
    """The district in the metric CRS, in the shape the samplers need."""

    inner: Any
    sites: NDArray[np.object_]
    areas: NDArray[np.object_]
    layer: IntArray
    codes: list[str]
    names: list[str]
    communities: NDArray[np.object_]
    community_names: list[str]

    @classmethod
    def build(cls, district: DemoDistrict) -> _Geo:
        j = district.jurisdictions
        streets = to_metric(j[j["level"] == "street"])
        street = streets[0] if len(streets) == 1 else shapely.union_all(streets, grid_size=GRID_M)
        # 1 m inside, so no point can leave the street through reprojection round-off
        inner = shapely.buffer(street, -1.0)
        sites = district.sites[district.sites["layer"].isin(_LAYERS)].reset_index(drop=True)
        polygons = to_metric(sites)
        areas = shapely.intersection(
            shapely.buffer(polygons, sites["buffer_m"].to_numpy(dtype=np.float64)), inner)
        communities = j[j["level"] == "community"]
        return cls(
            inner=inner, sites=polygons, areas=areas,
            layer=sites["layer"].map(_LAYERS.index).to_numpy(dtype=np.int64),
            codes=list(sites["code"]), names=list(sites["name"]),
            communities=to_metric(communities), community_names=list(communities["name"]))

    def index(self, code: str) -> int:
        return self.codes.index(code)


@dataclass(frozen=True)
class _Catalog:
    """Category codes, names, deadlines and per-layer pools with seeded weights."""

    codes: list[str]
    names: list[str]
    deadline_s: FloatArray
    pools: dict[int, tuple[IntArray, FloatArray]]

    @classmethod
    def build(cls, categories: pd.DataFrame, rng: np.random.Generator) -> _Catalog:
        frame = categories.reset_index(drop=True)
        names = frame["name_zh"] if "name_zh" in frame else frame["code"]
        layer = frame["site_layer"].map(lambda v: _LAYERS.index(v) if v in _LAYERS else -1)
        pools = {}
        for key in (-1, *range(len(_LAYERS))):
            members = np.flatnonzero(layer.to_numpy() == key).astype(np.int64)
            if members.size:
                pools[key] = (members, rng.dirichlet(np.full(members.size, 3.0)))
        if -1 not in pools:
            raise ValueError("categories need at least one without a site layer")
        return cls(codes=[str(c) for c in frame["code"]], names=[str(v) for v in names],
                   deadline_s=frame["deadline_hours"].to_numpy(dtype=np.float64) * _HOUR,
                   pools=pools)

    def pick(self, layer: IntArray, rng: np.random.Generator) -> IntArray:
        """A category per point: mostly from its site layer's pool, else a general one."""
        use = np.where((layer >= 0) & (rng.random(layer.size) < 0.8), layer, -1)
        use = np.where(np.isin(use, list(self.pools)), use, -1)
        out = np.empty(layer.size, dtype=np.int64)
        for key, (members, weights) in self.pools.items():
            mask = use == key
            out[mask] = rng.choice(members, int(mask.sum()), p=weights)
        return out


@dataclass
class _Batch:
    """Points (metric), report times (seconds after start) and forced category (-1: pick)."""

    x: FloatArray
    y: FloatArray
    t: FloatArray
    cat: IntArray


def _batch(x: FloatArray, y: FloatArray, t: FloatArray, cat: int = -1) -> _Batch:
    return _Batch(x, y, t, np.full(x.size, cat, dtype=np.int64))


def _in_area(area: Any, n: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    return sample_in_polygons(np.array([area]), np.zeros(n, np.intp), rng)


def _cluster(
    centre: Any, geo: _Geo, n: int, span: float, rng: np.random.Generator
) -> _Batch:
    """A Gaussian cluster (sigma 90 m, cut at 350 m) spread evenly over the period."""
    area = shapely.intersection(shapely.buffer(centre, 350.0), geo.inner)
    shapely.prepare(area)
    c = shapely.get_coordinates(centre)[0]
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x[todo] = rng.normal(c[0], 90.0, todo.size)
        y[todo] = rng.normal(c[1], 90.0, todo.size)
        todo = todo[~shapely.contains_xy(area, x[todo], y[todo])]
    return _batch(x, y, rng.uniform(0.0, span, n))


def _street_line(line: Any, n: int, span: float, rng: np.random.Generator) -> _Batch:
    """Points along a back street, a few metres either side of its centre line."""
    ends = shapely.get_coordinates(line)
    along = rng.random(n)[:, None]
    direction = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    offset = rng.normal(0.0, 12.0, n)[:, None] * np.array([-direction[1], direction[0]])
    xy = ends[0] + along * (ends[1] - ends[0]) + offset
    return _batch(xy[:, 0], xy[:, 1], rng.uniform(0.0, span, n))


def _rebound_times(
    t0: pd.Timestamp, span: float, n: int, rng: np.random.Generator
) -> FloatArray:
    """Report times dense in May-June, nearly absent July-August, dense again from October."""
    days = np.arange(int(np.ceil(span / _DAY)))
    month = (t0 + pd.to_timedelta(days, unit="D")).month.to_numpy()
    weight = np.select([np.isin(month, (5, 6)), np.isin(month, (7, 8)), month == 9,
                        month >= 10], [1.0, 0.02, 0.3, 1.0], 0.3)
    day = rng.choice(days, n, p=weight / weight.sum())
    return np.minimum(day * _DAY + rng.uniform(0.0, _DAY, n), span - 1.0)


def _background(geo: _Geo, n: int, span: float, rng: np.random.Generator) -> _Batch:
    """Background: about half uniform over the street, half in or around sites."""
    near = rng.random(n) < 0.45
    weight = np.asarray(_LAYER_WEIGHT)[geo.layer]
    which = rng.choice(len(geo.areas), int(near.sum()), p=weight / weight.sum())
    x, y = np.empty(n), np.empty(n)
    x[~near], y[~near] = _in_area(geo.inner, int((~near).sum()), rng)
    x[near], y[near] = sample_in_polygons(geo.areas, which.astype(np.intp), rng)
    return _batch(x, y, rng.uniform(0.0, span, n))


@dataclass(frozen=True)
class _Plan:
    """Lifecycle offsets in seconds after the report, as they would unfold without ``now``.

    ``outcome`` is 0 verified, 1 rejected, 2 duplicate; ``rectify`` is the last rectification.
    """

    assign: FloatArray
    rectify: FloatArray
    close: FloatArray
    rework: IntArray
    outcome: IntArray


_Parts = TypeVar("_Parts", _Batch, _Plan)


def _plan(deadline_s: FloatArray, rng: np.random.Generator, *, terminal: bool) -> _Plan:
    """Sample lifecycles as shares of the deadline: ~10 % closed late, ~5 % stalled for weeks.

    Late closures are the ones usually reworked, as failed verification is what makes a
    rectification late.
    """
    n = deadline_s.size
    u = rng.random(n)
    late, stalled = u < 0.10, u > (0.95 if terminal else 1.0)
    share = np.select([late, stalled],
                      [rng.uniform(1.05, 3.0, n), rng.uniform(3.0, 60.0, n)],
                      rng.uniform(0.2, 0.95, n))
    close = deadline_s * share
    assign = close * rng.uniform(0.05, 0.25, n)
    rectify = assign + (close - assign) * rng.uniform(0.6, 0.95, n)
    p_rework = np.where(late | stalled, 0.5, 0.06)
    rework = (rng.random(n) < p_rework).astype(np.int64) * rng.choice(
        np.array([1, 2], dtype=np.int64), n, p=[0.75, 0.25])
    outcome = np.zeros(n, dtype=np.int64)
    if terminal:
        o = rng.random(n)
        outcome = np.select([o < 0.03, o < 0.06], [1, 2], 0).astype(np.int64)
        close = np.where(outcome > 0, assign * rng.uniform(0.5, 2.0, n), close)
    return _Plan(assign, rectify, close, rework, outcome)


def _resolve(rep: FloatArray, plan: _Plan, now: float) -> dict[str, Any]:
    """Status and stage times (NaN where not reached) as seen at ``now``."""
    elapsed = now - rep
    closed = plan.close <= elapsed
    done = closed & (plan.outcome == 0)
    rectified = ~closed & (plan.outcome == 0) & (plan.rectify <= elapsed)
    assigned = plan.assign <= elapsed
    status = np.select(
        [closed & (plan.outcome == 1), closed & (plan.outcome == 2), done, rectified, assigned],
        [4, 5, 3, 2, 1], 0)
    # a rejected or duplicate report may be closed before anyone was assigned
    has_assign = assigned & ~(closed & (plan.outcome > 0) & (plan.assign >= plan.close))
    return {
        "status": status,
        "assigned_at": np.where(has_assign, rep + plan.assign, np.nan),
        "rectified_at": np.where(done | rectified, rep + plan.rectify, np.nan),
        "closed_at": np.where(closed, rep + plan.close, np.nan),
        "rework_count": np.where(done, plan.rework, 0).astype(np.int64),
    }


def _chronic(
    geo: _Geo, codes: tuple[str, ...], catalog: _Catalog, budget: int, span: float,
    rng: np.random.Generator,
) -> tuple[_Batch, _Plan]:
    """One chain per chronic site: same category, next report 2-6 days after the close."""
    batches, plans = [], []
    for code in codes:
        site = geo.index(code)
        members, weights = catalog.pools.get(int(geo.layer[site]), catalog.pools[-1])
        cat = int(rng.choice(members, p=weights))
        steps = budget // len(codes)
        plan = _plan(np.full(steps, catalog.deadline_s[cat]), rng, terminal=False)
        cycle = plan.close + rng.uniform(2 * _DAY, 6 * _DAY, steps)
        rep = rng.uniform(0.0, 10 * _DAY) + np.concatenate([[0.0], np.cumsum(cycle)])[:steps]
        keep = rep < span
        x, y = sample_in_polygons(geo.sites, np.full(int(keep.sum()), site, np.intp), rng)
        batches.append(_batch(x, y, rep[keep], cat))
        plans.append(_Plan(*(getattr(plan, f.name)[keep] for f in fields(_Plan))))
    return _concat(batches), _concat(plans)


def _concat(parts: list[_Parts]) -> _Parts:
    """Concatenate the arrays of same-typed batches or plans, field by field."""
    kind = type(parts[0])
    return kind(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(kind)))


def _context(geo: _Geo, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """Per point: the site it is in or near (-1: none; precedence market > construction >
    compound), whether it is inside that site, and the community it lies in."""
    points = shapely.points(x, y)
    pts, hit = shapely.STRtree(geo.areas).query(points, predicate="within")
    order = np.lexsort((hit, geo.layer[hit], pts))
    first = np.unique(pts[order], return_index=True)[1]
    site = np.full(x.size, -1, dtype=np.int64)
    site[pts[order][first]] = hit[order][first]
    near = site >= 0
    inside = np.zeros(x.size, dtype=np.int64)
    inside[near] = shapely.contains_xy(geo.sites[site[near]], x[near], y[near])
    pts, hit = shapely.STRtree(geo.communities).query(points, predicate="intersects")
    community = np.zeros(x.size, dtype=np.int64)
    community[pts] = hit
    return site, inside, community


def _descriptions(
    geo: _Geo, catalog: _Catalog, cat: IntArray, context: tuple[IntArray, IntArray, IntArray],
    rng: np.random.Generator,
) -> NDArray[np.object_]:
    """Short texts such as ``华池农贸市场周边，占道经营``, built once per distinct combination."""
    site, inside, community = context
    phrase = rng.integers(0, len(_PHRASES), cat.size)
    n_site_places = 2 * len(geo.codes)
    place = np.where(site >= 0, 2 * site + inside,
                     n_site_places + community * len(_PHRASES) + phrase)
    labels = [f"{name}{where}" for name in geo.names for where in ("周边", "内")]
    labels += [f"{name}{p}" for name in geo.community_names for p in _PHRASES]
    n_places = len(labels)
    unique, inverse = np.unique(cat * n_places + place, return_inverse=True)
    texts = np.array([labels[k % n_places] + "，" + catalog.names[k // n_places] for k in unique],
                     dtype=object)
    return texts[inverse]


def _times(t0: pd.Timestamp, seconds: FloatArray) -> pd.Series:
    """Seconds after ``t0`` (NaN: not reached) as tz-aware times in ``t0``'s zone."""
    base = t0.tz_convert("UTC").tz_localize(None).to_datetime64()
    whole = np.floor(np.nan_to_num(seconds)).astype("timedelta64[s]")
    values = np.where(np.isnan(seconds), np.datetime64("NaT"), base + whole)
    index = pd.DatetimeIndex(values.astype("datetime64[us]")).tz_localize("UTC")
    return pd.Series(index.tz_convert(t0.tz))


def _local(moment: datetime, zone: tzinfo) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(zone) if stamp.tzinfo is None else stamp.tz_convert(zone)


def _points(
    district: DemoDistrict, geo: _Geo, catalog: _Catalog, n: int, n_chronic: int,
    t0: pd.Timestamp, span: float, rng: np.random.Generator,
) -> _Batch:
    """Hotspot, rebound and background points (chronic chains come separately)."""
    counts = [int(n * share) for share in _SHARES[:4]]
    markets = [geo.sites[geo.index(c)] for c in district.hotspot_markets]
    back_street = gpd.GeoSeries([district.back_street], crs=WGS84).to_crs(METRIC_CRS).iloc[0]
    rebound = geo.index(district.rebound_site)
    rx, ry = sample_in_polygons(geo.areas, np.full(counts[3], rebound, np.intp), rng)
    members, weights = catalog.pools.get(_LAYERS.index("old_compound"), catalog.pools[-1])
    return _concat([
        _cluster(shapely.centroid(markets[0]), geo, counts[0], span, rng),
        _cluster(shapely.centroid(markets[1]), geo, counts[1], span, rng),
        _street_line(back_street, counts[2], span, rng),
        _Batch(rx, ry, _rebound_times(t0, span, counts[3], rng),
               rng.choice(members, counts[3], p=weights)),
        _background(geo, n - sum(counts) - n_chronic, span, rng),
    ])


def generate_issues(
    district: DemoDistrict, categories: pd.DataFrame, n: int, *, seed: int,
    start: datetime, end: datetime, now: datetime, zone: tzinfo,
) -> pd.DataFrame:
    """Generate ``n`` demo issues over the district with planted patterns.

    Parameters
    ----------
    district : DemoDistrict
        From :func:`geo.demo.generate_district`.
    categories : pandas.DataFrame
        The category catalog: ``code``, ``site_layer`` (a site layer or missing for general
        categories), ``deadline_hours``; ``name_zh`` is used in descriptions when present.
    n : int
        Number of issues, per street for a district of several streets (where
        :data:`BORDER_SHARE` of each street's lie on its borders with its neighbours).
    seed : int
        Seed for :func:`numpy.random.default_rng`; the same seed gives an identical frame.
    start, end, now : datetime.datetime
        Issues are reported between ``start`` and ``min(end, now)``; lifecycles are as seen
        at ``now``. Naive values are taken as local time in ``zone``.
    zone : datetime.tzinfo
        The district's time zone, e.g. ``zoneinfo.ZoneInfo("Asia/Shanghai")``.

    Returns
    -------
    pandas.DataFrame
        One row per issue, sorted by ``reported_at``: ``category``, ``lon``, ``lat``
        (WGS84), ``description``, ``source``, ``reported_at``, ``status``, ``assigned_at``,
        ``rectified_at``, ``closed_at`` (tz-aware in ``zone``, NaT where not reached),
        ``rework_count``, ``reporter``.
    """
    rng = np.random.default_rng(seed)
    t0 = _local(start, zone)
    now_s = (_local(now, zone) - t0).total_seconds()
    span = min((_local(end, zone) - t0).total_seconds(), now_s)
    if span <= 0 or n < 0:
        raise ValueError("need start < min(end, now) and n >= 0")
    if not district.streets:
        return _street_issues(district, categories, n, rng, t0, now_s, span)
    # Each street as the one-street demo on its own stream, less its share on the borders.
    on_border = int(n * BORDER_SHARE)
    frames = [_street_issues(part, categories, n - on_border, np.random.default_rng([seed, s]),
                             t0, now_s, span) for s, part in enumerate(district.streets)]
    frames.append(_border_issues(district, categories, on_border * len(district.streets),
                                 np.random.default_rng([seed, len(district.streets)]),
                                 t0, now_s, span))
    frame = pd.concat(frames, ignore_index=True)
    order = np.argsort(frame["reported_at"].to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _street_issues(
    district: DemoDistrict, categories: pd.DataFrame, n: int, rng: np.random.Generator,
    t0: pd.Timestamp, now_s: float, span: float,
) -> pd.DataFrame:
    """The issues of one street (the whole one-street demo): patterns and background."""
    geo = _Geo.build(district)
    catalog = _Catalog.build(categories, rng)
    chronic, chronic_plan = _chronic(geo, district.chronic_sites, catalog,
                                     int(n * _SHARES[4]), span, rng)
    chronic_n = chronic.x.size
    rest = _points(district, geo, catalog, n, chronic_n, t0, span, rng)
    context = _context(geo, rest.x, rest.y)
    rest.cat = np.where(rest.cat >= 0, rest.cat,
                        catalog.pick(np.where(context[0] >= 0, geo.layer[context[0]], -1), rng))
    rest_plan = _plan(catalog.deadline_s[rest.cat], rng, terminal=True)
    batch = _concat([rest, chronic])
    plan = _concat([rest_plan, chronic_plan])
    both = tuple(np.concatenate([c, d]) for c, d in
                 zip(context, _context(geo, chronic.x, chronic.y), strict=True))
    return _frame(geo, catalog, batch, plan, both, t0, now_s, rng)


def border_points(district: DemoDistrict, n: int, rng: np.random.Generator
                  ) -> tuple[FloatArray, FloatArray]:
    """``n`` points (lon, lat) on the borders adjacent streets share, each exactly on one of
    their vertices (a district's community edges have one at least every 25 m), so that the
    point lies on both streets' polygons as stored; borders drawn in proportion to their
    vertices."""
    j = district.jurisdictions
    lines = street_borders(np.asarray(j[j["level"] == "street"].geometry.array, dtype=object))
    if n == 0 or lines.size == 0:
        return np.empty(0), np.empty(0)
    vertices = shapely.get_coordinates(lines)
    pick = rng.integers(0, len(vertices), n)
    return vertices[pick, 0], vertices[pick, 1]


def _border_issues(
    district: DemoDistrict, categories: pd.DataFrame, n: int, rng: np.random.Generator,
    t0: pd.Timestamp, now_s: float, span: float,
) -> pd.DataFrame:
    """Issues on the streets' shared borders, reported evenly over the period."""
    geo = _Geo.build(district)
    catalog = _Catalog.build(categories, rng)
    lon, lat = border_points(district, n, rng)
    x, y = Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True).transform(lon, lat)
    batch = _batch(np.asarray(x), np.asarray(y), rng.uniform(0.0, span, lon.size))
    context = _context(geo, batch.x, batch.y)
    batch.cat = catalog.pick(np.where(context[0] >= 0, geo.layer[context[0]], -1), rng)
    plan = _plan(catalog.deadline_s[batch.cat], rng, terminal=True)
    return _frame(geo, catalog, batch, plan, context, t0, now_s, rng, lonlat=(lon, lat))


def _frame(
    geo: _Geo, catalog: _Catalog, batch: _Batch, plan: _Plan, context: tuple[IntArray, ...],
    t0: pd.Timestamp, now_s: float, rng: np.random.Generator,
    lonlat: tuple[FloatArray, FloatArray] | None = None,
) -> pd.DataFrame:
    """Assemble the output frame, sorted by report time; ``lonlat`` gives the points' exact
    stored coordinates when a round trip through the metric CRS would move them."""
    lifecycle = _resolve(batch.t, plan, now_s)
    lon, lat = lonlat or Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True).transform(
        batch.x, batch.y)
    site, inside, community = context
    frame = pd.DataFrame({
        "category": np.asarray(catalog.codes, dtype=object)[batch.cat],
        "lon": np.asarray(lon, dtype=np.float64),
        "lat": np.asarray(lat, dtype=np.float64),
        "description": _descriptions(geo, catalog, batch.cat, (site, inside, community), rng),
        "source": np.asarray(SOURCES, dtype=object)[
            rng.choice(len(SOURCES), batch.x.size, p=_SOURCE_P)],
        "reported_at": _times(t0, batch.t),
        "status": np.asarray(STATUSES, dtype=object)[lifecycle["status"]],
        "assigned_at": _times(t0, lifecycle["assigned_at"]),
        "rectified_at": _times(t0, lifecycle["rectified_at"]),
        "closed_at": _times(t0, lifecycle["closed_at"]),
        "rework_count": lifecycle["rework_count"],
        "reporter": np.asarray(_REPORTERS, dtype=object)[
            rng.integers(0, len(_REPORTERS), batch.x.size)],
    })
    order = np.argsort(batch.t, kind="stable")
    return frame.iloc[order].reset_index(drop=True)
