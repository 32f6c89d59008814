"""layers.supervision.rates: Wilson intervals against published values, and empirical-Bayes
rates that sit between a group's own rate and the overall one, nearer the overall the fewer
its cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from layers.supervision.rates import Prior, beta_binomial_prior, shrunk, wilson

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17,
# Table II, method 3 (score interval without continuity correction), and 0/10, 5/10, 10/10.
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0),
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), NEWCOMBE)
def test_wilson_bounds_are_the_published_ones(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson([x], [n])
    assert (round(float(got_low[0]), 4), round(float(got_high[0]), 4)) == (low, high)


def test_wilson_agrees_with_scipy_for_every_count_up_to_40() -> None:
    pairs = [(x, n) for n in range(1, 41) for x in range(n + 1)]
    low, high = wilson([x for x, _ in pairs], [n for _, n in pairs])
    for (x, n), lo, hi in zip(pairs, low, high, strict=True):
        expected = binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (lo, hi) == (pytest.approx(expected.low, abs=1e-12),
                            pytest.approx(expected.high, abs=1e-12))


def test_wilson_is_wider_for_fewer_cases_and_undefined_for_none() -> None:
    low, high = wilson([3, 30, 300, 0], [6, 60, 600, 0])
    widths = (high - low)[:3]
    assert widths[0] > widths[1] > widths[2]
    assert np.isnan(low[3]) and np.isnan(high[3])


def test_the_prior_is_recovered_from_simulated_groups() -> None:
    rng = np.random.default_rng(7)
    true = rng.beta(5, 15, 400)  # mean 0.25, strength 20
    n = rng.integers(5, 200, 400)
    prior = beta_binomial_prior(rng.binomial(n, true), n)
    assert prior.mean == pytest.approx(0.25, abs=0.02)
    assert prior.strength == pytest.approx(20, rel=0.25)


def test_adjusted_rates_lie_between_raw_and_overall_nearer_overall_for_few_cases() -> None:
    # the example: 3 of 6 sent back (50 %) beside 62 of 206 (30 %), among others
    x = np.array([3, 62, 10, 20, 45, 2])
    n = np.array([6, 206, 60, 100, 150, 30])
    prior = beta_binomial_prior(x, n)
    assert 0 < prior.strength < np.inf
    raw, adjusted = x / n, shrunk(x, n)
    overall = x.sum() / n.sum()
    assert prior.mean == pytest.approx(overall)
    for r, a in zip(raw, adjusted, strict=True):
        assert min(r, overall) <= a <= max(r, overall)
    # the share of the way from raw to overall each group is moved falls with its cases
    moved = (raw - adjusted) / (raw - overall)
    by_cases = moved[np.argsort(n)]
    assert list(by_cases) == sorted(by_cases, reverse=True)
    assert moved[0] == pytest.approx(prior.strength / (6 + prior.strength))
    # the six-case unit no longer tops the 206-case one
    assert adjusted[0] < raw[0] and abs(adjusted[0] - overall) < abs(raw[0] - overall)


def test_groups_alike_beyond_chance_all_get_the_overall_rate() -> None:
    assert beta_binomial_prior([5, 50, 10], [10, 100, 20]).strength == np.inf
    assert shrunk([5, 50, 10, 0], [10, 100, 20, 0]).tolist()[:3] == [0.5, 0.5, 0.5]
    assert np.isnan(shrunk([5, 50, 10, 0], [10, 100, 20, 0])[3])


@pytest.mark.parametrize(("x", "n"), [
    ([3], [6]),  # one group: nothing to pool
    ([0, 0], [10, 40]),  # every case alike
    ([0, 10], [10, 10]),  # none and all: more spread than a beta-binomial holds (rho >= 1)
])
def test_without_a_spread_to_learn_from_each_group_keeps_its_rate(x: list[int],
                                                                 n: list[int]) -> None:
    assert beta_binomial_prior(x, n).strength == 0.0
    assert shrunk(x, n).tolist() == (np.array(x) / np.array(n)).tolist()


def test_no_cases_at_all() -> None:
    prior = beta_binomial_prior([0, 0], [0, 0])
    assert np.isnan(prior.mean) and prior.strength == 0.0
    assert np.isnan(shrunk([0], [0], Prior(0.3, 5.0))).tolist() == [False]
