"""Walking routes: nearest neighbour improved by 2-opt, open paths, lengths in metres."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pyproj import Geod

from geo.route import nearest_neighbour, path_length, to_local_metres, two_opt, walking_route


def test_two_opt_is_never_longer_than_nearest_neighbour_and_often_shorter() -> None:
    shorter = 0
    for seed in range(200):
        xy = np.random.default_rng(seed).uniform(0, 2000, (12, 2))
        start = None if seed % 2 else [0.0, 0.0]
        order, length, greedy = walking_route(xy, start)
        assert sorted(order.tolist()) == list(range(12))
        assert length == pytest.approx(path_length(xy, order, start))
        assert greedy == pytest.approx(path_length(xy, nearest_neighbour(xy, start), start))
        assert length <= greedy + 1e-9
        shorter += length < greedy - 1e-6
    assert shorter >= 50


def test_a_square_is_walked_around_its_sides() -> None:
    square = np.array([[0, 0], [100, 100], [100, 0], [0, 100]], dtype=float)
    order, length, _ = walking_route(square, start=[0, 0])
    assert length == 300.0
    assert order.tolist() == [0, 2, 1, 3]
    _, free_length, _ = walking_route(square)
    assert free_length == 300.0
    # From outside the square the first leg counts: 50 m to the nearest corner.
    _, from_outside, _ = walking_route(square, start=[-50, 0])
    assert from_outside == 350.0


def test_two_opt_finds_the_optimum_on_small_instances() -> None:
    # Against brute force on 7 stops: 2-opt is a heuristic, but it must never be worse than
    # where it started and usually reaches the optimum at this size.
    optimal_hits = 0
    every_order = np.array(list(itertools.permutations(range(7))))
    for seed in range(30):
        xy = np.random.default_rng(seed).uniform(0, 1000, (7, 2))
        walk = np.concatenate([np.zeros((len(every_order), 1, 2)), xy[every_order]], axis=1)
        best = float(np.hypot(*np.diff(walk, axis=1).transpose(2, 0, 1)).sum(axis=1).min())
        order = two_opt(xy, nearest_neighbour(xy, [0, 0]), [0, 0])
        length = path_length(xy, order, [0, 0])
        assert length >= best - 1e-9
        optimal_hits += length <= best + 1e-6
    assert optimal_hits >= 20


def test_one_stop_and_no_stop() -> None:
    order, length, greedy = walking_route([[5.0, 5.0]])
    assert order.tolist() == [0] and length == 0.0 == greedy
    order, length, _ = walking_route(np.empty((0, 2)))
    assert order.tolist() == [] and length == 0.0


def test_local_metres_agree_with_the_geodesic_within_utm_scale_error() -> None:
    lon, lat = [120.70, 120.72, 120.69], [31.31, 31.30, 31.33]
    x, y = to_local_metres(lon, lat)
    _, _, geodesic = Geod(ellps="WGS84").inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    # UTM's scale factor stays within 0.9996..1.001 inside its zone.
    assert np.hypot(np.diff(x), np.diff(y)) == pytest.approx(geodesic, rel=1e-3)
