"""The assignment engine's rules at borders, holes, gaps, buffers and overlaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
from shapely import box

from geo.assign import NONE, Assigner

# Units
STREET_U, C1_U, C2_U, C3_U, C4_U, CG, JS, X, Y, Z = 1, 11, 12, 13, 14, 21, 22, 31, 32, 33
HOLE = box(120.710, 31.320, 120.712, 31.322)


def _assigner(rules: list[tuple[str | None, int | None, int | None, int, int]] | None = None
              ) -> Assigner:
    jurisdictions = pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6, 7],
        "code": ["S", "C1", "C2", "C3", "C4", "C1-a", "C1-b"],
        "level": ["street", "community", "community", "community", "community", "grid",
                  "grid"],
        "parent_id": [None, 1, 1, 1, 1, 2, 2],
        "unit_id": [STREET_U, C1_U, C2_U, C3_U, C4_U, C1_U, C1_U],
        "geometry": [
            box(120.68, 31.29, 120.72, 31.33).difference(HOLE),
            box(120.68, 31.29, 120.70, 31.31),
            box(120.70, 31.29, 120.72, 31.31),
            # C3 stops short of x=120.70: a strip of street covered by no community (a gap).
            box(120.68, 31.31, 120.699, 31.33),
            box(120.70, 31.31, 120.72, 31.33).difference(HOLE),
            box(120.68, 31.29, 120.69, 31.31),
            box(120.69, 31.29, 120.70, 31.31),
        ],
    })
    sites = pd.DataFrame({
        "id": [101, 102, 103, 104],
        "layer": ["market", "old_compound", "old_compound", "construction_site"],
        "unit_id": [C1_U, C2_U, C2_U, C1_U],
        "buffer_m": [100.0, 0.0, 0.0, 50.0],
        "geometry": [box(120.685, 31.295, 120.686, 31.296),
                     box(120.705, 31.295, 120.708, 31.298),
                     box(120.706, 31.296, 120.707, 31.297),
                     box(120.690, 31.300, 120.692, 31.302)],
    })
    categories = pd.DataFrame({
        "code": ["MKT-01", "CON-03", "CMP-01", "CTY-05"],
        "site_layer": ["market", "construction_site", "old_compound", None],
        "functional_unit_id": [CG, JS, None, CG],
    })
    rule_rows = rules or []
    precedence = [(300 if s else 200 if j else 100) + (10 if c else 0)
                  for c, j, s, _, _ in rule_rows]
    return Assigner.build(jurisdictions, sites, pd.DataFrame({
        "category_code": [r[0] for r in rule_rows],
        "jurisdiction_id": [r[1] for r in rule_rows],
        "site_id": [r[2] for r in rule_rows],
        "unit_id": [r[3] for r in rule_rows],
        "precedence": precedence,
    }, dtype=object), categories)


def _one(assigner: Assigner, lon: float, lat: float, category: str = "CTY-05") -> pd.Series:
    return assigner.assign(np.array([lon]), np.array([lat]), [category]).iloc[0]


def _east_of(lon: float, lat: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` east of (lon, lat), measured as the engine does (UTM 51N)."""
    utm = pyproj.Transformer.from_crs(4326, 32651, always_xy=True)
    x, y = utm.transform(lon, lat)
    back = utm.transform(x + metres, y, direction="INVERSE")
    return float(back[0]), float(back[1])


def test_interior_point_goes_to_the_finest_level() -> None:
    row = _one(_assigner(), 120.685, 31.305)
    assert row["jurisdiction_id"] == 6  # grid C1-a, not community C1 or the street
    assert row["territorial_unit_id"] == C1_U
    assert not row["on_boundary"] and not row["outside_all"]


def test_point_on_a_shared_border_goes_to_the_smallest_code_and_is_flagged() -> None:
    row = _one(_assigner(), 120.70, 31.30)  # on the C1|C2 edge (grid C1-b also touches)
    # C1-b is the only grid there, so the finest level is the grid and it is on its edge.
    assert row["jurisdiction_id"] == 7
    assert row["on_boundary"]


def test_point_on_a_community_border_without_grids() -> None:
    row = _one(_assigner(), 120.71, 31.31)  # on the C2|C4 edge, no grids there
    assert row["jurisdiction_id"] == 3  # C2 < C4
    assert row["territorial_unit_id"] == C2_U
    assert row["on_boundary"]


def test_vertex_shared_by_three_polygons() -> None:
    row = _one(_assigner(), 120.70, 31.31)  # corner of C1-b, C2 and C4
    assert row["jurisdiction_id"] == 7  # the grid C1-b is the finest polygon there
    assert row["on_boundary"]


def test_gap_between_communities_goes_to_the_street() -> None:
    row = _one(_assigner(), 120.6995, 31.32)
    assert row["jurisdiction_id"] == 1
    assert row["territorial_unit_id"] == STREET_U
    assert not row["outside_all"]


def test_just_outside_the_street_goes_to_the_nearest_within_tolerance() -> None:
    lon, lat = _east_of(120.72, 31.30, 30.0)
    row = _one(_assigner(), lon, lat)
    assert row["jurisdiction_id"] == 3  # C2 is the nearest community
    assert row["outside_all"]
    far = _one(_assigner(), *_east_of(120.72, 31.30, 80.0))
    assert far["jurisdiction_id"] == NONE
    assert far["outside_all"]
    assert far["lead_unit_id"] == CG  # the category's department still leads


def test_inside_a_hole() -> None:
    centre = _one(_assigner(), 120.711, 31.321)  # ~95 m from the hole's edge
    assert centre["jurisdiction_id"] == NONE
    assert centre["outside_all"]
    near_edge = _one(_assigner(), 120.7101, 31.321)  # ~10 m inside the hole
    assert near_edge["jurisdiction_id"] == 5
    assert near_edge["outside_all"]


def test_inside_two_overlapping_sites_the_smaller_wins() -> None:
    row = _one(_assigner(), 120.7065, 31.2965, "CMP-01")
    assert row["site_id"] == 103
    assert not row["via_buffer"]
    outer = _one(_assigner(), 120.7055, 31.2955, "CMP-01")
    assert outer["site_id"] == 102


def test_buffer_edge_is_inclusive() -> None:
    inside = _one(_assigner(), *_east_of(120.686, 31.2955, 99.9), "MKT-01")
    outside = _one(_assigner(), *_east_of(120.686, 31.2955, 100.1), "MKT-01")
    assert inside["site_id"] == 101
    assert inside["via_buffer"]
    assert outside["site_id"] == NONE
    assert not outside["via_buffer"]


def test_site_linking_is_category_aware() -> None:
    in_market = (120.6855, 31.2955)
    assert _one(_assigner(), *in_market, "MKT-01")["site_id"] == 101
    assert _one(_assigner(), *in_market, "CTY-05")["site_id"] == 101  # any layer
    assert _one(_assigner(), *in_market, "CON-03")["site_id"] == NONE  # not a market problem
    assert _one(_assigner(), *in_market, "CMP-01")["site_id"] == NONE


def test_functional_unit_precedence() -> None:
    rules = [("CTY-05", 1, None, Z, 0), ("CTY-05", 2, None, X, 0), (None, None, 101, Y, 0)]
    assigner = _assigner(rules)
    in_c1 = _one(assigner, 120.695, 31.305)
    in_c2 = _one(assigner, 120.715, 31.305)
    in_market = _one(assigner, 120.6855, 31.2955)
    assert in_c1["functional_unit_id"] == X  # the community's rule beats the street's
    assert in_c2["functional_unit_id"] == Z  # the street's rule
    assert in_market["functional_unit_id"] == Y  # the site's rule beats both
    assert _one(assigner, 120.695, 31.305, "MKT-01")["functional_unit_id"] == CG  # default


def test_lead_unit_is_the_territorial_owner_when_no_department() -> None:
    row = _one(_assigner(), 120.7065, 31.2965, "CMP-01")
    assert row["functional_unit_id"] == NONE
    assert row["lead_unit_id"] == C2_U


def test_bulk_gives_the_same_answer_as_one_at_a_time() -> None:
    assigner = _assigner([("CTY-05", 2, None, X, 0), (None, None, 101, Y, 0)])
    rng = np.random.default_rng(3)
    lon = rng.uniform(120.675, 120.725, 400)
    lat = rng.uniform(31.285, 31.335, 400)
    # put some points exactly on borders and vertices
    lon[:40] = rng.choice([120.69, 120.70, 120.71], 40)
    cats = rng.choice(["MKT-01", "CON-03", "CMP-01", "CTY-05"], 400)
    bulk = assigner.assign(lon, lat, cats)
    single = pd.concat([assigner.assign(lon[i:i + 1], lat[i:i + 1], cats[i:i + 1])
                        for i in range(400)], ignore_index=True)
    pd.testing.assert_frame_equal(bulk, single)


def test_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown categories"):
        _one(_assigner(), 120.685, 31.305, "NOPE-01")


def test_empty_layers_assign_nothing_but_keep_the_department() -> None:
    empty = Assigner.build(
        pd.DataFrame(columns=["id", "code", "level", "parent_id", "unit_id", "geometry"]),
        pd.DataFrame(columns=["id", "layer", "unit_id", "buffer_m", "geometry"]),
        pd.DataFrame(columns=["category_code", "jurisdiction_id", "site_id", "unit_id",
                              "precedence"]),
        pd.DataFrame({"code": ["CTY-05"], "site_layer": [None], "functional_unit_id": [CG]}))
    row = empty.assign(np.array([120.7]), np.array([31.3]), ["CTY-05"]).iloc[0]
    assert row["jurisdiction_id"] == NONE
    assert row["outside_all"]
    assert row["lead_unit_id"] == CG
