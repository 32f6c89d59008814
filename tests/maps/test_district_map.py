"""The district map builder: a layer per measure, darker for worse, names escaped, no rate
shown grey."""

from __future__ import annotations

import json
import re
from typing import Any

import shapely

from layers.db.settings import Settings
from maps.district import NO_RATE_COLOUR, DistrictData, StreetFigures, build_district
from maps.page import PageOptions

OPTIONS = PageOptions(zone=Settings().zone, tiles_url=None)


def _street(code: str, x: float, points: float, on_time: float | None,
            name: str = "星湖街道") -> StreetFigures:
    return StreetFigures(code=code, name=name, name_en="Xinghu Sub-district Office",
                         geometry=shapely.box(120.70 + x, 31.30, 120.71 + x, 31.31),
                         issues=10, points_lost=points, on_time_rate=on_time,
                         rework_rate=0.1, points_lost_rank=1 if points > 1 else 2,
                         on_time_rank=None if on_time is None else 1, rework_rank=1)


def _layers(html: str) -> list[list[dict[str, Any]]]:
    """The features of each ranking layer folium embedded (those coloured by a measure, not
    the names' outlines), in the order they were added."""
    decoder = json.JSONDecoder()
    layers = [decoder.raw_decode(html, m.end())[0]["features"]
              for m in re.finditer(r"geo_json_\w+_add\(", html)]
    return [f for f in layers if f and "colour" in f[0]["properties"]]


def _names(html: str) -> list[str]:
    return [str(f["properties"]["name"]) for layer in _layers(html) for f in layer]


def test_one_layer_per_measure_the_chosen_one_shown() -> None:
    data = DistrictData(streets=[_street("S1", 0.0, 5.0, 0.8), _street("S2", 0.01, 1.0, 0.9)])
    page = build_district(data, OPTIONS, measure="on_time_rate").get_root().render()
    for layer in ("街道排名: 失分", "街道排名: 按期办结率", "街道排名: 返工率"):
        assert json.dumps(layer)[1:-1] in page  # the layer switcher's names, as JSON
    assert 'selected>按期办结率' in page
    links = {str(f["properties"]["link"]) for layer in _layers(page) for f in layer}
    assert any('href="/maps/overview?street=S1&amp;lang=zh"' in link for link in links)
    assert len(_layers(page)) == 3 and set(_names(page)) == {"星湖街道"}


def test_worse_is_darker_and_no_rate_is_grey() -> None:
    data = DistrictData(streets=[_street("S1", 0.0, 5.0, 0.8), _street("S2", 0.01, 1.0, None)])
    page = build_district(data, OPTIONS).get_root().render()
    points, on_time, _ = ([str(f["properties"]["colour"]) for f in layer]
                          for layer in _layers(page))
    # S1 lost more points: the darkest colour; S2 the lightest. S2 has no on-time rate: grey.
    assert points[0].lower().startswith("#67000d") and points[1].lower().startswith("#fff5f0")
    assert on_time[1] == NO_RATE_COLOUR


def test_street_names_are_escaped() -> None:
    evil = '<img src=x onerror="alert(1)">'
    data = DistrictData(streets=[_street("S1", 0.0, 5.0, 0.8, name=evil)])
    page = build_district(data, OPTIONS).get_root().render()
    assert evil not in page and "onerror=\\\"alert" not in page
    assert set(_names(page)) == {'&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'}
