"""The preview map builder: old and new lines in two colours, the moving issues coloured by
whether their lead unit changes, names escaped, a note when the issues drawn are capped. No
database needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shapely import box
from shapely.geometry import mapping

from layers.db.settings import Settings
from maps.page import PageOptions
from maps.revision_preview import (
    HANDED_OVER,
    NEW_COLOUR,
    OLD_COLOUR,
    SAME_UNIT,
    PreviewData,
    PreviewLine,
    PreviewMove,
    UnitSwing,
    build_preview,
)

EVIL = "<script>window.pwned=1</script>"


def _page(changed: int = 2, lang: str = "zh") -> str:
    moves = [PreviewMove("SW0000001", 120.705, 31.305, "CMP-03", "E", "W", "CE", "CW", 0.2),
             PreviewMove("SW0000002", 120.706, 31.305, "CMP-03", "W", "W", "G1", "G2", 0.2)]
    data = PreviewData(
        source="新网格.geojson", table="jurisdiction",
        created_at=datetime(2026, 11, 30, 5, 0, tzinfo=UTC),
        expires_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC), examined=5, changed=changed,
        lead_changed=1, points_moved=0.2,
        units=[UnitSwing("W", "湖西社区", 1, 0, 0.2, 0.0), UnitSwing("E", EVIL, 0, 1, 0.0, 0.2)],
        old_lines=[PreviewLine("CW", "湖西", mapping(box(120.70, 31.30, 120.71, 31.31)))],
        new_lines=[PreviewLine("CW", EVIL, mapping(box(120.70, 31.30, 120.714, 31.31))),
                   PreviewLine("M1", "菜场", {"type": "Point", "coordinates": [120.705, 31.305]})],
        moves=moves, unit_names={"E": EVIL, "W": "湖西社区"})
    return str(build_preview(data, PageOptions(zone=Settings().zone, lang=lang,
                                               tiles_url=None)).get_root().render())


def test_both_line_layers_and_the_moves_in_their_colours() -> None:
    page = _page()
    for name in ("现行界线", "导入文件界线", "将变动的问题"):
        assert f"{json.dumps(name)} : feature_group_" in page  # a layer of the switcher
    for colour in (OLD_COLOUR, NEW_COLOUR, HANDED_OVER, SAME_UNIT):
        assert colour in page
    assert '"dashArray": "6 4"' in page  # the file's lines are dashed
    # Points of every layer are rings (Leaflet's default pin is an image the page lacks).
    assert page.count("_pointToLayer(feature, latlng) {") == 3
    assert "2026-11-30 13:00" in page  # made at, in the district's time


def test_names_are_escaped_everywhere() -> None:
    page = _page()
    assert "<script>window.pwned" not in page
    assert "&lt;script&gt;window.pwned" in page  # the legend's unit name


def test_a_capped_drawing_says_so() -> None:
    assert "图上显示 2 个，共 9000 个" in _page(changed=9000)
    assert "2 of 9000 shown on the map" in _page(changed=9000, lang="en")
    assert "图上显示 2 个" not in _page()  # (the words alone are in the page's labels)
