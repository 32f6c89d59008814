"""The hotspot map builder: the jurisdictions' names are permanent labels, kept off the hot
cells; the period is shown and offered as on the overview. No database needed."""

from __future__ import annotations

import json
import re

from shapely import Point, box
from shapely.geometry import mapping

from layers.db.settings import Settings
from maps.hotspots import HotspotData, build_hotspots
from maps.page import PageOptions, PeriodMenu
from maps.records import GiCell, Jurisdiction

ZONE = Settings().zone
EVIL = '<img src=x onerror=alert(1)>'
# The community's middle is hot: its label must go elsewhere in it.
HOT = box(120.63, 31.23, 120.67, 31.27)


def _page(community: str = "湖东社区", lang: str = "zh") -> str:
    juris = [Jurisdiction(code="1", name="园区街道", level="street", unit=None,
                          geometry=box(120.6, 31.2, 120.8, 31.4)),
             Jurisdiction(code="11", name=community, level="community", unit="湖东居委会",
                          geometry=box(120.6, 31.2, 120.7, 31.3))]
    cells = [GiCell(geometry=mapping(HOT), count=40, z=4.2, gi_bin=3),
             GiCell(geometry=mapping(box(120.7, 31.3, 120.72, 31.32)), count=0, z=-0.1,
                    gi_bin=0)]
    data = HotspotData(cells=cells, areas=[], emerging=[], chronic=[], sites=[],
                       jurisdictions=juris,
                       period=PeriodMenu(phases=[("attack:2026", "2026 重点攻坚")],
                                         selection={"phase": "attack:2026"},
                                         label="2026 重点攻坚"))
    return str(build_hotspots(data, PageOptions(zone=ZONE, lang=lang, tiles_url=None))
               .get_root().render())


def _labels(page: str) -> dict[str, tuple[str, Point]]:
    """Each label's level -> (its markup, where it is drawn)."""
    found = {}
    for match in re.finditer(r"L\.marker\(\s*\[([-\d.]+), ([-\d.]+)\]", page):
        icon = re.search(r'"html": ', page[match.end():])
        assert icon is not None
        markup, _ = json.JSONDecoder().raw_decode(page, match.end() + icon.end())
        level = re.search(r"sw-label-(\w+)", markup)
        if level:
            found[level.group(1)] = (markup, Point(float(match[2]), float(match[1])))
    return found


def test_community_label_is_inside_its_ground_and_off_the_hot_cells() -> None:
    labels = _labels(_page())
    markup, at = labels["community"]
    assert ">湖东社区</div>" in markup and "text-shadow" in markup
    assert box(120.6, 31.2, 120.7, 31.3).contains(at) and not HOT.intersects(at)
    street, top = labels["street"]
    assert ">园区街道</div>" in street and top.y == 31.4


def test_labels_are_escaped_and_the_period_is_shown_and_selected() -> None:
    page = _page(EVIL, lang="en")
    markup = _labels(page)["community"][0]  # decoded from the page's script
    assert "&lt;img src=x" in markup and "<img" not in markup
    assert "Period: 2026 重点攻坚" in page  # the label comes in the page's language
    assert '<option value="attack:2026" selected>' in page
