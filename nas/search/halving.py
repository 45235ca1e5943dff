"""The rule of multi-objective successive halving, as pure functions of objective vectors (no Optuna, no I/O).

`decide` is the one decision the `ASHA` scheduler (nas.search.scheduler) and the NAS-Bench-201 driver
(experiments.bench.asha) both take when a candidate finishes a rung:

1. **Hopeless** (checked first): the candidate's optimistic vector is its rung vector with the accuracy
   raised by the largest gain any earlier candidate made from this rung to the full (top) rung. Every other
   objective (latency, params, MACs) is known before training, so it cannot improve. If a full-rung result
   dominates that optimistic vector, the candidate cannot reach the front: it is stopped. Until some
   candidate has both results the gain is unknown and nothing is hopeless.
2. **Promoted** when it is in the top `k = max(1, n // eta)` of the `n` candidates that reached this rung
   (itself included): ranked by non-dominated sorting, ties within a front broken by crowding distance
   (larger first; a front's extreme points first), then by arrival (earlier first). The `max(1, .)` lets the
   first candidates of a study through (as Optuna's successive halving does), so a study is never stuck
   without full results.

Vectors are in objective order; `senses[i]` is +1 for a maximised objective, -1 for a minimised one. Dominance
and non-dominated sorting are nas.pareto's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas import pareto

Vector = Sequence[float]


@dataclass(frozen=True)
class Decision:
    """What happens to a candidate that finished a rung: promoted, or stopped and why."""

    promote: bool
    reason: str = ""


def _directions(senses: Sequence[int]) -> list[str]:
    return ["maximize" if s > 0 else "minimize" for s in senses]


def crowding(points: np.ndarray) -> np.ndarray:
    """(n,) crowding distance of rows of one front (NSGA-II's: extremes infinite, objectives range-scaled)."""
    p = np.asarray(points, float)
    n, m = p.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for j in range(m):
        order = np.argsort(p[:, j], kind="stable")
        span = p[order[-1], j] - p[order[0], j]
        d[order[0]] = d[order[-1]] = math.inf
        if span > 0:
            d[order[1:-1]] += (p[order[2:], j] - p[order[:-2], j]) / span
    return d


def order(points: np.ndarray, senses: Sequence[int]) -> np.ndarray:
    """Row indices best first: by front rank, then crowding distance (larger first), then row (earlier)."""
    p = np.asarray(points, float)
    ranks = pareto.front_ranks(p, _directions(senses))
    crowd = np.zeros(len(p))
    for r in np.unique(ranks):
        rows = np.flatnonzero(ranks == r)
        crowd[rows] = crowding(p[rows])
    return np.lexsort((np.arange(len(p)), -crowd, ranks))


def promotable(values: Vector, peers: Sequence[Vector], senses: Sequence[int], eta: int) -> bool:
    """Whether `values` is in the top max(1, n // eta) of itself and `peers` (all at the same rung)."""
    points = np.asarray([*peers, values], float)
    k = max(1, len(points) // eta)
    return bool(len(points) - 1 in order(points, senses)[:k])


def optimistic(values: Vector, gain: float, accuracy: int) -> list[float]:
    """`values` with the accuracy (index `accuracy`) raised by `gain`: the best it could reach at the top."""
    out = [float(v) for v in values]
    out[accuracy] += gain
    return out


def best_gain(pairs: Sequence[tuple[float, float]]) -> float | None:
    """The largest (top-rung accuracy - this rung's accuracy) of candidates with both, or None if none has."""
    return max((top - low for low, top in pairs), default=None)


def decide(
    values: Vector,
    peers: Sequence[Vector],
    full: Sequence[Vector],
    gain: float | None,
    senses: Sequence[int],
    eta: int,
    *,
    accuracy: int = 0,
) -> Decision:
    """The decision for a candidate that finished a (non-top) rung with `values`.

    `peers`: the other candidates' vectors at this rung; `full`: full-rung results (the study's candidates
    for the front); `gain`: `best_gain` from this rung to the top (None: unknown yet); `accuracy`: the
    index of the accuracy objective (the only one training changes).
    """
    if gain is not None:
        hope = optimistic(values, max(gain, 0.0), accuracy)
        for f in full:
            if pareto.dominates(f, hope, _directions(senses)):
                return Decision(
                    False,
                    f"cannot reach the front: even with the best gain seen (+{max(gain, 0.0):.4f} accuracy) "
                    f"a full result dominates it",
                )
    if promotable(values, peers, senses, eta):
        return Decision(True)
    n = len(peers) + 1
    return Decision(False, f"not in the top {max(1, n // eta)} of the {n} candidates at this rung")
