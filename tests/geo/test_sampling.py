"""Inspection sampling: reproducible, stratified with a coverage guarantee, weighted by risk."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from geo.sampling import RiskWeights, Stratum, min_round_size, plan_round, risk_scores

LAYERS = ("market", "construction_site", "old_compound")


def district(n_sites: int, n_communities: int, seed: int, *, layers: tuple[str, ...] = LAYERS,
             risk: np.ndarray | None = None) -> pd.DataFrame:
    """Random sites over communities C00.. and layers, every stratum with at least one site."""
    rng = np.random.default_rng(seed)
    community = np.concatenate([np.arange(n_communities),
                                rng.integers(0, n_communities, n_sites - n_communities)])
    layer = np.concatenate([np.arange(len(layers)) % len(layers),
                            rng.integers(0, len(layers), n_sites - len(layers))])
    return pd.DataFrame({
        "site_id": rng.permutation(np.arange(100, 100 + n_sites)),
        "layer": [layers[i] for i in layer],
        "community": [f"C{i:02d}" for i in community],
        "x": rng.uniform(0, 3000, n_sites), "y": rng.uniform(0, 3000, n_sites),
        "risk": rng.gamma(1.5, 2.0, n_sites) + 1.0 if risk is None else risk,
    })


def visited(stops: pd.DataFrame) -> set[Stratum]:
    return ({("community", c) for c in stops["community"].dropna()}
            | {("layer", v) for v in stops["layer"]})


def age(since: dict[Stratum, int], covered: set[Stratum]) -> dict[Stratum, int]:
    """The history after one more round: 1 for what it covered, one more for the rest."""
    return {**{s: n + 1 for s, n in since.items()}, **dict.fromkeys(covered, 1)}


def all_strata(sites: pd.DataFrame) -> set[Stratum]:
    return visited(sites)


def test_same_seed_same_round_whatever_the_order_of_candidates() -> None:
    sites = district(40, 8, seed=1)
    shuffled = sites.sample(frac=1.0, random_state=3)
    first = plan_round(sites, size=8, seed=42, cover_rounds=3)
    again = plan_round(shuffled, size=8, seed=42, cover_rounds=3)
    assert first.stops["site_id"].tolist() == again.stops["site_id"].tolist()
    assert first.stops["reason"].tolist() == again.stops["reason"].tolist()
    assert first.route_length_m == again.route_length_m


def test_different_seeds_draw_different_rounds() -> None:
    sites = district(40, 8, seed=1)
    samples = {frozenset(plan_round(sites, size=8, seed=s, cover_rounds=3).stops["site_id"])
               for s in range(30)}
    assert len(samples) >= 25


@pytest.mark.slow
@pytest.mark.parametrize(("n_sites", "n_communities", "cover_rounds", "extra"),
                         [(47, 12, 3, 0), (47, 12, 3, 3), (30, 10, 4, 0), (60, 15, 2, 1),
                          (25, 7, 1, 0)])
def test_every_community_and_layer_is_visited_in_every_window_of_cover_rounds(
        n_sites: int, n_communities: int, cover_rounds: int, extra: int) -> None:
    rounds = 3 * cover_rounds + 1
    for seed in range(30):
        sites = district(n_sites, n_communities, seed=seed)
        size = min_round_size(n_communities, len(LAYERS), cover_rounds) + extra
        since: dict[Stratum, int] = {}
        history = []
        for r in range(rounds):
            plan = plan_round(sites, size=size, seed=1000 * seed + r, cover_rounds=cover_rounds,
                              rounds_since=since)
            assert len(plan.stops) == size
            history.append(visited(plan.stops))
            since = age(since, history[-1])
        for first in range(rounds - cover_rounds + 1):
            window = set().union(*history[first:first + cover_rounds])
            assert window == all_strata(sites), (seed, first, all_strata(sites) - window)


def test_without_history_fed_back_coverage_is_left_to_chance() -> None:
    # The same simulation with the history withheld: the guarantee test above would catch it.
    missed = 0
    for seed in range(20):
        sites = district(47, 12, seed=seed)
        history = [visited(plan_round(sites, size=5, seed=1000 * seed + r, cover_rounds=3
                                      ).stops) for r in range(3)]
        missed += set().union(*history) != all_strata(sites)
    assert missed >= 10


@pytest.mark.slow
def test_higher_risk_is_sampled_more_often() -> None:
    # 6 communities x 2 layers x risk levels 1, 2, 4, 8: every stratum holds every level, so
    # only the risk tells the sites apart. 300 fixed seeds; each level has 300 x 12 chances.
    levels = np.array([1.0, 2.0, 4.0, 8.0])
    cells = [(c, layer) for c in range(6) for layer in LAYERS[:2]]
    sites = pd.DataFrame({
        "site_id": np.arange(len(cells) * len(levels)),
        "community": [f"C{c}" for c, _ in cells for _ in levels],
        "layer": [layer for _, layer in cells for _ in levels],
        "risk": np.tile(levels, len(cells)),
        "x": np.arange(len(cells) * len(levels)) * 50.0, "y": 0.0,
    })
    seeds = range(300)
    drawn = np.zeros(len(sites))
    for seed in seeds:
        drawn[plan_round(sites, size=8, seed=seed, cover_rounds=3).stops["site_id"]] += 1
    trials = len(seeds) * len(cells)
    rate = np.array([drawn[sites["risk"] == level].sum() / trials for level in levels])
    # Two-proportion z statistic between neighbouring levels: each step up must be more than
    # five standard errors (p < 3e-7 one-sided) above the level below.
    for low, high in itertools.pairwise(rate):
        pooled = (low + high) / 2
        se = math.sqrt(2 * pooled * (1 - pooled) / trials)
        assert (high - low) / se > 5, (rate.round(3).tolist(), low, high, se)


def test_a_round_too_small_for_the_guarantee_is_refused_with_the_minimum() -> None:
    sites = district(47, 12, seed=0)
    assert min_round_size(12, 3, 3) == 5
    with pytest.raises(ValueError, match="at least 5 places"):
        plan_round(sites, size=4, seed=0, cover_rounds=3)
    assert len(plan_round(sites, size=5, seed=0, cover_rounds=3).stops) == 5


def test_a_round_never_exceeds_the_candidates() -> None:
    sites = district(6, 2, seed=0)
    assert sorted(plan_round(sites, size=50, seed=0, cover_rounds=1).stops["site_id"]) == \
        sorted(sites["site_id"])


def test_strata_never_visited_are_served_first_and_say_so() -> None:
    sites = district(47, 12, seed=0)
    since = {("community", f"C{i:02d}"): 1 for i in range(12) if i != 7}
    since.update({("layer", v): 1 for v in LAYERS})
    plan = plan_round(sites, size=5, seed=0, cover_rounds=3, rounds_since=since)
    reasons = plan.stops["reason"].tolist()
    assert {"why": "stratum", "stratum": "community", "code": "C07",
            "rounds_since": None} in reasons
    # 12 communities in 3 rounds: the 4 least recent; the layer's quota of 1 may already be
    # met by one of their sites.
    assert 4 <= sum(r["why"] == "stratum" for r in reasons) <= 4 + 1


def test_sites_outside_every_community_can_still_be_drawn() -> None:
    sites = district(20, 4, seed=0)
    sites.loc[sites.index[:10], "community"] = None
    seen: set[int] = set()
    for seed in range(50):
        seen |= set(plan_round(sites, size=6, seed=seed, cover_rounds=2).stops["site_id"])
    assert set(sites["site_id"].iloc[:10]) & seen


def test_route_order_is_the_walking_order_and_its_length_is_reported() -> None:
    sites = district(40, 8, seed=2)
    plan = plan_round(sites, size=10, seed=5, cover_rounds=3)
    xy = plan.stops[["x", "y"]].to_numpy()
    assert plan.stops["seq"].tolist() == list(range(1, 11))
    assert plan.route_length_m == pytest.approx(np.hypot(*np.diff(xy, axis=0).T).sum())
    assert plan.route_length_m <= plan.greedy_length_m


@pytest.mark.parametrize("bad", [
    {"risk": 0.0}, {"risk": float("nan")}, {"site_id": 1},
])
def test_malformed_candidates_are_refused(bad: dict[str, float]) -> None:
    sites = district(10, 2, seed=0)
    for column, value in bad.items():
        sites[column] = value
    with pytest.raises(ValueError, match=r"risk|once"):
        plan_round(sites, size=3, seed=0, cover_rounds=2)


def test_risk_grows_with_every_factor_and_staleness_is_capped() -> None:
    base = risk_scores([1], [1], [1], [10], [10])[0]
    assert risk_scores([5], [1], [1], [10], [10])[0] > base
    assert risk_scores([1], [5], [1], [10], [10])[0] > base
    assert risk_scores([1], [1], [5], [10], [10])[0] > base
    assert risk_scores([1], [1], [1], [20], [10])[0] > base
    assert risk_scores([1], [1], [1], [10], [5])[0] > base
    capped = risk_scores([0, 0], [0, 0], [0, 0], [300, np.nan], [10, 10])
    assert capped.tolist() == [4.0, 4.0]
    heavier = risk_scores([0], [0], [1], [0], [10], RiskWeights(overdue=4.0))[0]
    assert heavier == pytest.approx(1 + 4 * math.log(2))
    with pytest.raises(ValueError, match="overdue"):
        RiskWeights(overdue=-1)
