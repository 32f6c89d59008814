"""Hotspot results as records: geo's frames read column by column (hotspot_records)."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd
import shapely

from geo.hotspots import CELL_COLUMNS
from geo.hotspots.areas import AREA_COLUMNS
from geo.hotspots.chronic import CHRONIC_COLUMNS
from layers.analysis import hotspot_records
from layers.analysis.hotspot_records import Area, Cell, ChronicPair


def test_the_records_have_exactly_geos_columns() -> None:
    # A column geo adds or renames must be added or renamed in the record too.
    assert [f.name for f in fields(Cell)] == CELL_COLUMNS
    assert [f.name for f in fields(Area)] == AREA_COLUMNS
    site = ["code", "name", "layer"]
    assert [f.name for f in fields(ChronicPair) if f.name not in site] == CHRONIC_COLUMNS


def test_an_area_without_a_unit_has_none_where_the_frame_has_nan() -> None:
    # pandas stores a column of ids with a gap as floats, the gap as NaN.
    square = shapely.box(120.70, 31.30, 120.71, 31.31)
    frame = pd.DataFrame({
        "area_id": [1, 2], "cells": [["a", "b"], ["c"]], "issue_count": [9, 4],
        "peak_z": [4.2, 2.5], "categories": [[("MKT-01", 5)], []],
        "shares": [[(3, 0.75)], []], "outside_share": [0.25, 1.0],
        "jurisdiction_id": [3, None], "territorial_unit_id": [7, None],
        "functional_unit_id": [None, None], "lead_unit_id": [7, None],
        "area_km2": [0.02, 0.01], "geometry": [square, square]})[AREA_COLUMNS]
    first, second = hotspot_records.areas(frame)
    assert (first.jurisdiction_id, first.territorial_unit_id, first.lead_unit_id) == (3, 7, 7)
    assert isinstance(first.jurisdiction_id, int) and first.functional_unit_id is None
    assert (second.jurisdiction_id, second.lead_unit_id) == (None, None)
    assert first.shares == [(3, 0.75)] and first.categories == [("MKT-01", 5)]
