"""Pareto maths (nas.pareto): dominance, the front, non-dominated sorting, hypervolume and regret."""

from __future__ import annotations

import random

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from nas.pareto import (
    ACCURACY_LATENCY,
    Problem,
    dominates,
    evaluations_to_reach,
    front_indices,
    front_mask,
    front_ranks,
    hypervolume,
)


def test_front_and_hypervolume():
    pts = [[0.9, 3.0], [0.8, 1.0], [0.85, 3.5], [0.7, 2.0], [0.9, 3.0]]
    assert front_indices(pts, ["maximize", "minimize"]) == [0, 1, 4]
    # Minimising (1 - acc, latency) against reference (0 acc, 4 ms): two rectangles.
    hv = hypervolume([[0.9, 3.0], [0.8, 1.0]], ["maximize", "minimize"], [0.0, 4.0])
    assert hv == pytest.approx(0.8 * 3.0 + (0.9 - 0.8) * 1.0)
    assert hypervolume([[0.5, 9.0]], ["maximize", "minimize"], [0.0, 4.0]) == 0.0
    assert (
        front_indices([], ["maximize", "minimize"]) == [] and hypervolume([], ACCURACY_LATENCY, [0, 1]) == 0
    )


def test_hypervolume_of_rectangles():
    acc_lat = lambda acc, lat: np.column_stack((acc, lat))  # noqa: E731
    # one point: (0.9 - 0.1) x (10 - 2); a second point adds the strip it alone dominates
    assert hypervolume(acc_lat([0.9], [2.0]), ACCURACY_LATENCY, (0.1, 10.0)) == pytest.approx(0.8 * 8)
    two = acc_lat([0.9, 0.5], [2.0, 1.0])
    assert hypervolume(two, ACCURACY_LATENCY, (0.1, 10.0)) == pytest.approx(0.8 * 8 + 0.4 * 1)
    # dominated, duplicate and out-of-box points add nothing
    more = acc_lat([0.9, 0.5, 0.9, 0.05], [2.0, 3.0, 2.0, 1.0])
    assert hypervolume(more, ACCURACY_LATENCY, (0.1, 10.0)) == pytest.approx(6.4)


def test_a_direction_is_maximize_or_minimize_and_points_have_one_value_per_direction():
    with pytest.raises(ValueError, match="'maximize' or 'minimize'"):
        front_mask([[1.0, 2.0]], ["max", "minimize"])
    with pytest.raises(ValueError, match="2 objectives each"):
        hypervolume([[1.0, 2.0, 3.0]], ACCURACY_LATENCY, [0.0, 4.0])


def test_two_objective_sweep_matches_the_pairwise_definition():
    rng = random.Random(0)
    for _ in range(500):
        # ties and duplicates on a coarse grid half of the time: the sweep must keep duplicates of front points
        pts = [
            [rng.choice([0.1, 0.2, 0.5]), rng.choice([1.0, 2.0, 3.0])]
            if rng.random() < 0.5
            else [rng.random(), rng.random()]
            for _ in range(rng.randint(0, 25))
        ]
        dirs = rng.choice([["maximize", "minimize"], ["minimize", "minimize"], ["maximize", "maximize"]])
        pairwise = [
            i
            for i, p in enumerate(pts)
            if not any(dominates(q, p, dirs) for j, q in enumerate(pts) if j != i)
        ]
        assert front_indices(pts, dirs) == pairwise, (pts, dirs)


def test_the_two_objective_sweeps_agree_with_the_general_paths_on_ties():
    # few distinct values: ties in both objectives. The sweeps (front, hypervolume) against the dominance
    # matrix of non-dominated sorting and Optuna's exact hypervolume, which serve three or more objectives.
    rng = np.random.default_rng(3)
    for _ in range(20):
        acc = rng.integers(0, 6, 40) / 5
        lat = rng.integers(1, 8, 40).astype(float)
        pts = np.column_stack((acc, lat))
        assert (
            front_mask(pts, ACCURACY_LATENCY).tolist() == (front_ranks(pts, ACCURACY_LATENCY) == 0).tolist()
        )
        kept = pts[(acc > -0.1) & (lat < 9.0)]
        exact = compute_hypervolume(np.column_stack((-kept[:, 0], kept[:, 1])), np.array([0.1, 9.0]))
        assert hypervolume(pts, ACCURACY_LATENCY, (-0.1, 9.0)) == pytest.approx(exact)


def test_non_dominated_sorting_peels_fronts():
    pts = np.array([[0.9, 5.0], [0.8, 2.0], [0.7, 1.0], [0.85, 3.0], [0.6, 4.0], [0.75, 3.0]])
    # front 0: rows 0, 1, 2, 3; row 5 is dominated by 3 (0.85 @ 3) only; row 4 by 1, 2, 3 and 5
    assert front_ranks(pts, ACCURACY_LATENCY).tolist() == [0, 0, 0, 0, 2, 1]
    # a third objective that opposes accuracy (e.g. params): no row is dominated any more
    assert front_ranks(np.column_stack((pts, pts[:, 0])), [*ACCURACY_LATENCY, "minimize"]).tolist() == [0] * 6


def test_hypervolume_of_three_objectives_is_the_volume_of_the_union_of_boxes():
    dirs = ["maximize", "minimize", "minimize"]
    # boxes against (accuracy 0, latency 2, params 3): 0.9 x 1 x 2 and 0.8 x 1.5 x 1, overlapping 0.8 x 1 x 1
    pts = [[0.9, 1.0, 1.0], [0.8, 0.5, 2.0]]
    assert hypervolume(pts, dirs, [0.0, 2.0, 3.0]) == pytest.approx(1.8 + 1.2 - 0.8)
    # a point outside the reference box adds nothing; a dominated one adds nothing
    assert hypervolume([*pts, [0.95, 2.5, 0.1], [0.5, 1.5, 2.5]], dirs, [0.0, 2.0, 3.0]) == pytest.approx(2.2)
    assert front_indices([*pts, [0.95, 2.5, 0.1], [0.5, 1.5, 2.5]], dirs) == [0, 1, 2]


def test_the_two_objective_sweep_agrees_with_optunas_hypervolume():
    rng = random.Random(1)
    for _ in range(100):
        pts = [[rng.random(), rng.random() * 4] for _ in range(rng.randint(1, 20))]
        losses = np.array([[-a, lat] for a, lat in pts])
        assert hypervolume(pts, ["maximize", "minimize"], [0.0, 4.0]) == pytest.approx(
            compute_hypervolume(losses, np.array([0.0, 4.0]))
        )


# ------------------------------------------------------------------ regret against a known front


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
