"""Hypervolume, the true front and hypervolume regret (maximise accuracy, minimise latency)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.benchmarks.regret import Problem, evaluations_to_reach, front_mask, hypervolume
from nas.search.pareto import front_indices
from nas.search.pareto import hypervolume as pareto_hypervolume


def test_hypervolume_of_rectangles():
    # one point: (0.9 - 0.1) x (10 - 2); a second point adds the strip it alone dominates
    assert hypervolume([0.9], [2.0], (0.1, 10.0)) == pytest.approx(0.8 * 8)
    assert hypervolume([0.9, 0.5], [2.0, 1.0], (0.1, 10.0)) == pytest.approx(0.8 * 8 + 0.4 * 1)
    # dominated, duplicate and out-of-box points add nothing
    assert hypervolume([0.9, 0.5, 0.9, 0.05], [2.0, 3.0, 2.0, 1.0], (0.1, 10.0)) == pytest.approx(6.4)
    assert hypervolume([], [], (0.1, 10.0)) == 0.0


def test_matches_the_search_reports_hypervolume_and_front():
    rng = np.random.default_rng(3)
    for _ in range(20):
        acc = rng.integers(0, 6, 40) / 5  # few distinct values: ties in both objectives
        lat = rng.integers(1, 8, 40).astype(float)
        pts = list(zip(acc, lat, strict=True))
        dirs = ("maximize", "minimize")
        assert hypervolume(acc, lat, (-0.1, 9.0)) == pytest.approx(pareto_hypervolume(pts, dirs, (-0.1, 9.0)))
        assert np.flatnonzero(front_mask(acc, lat)).tolist() == front_indices(pts, dirs)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    lat = rng.uniform(1, 50, 500)
    acc = np.clip(0.5 + 0.3 * np.log(lat) / np.log(50) + rng.normal(0, 0.08, 500), 0.1, 0.95)
    return Problem(acc, lat)


def test_a_run_holding_the_true_front_has_zero_regret(problem):
    assert problem.regret(problem.front) == pytest.approx(0.0, abs=1e-12)
    others = np.setdiff1d(np.arange(500), problem.front)
    assert problem.regret(np.concatenate([others[:50], problem.front])) == pytest.approx(0.0, abs=1e-12)
    assert problem.regret(problem.front[1:]) > 0  # every front point contributes
    assert problem.regret(others) > 0


def test_regret_curve_is_non_increasing_and_ends_at_the_sets_regret(problem):
    rows = np.random.default_rng(1).integers(0, 500, 120)
    curve = problem.regret_curve(rows)
    assert curve.shape == (120,)
    assert np.all(np.diff(curve) <= 1e-15)
    assert 0 <= curve[-1] < curve[0] <= 1
    assert curve[-1] == pytest.approx(problem.regret(rows))


def test_regret_does_not_depend_on_units_and_hv_is_a_fraction_of_the_box(problem):
    rows = np.arange(0, 500, 7)
    scaled = Problem(problem.accuracy * 100, problem.latency * 1000)  # % and microseconds
    assert scaled.regret(rows) == pytest.approx(problem.regret(rows))
    assert scaled.hv_star == pytest.approx(problem.hv_star)
    assert 0 < problem.hv_star < 1
    assert problem.reference == (problem.accuracy.min(), problem.latency.max())


def test_evaluations_to_reach():
    curve = np.array([0.5, 0.2, 0.04, 0.04, 0.009])
    assert evaluations_to_reach(curve, 0.95) == 3
    assert evaluations_to_reach(curve, 0.99) == 5
    assert evaluations_to_reach(curve[:4], 0.99) == float("inf")
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        evaluations_to_reach(curve, 95)
