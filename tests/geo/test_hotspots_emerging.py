"""Emerging-hotspot categories on constructed series (one per class), Mann-Kendall, rebound."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from geo.hotspots.emerging import (
    bin_times,
    classify_series,
    emerging_hotspots,
    mann_kendall,
    rebounding,
    space_time_weights,
    space_time_z,
    time_steps,
)
from geo.hotspots.getis import gi_star_z

H, C, Q = 1, -1, 0  # hot, cold, quiet
# Ten steps each; trend +1/-1 is a significant increasing/decreasing trend of z.
SERIES = {
    "new": ([Q] * 9 + [H], 0),
    "consecutive": ([Q] * 7 + [H] * 3, 0),
    "intensifying": ([H] * 10, 1),
    "persistent": ([H] * 10, 0),
    "diminishing": ([H] * 10, -1),
    "sporadic": ([Q, H, Q, Q, H, H, Q, Q, Q, H], 0),
    "oscillating": ([C, Q, H, Q, C, Q, Q, Q, Q, H], 0),
    "historical": ([H] * 9 + [Q], 0),
    "": ([Q] * 10, 0),
}


@pytest.mark.parametrize("expected", list(SERIES))
def test_each_hot_category_on_a_constructed_series(expected: str) -> None:
    row, trend = SERIES[expected]
    got = classify_series(np.array([row], np.int8), np.array([trend], float))
    assert got.tolist() == [expected]


def test_mann_kendall_agrees_with_kendalls_s_and_counts_ties() -> None:
    rng = np.random.default_rng(0)
    series = rng.normal(size=(5, 12))
    z, _ = mann_kendall(series)
    n = 12
    for row, value in zip(series, z, strict=True):
        tau = stats.kendalltau(np.arange(n), row).statistic
        s = tau * n * (n - 1) / 2
        var = n * (n - 1) * (2 * n + 5) / 18
        assert value == pytest.approx((s - np.sign(s)) / np.sqrt(var))
    # Ties: [1, 1, 2, 3] has S = 5 and Var = (4*3*13 - 2*1*9) / 18 = 7.667.
    z_tied, _ = mann_kendall(np.array([[1.0, 1.0, 2.0, 3.0]]))
    assert z_tied[0] == pytest.approx(4 / np.sqrt(138 / 18))


def test_rebound_needs_a_hot_run_a_cleared_gap_and_a_new_hot_run() -> None:
    rows = np.array([
        [H, H, H, Q, Q, Q, Q, H, H, H],  # hot, cleared, hot again: a rebound
        [H, H, H, Q, Q, Q, Q, Q, Q, H],  # a single final hot step: noise
        [H, Q, H, Q, H, Q, Q, H, H, H],  # never cleared for three steps
        [H, H, H, H, H, H, H, H, H, H],  # never cleared
    ], np.int8)
    assert rebounding(rows).tolist() == [True, False, False, False]


def test_a_cleared_cell_that_turns_hot_again_is_found_in_a_cube() -> None:
    # Thirty cells in a row (path graph), 18 steps; cell 15 is busy, quiet for 6 steps, busy.
    n, steps = 30, 18
    spatial = sp.csr_array(sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n)))
    rng = np.random.default_rng(2)
    cube = rng.poisson(5.0, (n, steps)).astype(float)
    cube[15, :6] += 40
    cube[15, 12:] += 40
    found = emerging_hotspots(cube, spatial)
    # Gi* sums the neighbourhood, so the busy cell's two neighbours rebound with it.
    assert np.flatnonzero(found.rebounding).tolist() == [14, 15, 16]
    assert found.category[15] == "sporadic hot"
    assert (found.bins[15, 6:12] == 0).all()
    assert (found.category[:13] == "none").all() and (found.category[18:] == "none").all()


def test_time_steps_end_at_the_period_end_and_bin_times() -> None:
    edges, steps = time_steps(0.0, 95.0, 10.0)
    assert steps == 9 and edges[-1] == 95.0 and edges[0] == 5.0
    assert bin_times(np.array([0.0, 5.0, 14.9, 95.0, 96.0]), edges).tolist() == [-1, 0, 0, 8, -1]


@pytest.mark.parametrize(("steps", "time_window"), [(12, 1), (7, 2), (3, 5), (1, 1)])
def test_space_time_z_equals_gi_star_under_the_built_weights(steps: int,
                                                            time_window: int) -> None:
    rng = np.random.default_rng(steps * 10 + time_window)
    n = 60
    near = sp.random(n, n, density=0.08, random_state=rng)
    spatial = sp.csr_array(((near + near.T + sp.eye(n)) > 0).astype(np.float64))
    cube = rng.poisson(rng.uniform(0, 6, (n, 1)), (n, steps)).astype(np.float64)
    built = space_time_weights(spatial, steps, min(time_window, steps - 1))
    want = gi_star_z(cube.T.ravel(), built).reshape(steps, n).T
    got = space_time_z(cube, spatial, time_window)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.abs(got).max() > 1  # not all zero
