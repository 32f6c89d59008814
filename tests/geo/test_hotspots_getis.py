"""Gi*, p-values and FDR: pinned to esda on a data set libpysal ships, and to hand figures."""

from __future__ import annotations

import geopandas as gpd
import libpysal
import numpy as np
import pytest
import scipy.sparse as sp
import shapely
from esda.getisord import G_Local

from geo.hotspots.binning import h3_grid
from geo.hotspots.getis import (
    classify,
    fdr_adjust,
    gi_star,
    gi_star_z,
    two_sided_p,
)


@pytest.fixture(scope="module")
def columbus() -> tuple[np.ndarray, libpysal.weights.W]:
    """Columbus, Ohio neighbourhood crime (Anselin 1988), bundled in the libpysal wheel."""
    frame = gpd.read_file(libpysal.examples.get_path("columbus.shp"))
    gal = libpysal.io.open(libpysal.examples.get_path("columbus.gal"))
    try:
        weights = gal.read()
    finally:
        gal.close()
    return frame["CRIME"].to_numpy(), weights


def test_z_scores_match_esda_g_local_star_on_columbus(
        columbus: tuple[np.ndarray, libpysal.weights.W]) -> None:
    crime, weights = columbus
    binary_with_self = sp.csr_array(weights.sparse) + sp.eye_array(weights.n)
    ours = gi_star_z(crime, binary_with_self)
    theirs = G_Local(crime, weights, transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert np.abs(ours).max() > 2  # a real pattern, not a trivially flat comparison


def test_integer_counts_give_the_same_z_as_floats(
        columbus: tuple[np.ndarray, libpysal.weights.W]) -> None:
    crime, weights = columbus
    w = sp.csr_array(weights.sparse) + sp.eye_array(weights.n)
    counts = np.round(crime).astype(np.int64)
    np.testing.assert_allclose(gi_star_z(counts, w), gi_star_z(counts.astype(float), w))


def test_p_values_are_two_sided() -> None:
    # z = ±1.96 is significant at 5 % two-sided; a one-sided p would be 0.025.
    np.testing.assert_allclose(two_sided_p(np.array([1.959964, -1.959964])), [0.05, 0.05],
                               atol=1e-6)


def test_no_clustering_flags_about_five_percent_of_cells() -> None:
    rng = np.random.default_rng(3)
    grid = h3_grid(shapely.box(120.60, 31.20, 120.80, 31.40), resolution=9, ring=1)
    rates = []
    for _ in range(20):
        z = gi_star_z(rng.poisson(20.0, grid.size), grid.neighbours)
        rates.append((two_sided_p(z) < 0.05).mean())
    # One-sided p-values would flag ~10 %; neighbouring z-scores are correlated, so allow
    # the sampling spread of 20 maps of ~5,000 cells.
    assert 0.035 < np.mean(rates) < 0.065


def test_benjamini_hochberg_matches_the_hand_computed_example() -> None:
    # sorted p: .005 .01 .03 .04 .5 -> p*n/rank: .025 .025 .05 .05 .5 -> running min from top
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    np.testing.assert_allclose(fdr_adjust(p), [0.025, 0.05, 0.05, 0.025, 0.5])


def test_fdr_keeps_a_strong_planted_hotspot_among_thousands_of_cells() -> None:
    # The trap: 999 permutations give p >= 0.001 > 0.05 / n, so permutation p + FDR drops
    # everything. Analytic p-values keep a strong hotspot.
    grid = h3_grid(shapely.box(120.50, 31.10, 120.90, 31.50), resolution=9, ring=1)
    rng = np.random.default_rng(5)
    counts = rng.poisson(5.0, grid.size).astype(float)
    counts[grid.size // 2] += 400
    result = gi_star(counts, grid.neighbours)
    assert grid.size > 3000
    assert result.gi_bin[grid.size // 2] == 3
    assert result.p_fdr[grid.size // 2] < 0.001 / grid.size * 10


def test_classes_follow_the_confidence_levels_on_adjusted_p() -> None:
    z = np.array([5.0, 2.5, 1.8, -2.5, 0.3])
    p = np.array([0.0005, 0.04, 0.09, 0.02, 0.7])
    assert classify(z, p).tolist() == [3, 2, 1, -2, 0]


def test_the_study_grid_covers_the_whole_area_including_empty_ground() -> None:
    """A grid of only the cells holding reports would give empty ground no say in Gi*."""
    area = shapely.box(120.60, 31.20, 120.70, 31.30)
    grid = h3_grid(area, resolution=9, ring=1)
    covered = shapely.union_all(grid.polygons)
    assert shapely.covers(covered, area)
    rng = np.random.default_rng(1)
    lon = rng.uniform(120.60, 120.62, 500)
    lat = rng.uniform(31.20, 31.22, 500)
    counts = grid.counts(grid.locate(lon, lat))
    assert counts.sum() == 500
    assert (counts == 0).mean() > 0.9
    # Empty neighbours pull an isolated cell's z up against a grid of zeros, as they should;
    # dropping them changes the answer.
    occupied = np.flatnonzero(counts > 0)
    full = gi_star_z(counts, grid.neighbours)[occupied]
    dropped = gi_star_z(counts[occupied], grid.neighbours[occupied][:, occupied])
    assert full.mean() > dropped.mean() + 1

