"""The overview focused on one street (``/maps/overview?street=CODE``, the district map's
link): the street's jurisdictions, its sites, the issue cells and community measures of its
ground, framed on it. A view of the public map, not a permission: the page stays public and
shows public fields only, as the whole district's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry.base import BaseGeometry

from layers.errors import NotFound
from layers.views import mapdata
from maps.overview import OverviewData


@dataclass(frozen=True)
class Focus:
    """One street: its id, code, name, outline and the codes of its own jurisdictions."""

    id: int
    code: str
    name: str
    outline: BaseGeometry
    codes: frozenset[str]


def find(conn: psycopg.Connection[Any], jurisdictions: Sequence[mapdata.Jurisdiction],
         code: str) -> Focus:
    """The street ``code`` (a root of the hierarchy, one of ``jurisdictions``) and everything
    under it; NotFound for anything else."""
    street = next((j for j in jurisdictions if j.code == code and j.level == "street"
                   and j.parent is None), None)
    if street is None:
        raise NotFound(f"没有街道 {code!r} / no street {code!r}")
    children: dict[str, list[str]] = {}
    for j in jurisdictions:
        if j.parent is not None:
            children.setdefault(j.parent, []).append(j.code)
    codes, todo = {code}, [code]
    while todo:
        for child in children.get(todo.pop(), []):
            codes.add(child)
            todo.append(child)
    return Focus(street_id(conn, code), code, street.name, street.geometry, frozenset(codes))


def street_id(conn: psycopg.Connection[Any], code: str) -> int:
    """The id of the street ``code`` (a root of the hierarchy); NotFound for anything else."""
    row = conn.execute("SELECT id FROM jurisdiction WHERE code = %s AND level = 'street'"
                       " AND parent_id IS NULL", [code]).fetchone()
    if row is None:
        raise NotFound(f"没有街道 {code!r} / no street {code!r}")
    return int(row[0])


def focused(data: OverviewData, focus: Focus) -> OverviewData:
    """``data`` (its cells and community measures already counted from the street's issues
    alone: map_pages.overview_spec) with only what lies in the street: its jurisdictions and
    communities, and the sites whose inner point it covers."""
    shapely.prepare(focus.outline)
    inner = shapely.point_on_surface(np.array([s.geometry for s in data.sites], dtype=object))
    covered = np.asarray(shapely.covers(focus.outline, inner), dtype=bool).reshape(-1)
    return replace(
        data,
        jurisdictions=[j for j in data.jurisdictions if j.code in focus.codes],
        sites=[s for s, inside in zip(data.sites, covered, strict=True) if inside],
        communities=[c for c in data.communities if c.code in focus.codes],
        street=(focus.code, focus.name))
