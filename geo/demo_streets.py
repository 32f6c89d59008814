"""The district level of the demo (``sitewatch demo --streets N``): street names, community
names enough for twenty streets, communities grouped into contiguous streets, and the borders
adjacent streets share.

The district is tiled into communities once (:func:`geo.demo.generate_district`), so two
communities on either side of a street border share identical edges; a street is the union of
the communities :func:`group_streets` gives it, so adjacent streets share their border vertex
for vertex.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
GeomArray = NDArray[np.object_]

#: The district's division code (苏州工业园区 in the demo); streets are ``{DISTRICT}001`` ...
DISTRICT_CODE = "320571"
MAX_STREETS = 20
#: Street names (Chinese, pinyin); the first is the one-street demo's 星湖街道.
STREET_NAMES = (
    ("星湖", "Xinghu"), ("云帆", "Yunfan"), ("碧波", "Bibo"), ("凤凰", "Fenghuang"),
    ("清源", "Qingyuan"), ("白鹭", "Bailu"), ("丹桂", "Dangui"), ("临湖", "Linhu"),
    ("银杏", "Yinxing"), ("长风", "Changfeng"), ("晓阳", "Xiaoyang"), ("锦溪", "Jinxi"),
    ("松涛", "Songtao"), ("明月", "Mingyue"), ("澄湾", "Chengwan"), ("紫荆", "Zijing"),
    ("春申", "Chunshen"), ("望亭", "Wangting"), ("枫林", "Fenglin"), ("翠屏", "Cuiping"),
)
_FIRST = (("金", "Jin"), ("玉", "Yu"), ("翠", "Cui"), ("青", "Qing"), ("东", "Dong"),
          ("西", "Xi"), ("南", "Nan"), ("北", "Bei"), ("新", "Xin"), ("景", "Jing"),
          ("锦", "Jin"), ("华", "Hua"), ("瑞", "Rui"), ("康", "Kang"), ("永", "Yong"),
          ("和", "He"), ("泰", "Tai"), ("文", "Wen"), ("胜", "Sheng"), ("桃", "Tao"))
_SECOND = (("湖", "hu"), ("苑", "yuan"), ("桥", "qiao"), ("港", "gang"), ("塘", "tang"),
           ("湾", "wan"), ("庄", "zhuang"), ("浜", "bang"), ("泾", "jing"), ("溪", "xi"),
           ("林", "lin"), ("河", "he"), ("亭", "ting"), ("坊", "fang"), ("洲", "zhou"),
           ("埠", "bu"))
# Communities share an edge only when it is longer than this (metres): cells meeting at a
# corner are not neighbours, or a street could be two blocks joined at a point.
_EDGE_M = 1.0


def street_code(index: int) -> str:
    """The administrative code of street ``index`` (0-based): ``320571001``, ``320571002``...

    >>> street_code(0), street_code(19)
    ('320571001', '320571020')
    """
    return f"{DISTRICT_CODE}{index + 1:03d}"


def community_names(k: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``k`` distinct two-character community names (Chinese, pinyin), e.g. ``('金湖', 'Jinhu')``.

    >>> names = community_names(300, np.random.default_rng(1))
    >>> len(set(names)) == 300 and all(len(zh) == 2 for zh, _ in names)
    True
    """
    pool = [(a + b, ea + eb) for a, ea in _FIRST for b, eb in _SECOND]
    if k > len(pool):
        raise ValueError(f"at most {len(pool)} community names")
    return [pool[i] for i in rng.permutation(len(pool))[:k]]


def _neighbours(cells: GeomArray) -> list[set[int]]:
    """For each cell, the cells it shares an edge with (not only a corner)."""
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    shared = shapely.length(shapely.intersection(shapely.boundary(cells[left]),
                                                 shapely.boundary(cells[right]))) > _EDGE_M
    out: list[set[int]] = [set() for _ in range(len(cells))]
    for i, j in zip(left[shared], right[shared], strict=True):
        out[int(i)].add(int(j))
        out[int(j)].add(int(i))
    return out


def group_streets(cells: GeomArray, seeds: FloatArray) -> IntArray:
    """Give every cell (community) to one of ``len(seeds)`` streets, each street contiguous.

    Each street starts at the free cell nearest its seed; then, again and again, the street
    of least area that borders a free cell takes the one nearest its seed, so streets grow
    evenly and every street is connected through shared edges.

    >>> blocks = [shapely.box(x, y, x + 10, y + 10) for x in range(0, 40, 10) for y in (0, 10)]
    >>> group_streets(np.array(blocks), np.array([[5.0, 10.0], [35.0, 10.0]])).tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    n, k = len(cells), len(seeds)
    if not 1 <= k <= n:
        raise ValueError("need between one street and one street per cell")
    near = shapely.get_coordinates(shapely.point_on_surface(cells))
    distance = ((near[:, None, :] - seeds[None, :, :]) ** 2).sum(-1)
    area = shapely.area(cells)
    owner = np.full(n, -1, dtype=np.int64)
    size = np.zeros(k)
    for s in range(k):
        first = next(int(i) for i in np.argsort(distance[:, s], kind="stable") if owner[i] < 0)
        owner[first], size[s] = s, area[first]
    neighbours = _neighbours(cells)
    while (owner < 0).any():
        frontier = [{j for i in np.flatnonzero(owner == s) for j in neighbours[i]
                     if owner[j] < 0} for s in range(k)]
        open_streets = [s for s in range(k) if frontier[s]]
        if not open_streets:
            raise ValueError("the cells are not connected through shared edges")
        s = min(open_streets, key=lambda t: (size[t], t))
        j = min(frontier[s], key=lambda c: (distance[c, s], c))
        owner[j], size[s] = s, size[s] + area[j]
    return owner


def street_borders(streets: GeomArray) -> GeomArray:
    """The borders adjacent streets share: one (Multi)LineString per pair of streets with a
    common edge, in the streets' own coordinates (no point-only contacts).

    >>> a, b = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    >>> [g.wkt for g in street_borders(np.array([a, b]))]
    ['LINESTRING (1 0, 1 1)']
    """
    left, right = shapely.STRtree(streets).query(streets, predicate="intersects")
    pairs = left < right
    contacts = shapely.intersection(shapely.boundary(streets[left[pairs]]),
                                    shapely.boundary(streets[right[pairs]]))
    kept: list[Any] = []
    for contact in contacts:
        # An intersection of two rings may mix lines with the points where they only touch.
        parts = shapely.get_parts(shapely.get_parts(contact))
        lines = [p for p in parts if shapely.get_type_id(p) == 1]
        if lines:
            kept.append(shapely.line_merge(shapely.multilinestrings(lines)))
    return np.array(kept, dtype=object)
