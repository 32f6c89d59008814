"""Hotspot analyses as analysis snapshots: one result store for the REST routes and the
hotspot page.

Each analysis and its parameters name one snapshot (layers/analysis/snapshots.py, table
``analysis_snapshot``), stored with the data version it was computed from: the Gi* cells and
hot areas of a query (one run gives both), the emerging hotspots of a query in steps of some
days, the chronic sites, DBSCAN clusters. The hotspot page asks for the snapshots of the
default parameters (:data:`layers.analysis.hotspots.DEFAULTS`), and so does a REST request
without parameters: what one computed serves the other, survives restarts and is shared by
every server process. Those default snapshots are landing views (never evicted, kept
current by the refresher); any other parameters make an ad-hoc snapshot, evicted after
:data:`layers.analysis.snapshots.KEEP` newer ones.

Payloads are the REST routes' GeoJSON features (with None fields, which the routes leave
out) and chronic rows, as JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import psycopg
from pydantic import TypeAdapter

from api.schemas.hotspots import ChronicSite, HotspotFeature
from api.services.hotspot_features import (
    area_features,
    cell_features,
    cluster_features,
    emerging_features,
)
from geo.assign import Assigner
from geo.hotspots.budget import Limits
from layers.analysis import hotspots
from layers.analysis.hotspot_records import ChronicPair
from layers.analysis.hotspots import DEFAULTS, HotspotQuery
from layers.analysis.snapshots import Spec, adhoc
from layers.assignment import AssignerCache

Conn = psycopg.Connection[Any]
AssignerOf = Callable[[Conn], Assigner]
# The payload's format is part of every key: a snapshot stored in an older format is never
# read as a newer one.
FORMAT = "v1"
# Keys longer than this (many categories) are hashed: a primary key must stay well under
# PostgreSQL's index row limit.
MAX_KEY = 200
_SITES = TypeAdapter(list[ChronicSite])


def cached_assigner(cache: AssignerCache) -> AssignerOf:
    """The app's cached engine of the ground the caller sees (a street-scoped caller's
    analyses cover its street: AssignerCache.view), read on the connection a computation runs
    on (loading it afresh costs 0.16 s at the demo's size)."""
    def assigner_of(conn: Conn) -> Assigner:
        return cache.view(conn)
    return assigner_of


def query_key(query: HotspotQuery) -> str:
    """Everything in ``query`` that changes a result, as text."""
    ends = [t.isoformat() if t else "" for t in (query.since, query.until)]
    return ":".join([query.method, str(query.resolution), str(query.ring), f"{query.cell_m:g}",
                     *ends, ",".join(query.categories), query.layer or "", query.normalise,
                     str(query.confidence), query.level])


def _spec(analysis: str, parts: list[Any], compute: Callable[[Conn], Any],
          landing: bool) -> Spec:
    text = ":".join(str(p) for p in parts)
    if len(text) > MAX_KEY:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    key = f"hotspots-{analysis}:{FORMAT}:{text}"
    return Spec(key, compute) if landing else adhoc(key, compute)


def _dump(features: list[HotspotFeature]) -> list[dict[str, Any]]:
    # Every field kept (None too), so that the page can read the features back as models.
    return [f.model_dump(mode="json") for f in features]


def without_none(value: Any) -> Any:
    """``value`` with None dropped from every mapping in it, as the routes answered before
    results were stored (pydantic's ``exclude_none``)."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def gi_spec(query: HotspotQuery, assigner_of: AssignerOf, limit: Limits | None = None
            ) -> Spec:
    """Gi* cells and merged hot areas of ``query``: ``{"cells": [...], "areas": [...]}``."""
    def compute(conn: Conn) -> dict[str, Any]:
        result = hotspots.hotspots(conn, assigner_of(conn), query, limit)
        jurisdictions, units = hotspots.names(conn)
        return {"cells": _dump(cell_features(result.cells)),
                "areas": _dump(area_features(result.areas, jurisdictions, units))}

    return _spec("gi", [query_key(query)], compute, query == HotspotQuery())


def emerging_spec(query: HotspotQuery, assigner_of: AssignerOf, *,
                  step_days: float = DEFAULTS.step_days,
                  time_window: int = DEFAULTS.time_window, all_cells: bool = False,
                  limit: Limits | None = None) -> Spec:
    """Emerging hotspots of ``query`` in ``step_days`` steps: a list of features (every
    cell with ``all_cells``, else those with a pattern or a rebound)."""
    def compute(conn: Conn) -> list[dict[str, Any]]:
        found = hotspots.emerging(conn, assigner_of(conn), query, step_days=step_days,
                                  time_window=time_window, limit=limit)
        return _dump(emerging_features(found, include_none=all_cells))

    landing = (query == HotspotQuery() and step_days == DEFAULTS.step_days
               and time_window == DEFAULTS.time_window and not all_cells)
    return _spec("emerging", [query_key(query), f"{step_days:g}", time_window, all_cells],
                 compute, landing)


def chronic_spec(query: HotspotQuery, *, window_days: int = DEFAULTS.chronic_window_days,
                 min_recurrences: int | None = None) -> Spec:
    """Chronic sites of ``query``, ranked: a list of :class:`ChronicSite` rows."""
    def compute(conn: Conn) -> list[dict[str, Any]]:
        ranked = hotspots.chronic(conn, query, window_days=window_days,
                                  min_recurrences=min_recurrences)
        rows: list[dict[str, Any]] = _SITES.dump_python(_chronic_rows(ranked), mode="json")
        return rows

    landing = (query == HotspotQuery() and window_days == DEFAULTS.chronic_window_days
               and min_recurrences is None)
    return _spec("chronic", [query_key(query), str(window_days), min_recurrences],
                 compute, landing)


def _chronic_rows(ranked: list[ChronicPair]) -> list[ChronicSite]:
    # A site without a code, or deleted since, is null (it read "None" before).
    return [ChronicSite(
        rank=i + 1, site=r.code, name=r.name, layer=r.layer,
        category=r.category, recurrences=r.recurrences, issues=r.issues,
        share=round(r.share, 4), site_recurrences=r.site_recurrences,
        first_reported=r.first_reported.isoformat(),
        last_reported=r.last_reported.isoformat())
        for i, r in enumerate(ranked)]


def cluster_spec(query: HotspotQuery, assigner_of: AssignerOf, *,
                 eps_m: float = DEFAULTS.eps_m, min_reports: int = DEFAULTS.min_reports,
                 limit: Limits | None = None) -> Spec:
    """DBSCAN clusters of ``query``'s single reports: a list of features."""
    def compute(conn: Conn) -> list[dict[str, Any]]:
        return _dump(cluster_features(hotspots.clusters(
            conn, assigner_of(conn), query, eps_m=eps_m, min_reports=min_reports,
            limit=limit)))

    return _spec("clusters", [query_key(query), f"{eps_m:g}", min_reports], compute, False)


def landing_specs(assigner_of: AssignerOf) -> list[Spec]:
    """The hotspot page's snapshots (the default analyses), for the refresher."""
    query = HotspotQuery()
    return [gi_spec(query, assigner_of), emerging_spec(query, assigner_of),
            chronic_spec(query)]
