"""Hot areas: merged cells, split across jurisdictions by known areas, units from the engine;
chronic sites and DBSCAN clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.assign import Assigner
from geo.hotspots import analyse
from geo.hotspots.areas import split_by_jurisdiction
from geo.hotspots.binning import fishnet_grid, h3_grid
from geo.hotspots.chronic import chronic_sites
from geo.hotspots.clusters import dbscan_labels

WEST = shapely.box(120.70, 31.30, 120.72, 31.32)
EAST = shapely.box(120.72, 31.30, 120.74, 31.32)


def _engine() -> Assigner:
    jurisdictions = pd.DataFrame({
        "id": [1, 2, 3], "code": ["S", "SA", "SB"], "level": ["street", "community", "community"],
        "parent_id": [None, 1, 1], "unit_id": [100, 101, 102],
        "geometry": [shapely.union_all([WEST, EAST]), WEST, EAST]})
    sites = pd.DataFrame(columns=["id", "layer", "unit_id", "buffer_m", "geometry"])
    rules = pd.DataFrame(columns=["category_code", "jurisdiction_id", "site_id", "unit_id",
                                  "precedence"])
    categories = pd.DataFrame({"code": ["DUST", "LITTER"], "site_layer": [None, None],
                               "functional_unit_id": [200, None]})
    return Assigner.build(jurisdictions, sites, rules, categories)


def test_split_shares_equal_the_known_overlap_areas() -> None:
    engine = _engine()
    # 30 % of the box west of the border, 70 % east; a second box a quarter outside.
    straddling = shapely.box(120.714, 31.305, 120.734, 31.315)
    poking_out = shapely.box(120.735, 31.305, 120.745, 31.315)
    shares = split_by_jurisdiction(engine, np.array([straddling, poking_out]))
    assert [j for j, _ in shares[0]] == [3, 2]
    assert [s for _, s in shares[0]] == pytest.approx([0.7, 0.3], abs=2e-3)
    assert [j for j, _ in shares[1]] == [3]
    assert shares[1][0][1] == pytest.approx(0.5, abs=2e-3)


def test_a_planted_cluster_becomes_one_area_with_shares_and_units() -> None:
    engine = _engine()
    rng = np.random.default_rng(4)
    lon = np.concatenate([rng.uniform(120.70, 120.74, 2000),
                          rng.normal(120.7215, 0.0015, 600)])
    lat = np.concatenate([rng.uniform(31.30, 31.32, 2000), rng.normal(31.31, 0.0015, 600)])
    category = np.array(["LITTER"] * 2000 + ["DUST"] * 600, dtype=object)
    grid = h3_grid(shapely.union_all([WEST, EAST]), resolution=10, ring=2)
    result = analyse(grid, lon, lat, category, engine)
    assert len(result.areas) == 1
    area = result.areas.iloc[0]
    assert area["categories"][0][0] == "DUST"
    assert {j for j, _ in area["shares"]} == {2, 3}
    assert sum(s for _, s in area["shares"]) + area["outside_share"] == pytest.approx(1.0)
    assert area["functional_unit_id"] == 200 and area["lead_unit_id"] == 200
    assert area["territorial_unit_id"] in (101, 102)
    assert area["issue_count"] >= 400


def test_uniform_reports_give_no_area() -> None:
    engine = _engine()
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(120.70, 120.74, 3000), rng.uniform(31.30, 31.32, 3000)
    grid = fishnet_grid(shapely.union_all([WEST, EAST]), cell_m=150.0, ring=1)
    result = analyse(grid, lon, lat, np.full(3000, "LITTER", dtype=object), engine)
    assert result.areas.empty
    assert result.cells["count"].sum() == 3000


def test_chronic_counts_only_reports_after_a_verified_closure_within_the_window() -> None:
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2026-05-01", tz="Asia/Shanghai")
    # Site 1: six cycles of report, close after 3 days, report again 2 days later.
    reported = [t0 + i * 5 * day for i in range(7)]
    chain = pd.DataFrame({"site_id": 1, "category": "A", "reported_at": reported,
                          "closed_at": [r + 3 * day for r in reported], "status": "verified"})
    # Site 2: reports while the previous one is still open, and one long after closure.
    overlap = pd.DataFrame({"site_id": 2, "category": "A",
                            "reported_at": [t0, t0 + day, t0 + 2 * day, t0 + 60 * day],
                            "closed_at": [t0 + 10 * day] * 3 + [pd.NaT],
                            "status": ["verified"] * 3 + ["reported"]})
    # Site 3: quick recurrences, but after rejections (nothing was closed as fixed).
    rejected = chain.assign(site_id=3, status="rejected")
    ranked = chronic_sites(pd.concat([chain, overlap, rejected]), window_days=14,
                           min_recurrences=1)
    assert ranked[["site_id", "recurrences"]].values.tolist() == [[1, 6]]


def test_a_site_where_many_categories_recur_is_a_hotspot_not_a_chronic_site() -> None:
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2026-05-01")
    rows = []
    for k, category in enumerate("ABCD"):
        for i in range(6):
            r = t0 + (i * 5 + k) * day
            rows.append((1, category, r, r + 3 * day, "verified"))
    frame = pd.DataFrame(rows, columns=["site_id", "category", "reported_at", "closed_at",
                                        "status"])
    assert chronic_sites(frame, min_recurrences=5).empty
    assert len(chronic_sites(frame, min_recurrences=5, min_share=0.2)) == 4


def test_dbscan_separates_a_tight_spot_from_scattered_reports() -> None:
    rng = np.random.default_rng(6)
    lon = np.concatenate([120.71 + rng.normal(0, 0.00005, 30), rng.uniform(120.70, 120.74, 50)])
    lat = np.concatenate([31.31 + rng.normal(0, 0.00005, 30), rng.uniform(31.30, 31.32, 50)])
    labels = dbscan_labels(lon, lat, eps_m=15.0, min_reports=5)
    assert (labels[:30] == 0).all()
    assert (labels[30:] == -1).mean() > 0.9
