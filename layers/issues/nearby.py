"""What the field report page asks about a position: the nearest site, and the catalog ordered
so that the categories of that site's layer come first.

An inspector standing at a market wants the market's problems at the top of the list, not
alphabetical codes. "Nearest" counts a site's surroundings buffer (市场及周边): a point within
a market's buffer is at distance 0 from it, as the assignment engine would link it there.
Only sites within ``SEARCH_M`` count; farther away, no site is suggested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from layers.vocab import CampaignAction

SEARCH_M = 300.0


@dataclass(frozen=True)
class NearestSite:
    """The site nearest to a position, its layer named."""

    code: str | None  # a site may have no code
    name: str
    layer: str
    layer_zh: str
    layer_en: str
    distance_m: float  # from the site's outline (0 inside)
    beyond_m: float  # beyond its surroundings buffer (0 within it): what ranks the sites


@dataclass(frozen=True)
class SuggestedCategory:
    """An active category; ``relevant`` when it concerns the nearest site's layer."""

    code: str
    name_zh: str
    name_en: str
    site_layer: str | None
    relevant: bool
    campaign_action: CampaignAction | None = None

# geography distances are metres on the spheroid: exact enough to rank sites a street apart.
_NEAREST = """
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g)
    SELECT s.code, s.name, s.layer, l.name_zh AS layer_zh, l.name_en AS layer_en,
           ST_Distance(s.geom::geography, here.g) AS distance_m,
           greatest(ST_Distance(s.geom::geography, here.g) - s.buffer_m, 0) AS beyond_m
    FROM site s JOIN site_layer l ON l.code = s.layer, here
    WHERE ST_DWithin(s.geom::geography, here.g, %(search)s + s.buffer_m)
    ORDER BY beyond_m, distance_m, s.code
    LIMIT 1"""

_CATEGORIES = """
    SELECT code, name_zh, name_en, site_layer,
           site_layer IS NOT DISTINCT FROM %(layer)s AND %(layer)s IS NOT NULL AS relevant,
           campaign_action
    FROM category WHERE active
    -- the site's layer first, then the city-wide categories (no layer), then other layers
    ORDER BY relevant DESC, site_layer IS NOT NULL, site_layer, code"""


def nearest_site(conn: psycopg.Connection[Any], lon: float, lat: float,
                 search_m: float = SEARCH_M) -> NearestSite | None:
    """The site nearest to (lon, lat) in WGS84, buffer counted, within ``search_m``; or None."""
    with conn.cursor(row_factory=class_row(NearestSite)) as cur:
        return cur.execute(_NEAREST, {"lon": lon, "lat": lat, "search": search_m}).fetchone()


def categories_for(conn: psycopg.Connection[Any], layer: str | None
                   ) -> list[SuggestedCategory]:
    """Active categories, those of ``layer`` first (flagged ``relevant``), then city-wide."""
    with conn.cursor(row_factory=class_row(SuggestedCategory)) as cur:
        return cur.execute(_CATEGORIES, {"layer": layer}).fetchall()
