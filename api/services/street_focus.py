"""The overview focused on one street (``/maps/overview?street=CODE``, the district map's
link): the street's jurisdictions, its sites, the issue cells and community measures on its
ground, framed on it. A view of the public map, not a permission: the page stays public and
shows public fields only, as the whole district's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import h3
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from layers.errors import NotFound
from layers.views import mapdata
from maps.overview import OverviewData
from maps.records import CellCounts


@dataclass(frozen=True)
class Focus:
    """One street: its code, name, outline and the codes of its own jurisdictions."""

    code: str
    name: str
    outline: BaseGeometry
    codes: frozenset[str]


def find(jurisdictions: Sequence[mapdata.Jurisdiction], code: str) -> Focus:
    """The street ``code`` (a root of the hierarchy) and everything under it; NotFound for
    anything else."""
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
    return Focus(code, street.name, street.geometry, frozenset(codes))


def _cells_in(counts: CellCounts, outline: BaseGeometry) -> CellCounts:
    if not counts.cell:
        return counts
    lat, lng = np.array([h3.cell_to_latlng(c) for c in counts.cell]).T
    keep = [int(i) for i in np.flatnonzero(shapely.contains_xy(outline, lng, lat))]
    return CellCounts(cell=[counts.cell[i] for i in keep],
                      issues=[counts.issues[i] for i in keep],
                      open=[counts.open[i] for i in keep],
                      overdue=[counts.overdue[i] for i in keep])


def focused(data: OverviewData, focus: Focus) -> OverviewData:
    """``data`` with only what lies in the street: its jurisdictions and community measures,
    the sites and H3 cells whose inner point or centre it covers."""
    shapely.prepare(focus.outline)
    inner = shapely.point_on_surface(np.array([s.geometry for s in data.sites], dtype=object))
    covered = np.asarray(shapely.covers(focus.outline, inner), dtype=bool).reshape(-1)
    return replace(
        data,
        jurisdictions=[j for j in data.jurisdictions if j.code in focus.codes],
        sites=[s for s, inside in zip(data.sites, covered, strict=True) if inside],
        cells={res: _cells_in(c, focus.outline) for res, c in data.cells.items()},
        communities=[c for c in data.communities if c.code in focus.codes],
        street=(focus.code, focus.name))
