"""Fronts and hypervolume of trial records."""

from __future__ import annotations

import pytest

from nas.search.pareto import dominated_by, front, front_indices, hypervolume


def test_front_and_hypervolume():
    pts = [[0.9, 3.0], [0.8, 1.0], [0.85, 3.5], [0.7, 2.0], [0.9, 3.0]]
    assert front_indices(pts, ["maximize", "minimize"]) == [0, 1, 4]
    # Minimising (1 - acc, latency) against reference (0 acc, 4 ms): two rectangles.
    hv = hypervolume([[0.9, 3.0], [0.8, 1.0]], ["maximize", "minimize"], [0.0, 4.0])
    assert hv == pytest.approx(0.8 * 3.0 + (0.9 - 0.8) * 1.0)
    assert hypervolume([[0.5, 9.0]], ["maximize", "minimize"], [0.0, 4.0]) == 0.0


def test_front_keeps_one_row_per_architecture():
    recs = [
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": None},
        {"trial": 1, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": 0},
        {"trial": 2, "state": "COMPLETE", "accuracy": 0.5, "latency": 2.0, "reused_from": None},
        {"trial": 3, "state": "PRUNED", "accuracy": None, "latency": 0.1, "reused_from": None},
    ]
    assert [r["trial"] for r in front(recs, ["accuracy", "latency"])] == [0]


def test_two_objective_sweep_matches_the_pairwise_definition():
    import random

    from nas.search.pareto import dominates

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


def test_a_baseline_is_dominated_by_the_front_rows_better_in_both():
    rows = [{"trial": 0, "accuracy": 0.9, "latency": 1.0}, {"trial": 1, "accuracy": 0.7, "latency": 0.5}]
    assert dominated_by({"accuracy": 0.8, "latency": 2.0}, rows, ["accuracy", "latency"]) == [0]
    assert dominated_by({"accuracy": 0.95, "latency": 0.4}, rows, ["accuracy", "latency"]) == []
    assert dominated_by({"accuracy": None, "latency": 0.4}, rows, ["accuracy", "latency"]) == []
