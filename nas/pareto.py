"""Pareto maths of objective vectors: dominance, the front and non-dominated sorting, hypervolume in any number
of objectives, and hypervolume regret against a known front.

The one copy that the search's reports (nas.search.records, over trial records), the successive-halving rule
(nas.search.halving), the known-latency sampler (nas.search.ehvi), the NAS-Bench-201 tables
(nas.tabular) and the benchmarks (experiments.bench) all use; it imports nothing of theirs. Points are
rows of numbers, `directions` Optuna's words, "maximize" or "minimize", one per objective. Two objectives,
the common case, go through vectorised sweeps, O(n log n): the front of NAS-Bench-201's 15,625 cells or a
200-point regret curve take milliseconds. More objectives go through the pairwise dominance matrix (front,
sort: n^2 booleans, for fronts of trials) and Optuna's exact WFG algorithm (hypervolume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from nas.search.optuna_internals import n_objective_hypervolume

# Accuracy up, latency down: the objective pair of the regret problems and the known-latency sampler.
ACCURACY_LATENCY = ("maximize", "minimize")


def _signs(directions: Sequence[str]) -> np.ndarray:
    bad = [d for d in directions if d not in ("maximize", "minimize")]
    if bad:
        raise ValueError(f"a direction is 'maximize' or 'minimize', got {bad}")
    return np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def minimised(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """`points` as an (n, m) float array with every objective minimised (the maximised ones negated)."""
    sign = _signs(directions)
    p = np.asarray(points, dtype=float)
    if p.size == 0:
        p = p.reshape(0, sign.size)
    if p.ndim != 2 or p.shape[1] != sign.size:
        raise ValueError(f"points need {sign.size} objectives each (one per direction), got shape {p.shape}")
    return p * sign


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether `a` is at least as good as `b` everywhere and better somewhere."""
    x, y = minimised([a, b], directions)
    return bool(np.all(x <= y) and np.any(x < y))


def _dominance(p: np.ndarray) -> np.ndarray:
    """(n, n) booleans of minimised rows: [i, j] is whether row i dominates row j."""
    le = np.all(p[:, None, :] <= p[None, :, :], axis=2)
    lt = np.any(p[:, None, :] < p[None, :, :], axis=2)
    return le & lt


def front_mask(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n,) booleans: which points no other point dominates (exact duplicates of a front point are all kept)."""
    p = minimised(points, directions)
    if p.shape[1] != 2:
        return ~_dominance(p).any(axis=0)
    x, y = p[:, 0], p[:, 1]
    # A point is dominated by one with a lower x and a y no higher, or one with the same x and a lower y:
    # compare y with the lowest y of all lower x and of its own x.
    levels, group = np.unique(x, return_inverse=True)
    group_low = np.full(levels.size, np.inf)
    np.minimum.at(group_low, group, y)
    lower_before = np.concatenate(([np.inf], np.minimum.accumulate(group_low)[:-1]))
    return (lower_before[group] > y) & (group_low[group] >= y)


def front_indices(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points, in order (`front_mask` as a list)."""
    return np.flatnonzero(front_mask(points, directions)).tolist()


def front_ranks(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n,) non-dominated sorting rank of each point: 0 for the front, 1 for the front of the rest, ..."""
    dom = _dominance(minimised(points, directions))
    ranks = np.full(len(dom), -1)
    left = np.ones(len(dom), bool)
    r = 0
    while left.any():
        current = left & ~dom[left].any(axis=0)  # not dominated by any remaining point
        ranks[current] = r
        left &= ~current
        r += 1
    return ranks


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str], reference: Sequence[float]
) -> float:
    """Volume dominated by `points` and bounded by `reference` (a point worse than all): one or two objectives
    by an exact sweep here, more by Optuna's exact WFG algorithm.

    Points not strictly better than the reference in every objective add nothing.
    """
    p = minimised(points, directions)
    ref = np.asarray(reference, dtype=float) * _signs(directions)
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    if ref.size > 2:
        return n_objective_hypervolume(p, ref)
    if ref.size == 1:
        return float(ref[0] - p[:, 0].min())
    # Sweep x upwards (ties: lowest y first); each point adds the strip (ref_x - x) wide between the lowest
    # y seen at lower x and its own.
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    low_before = np.minimum.accumulate(np.concatenate(([ref[1]], p[:, 1])))[:-1]
    return float(np.sum((ref[0] - p[:, 0]) * np.clip(low_before - p[:, 1], 0.0, None)))


@dataclass(frozen=True)
class Problem:
    """One objective pair (accuracy up, latency down) over a finite set of candidates, with its true front:
    the hypervolume regret of a run that evaluated some of them.

    Objectives are normalised to the box between the ideal point (best accuracy, lowest latency) and the
    reference point (worst accuracy, largest latency of the whole table, fixed before any run): every
    hypervolume is then a fraction of that box, comparable across devices whose latencies differ by orders of
    magnitude. Regret `1 - HV / HV*` is unchanged by that scaling.
    """

    accuracy: np.ndarray  # (n,) the value a run is scored with (for 200 epochs: the mean over seeds)
    latency: np.ndarray  # (n,) ms
    name: str = ""

    def __post_init__(self) -> None:
        if self.accuracy.shape != self.latency.shape or self.accuracy.ndim != 1 or self.accuracy.size < 2:
            raise ValueError(
                "a problem needs equal-length 1-D accuracy and latency arrays of >= 2 candidates"
            )

    @cached_property
    def reference(self) -> tuple[float, float]:
        """(worst accuracy, largest latency) of the table."""
        return float(self.accuracy.min()), float(self.latency.max())

    @cached_property
    def ideal(self) -> tuple[float, float]:
        """(best accuracy, lowest latency) of the table."""
        return float(self.accuracy.max()), float(self.latency.min())

    def normalise(self, accuracy: np.ndarray, latency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both objectives mapped to [0, 1]: 0 at the reference point, 1 at the ideal one."""
        (ra, rl), (ia, il) = self.reference, self.ideal
        return (np.asarray(accuracy, float) - ra) / (ia - ra), (rl - np.asarray(latency, float)) / (rl - il)

    def hv(self, rows: Sequence[int] | np.ndarray) -> float:
        """Normalised hypervolume (a fraction of the ideal-reference box) of the candidates `rows`."""
        rows = np.asarray(rows, dtype=int)
        a, g = self.normalise(self.accuracy[rows], self.latency[rows])
        return hypervolume(np.column_stack((a, g)), ("maximize", "maximize"), (0.0, 0.0))

    @cached_property
    def front(self) -> np.ndarray:
        """Rows of the true Pareto front, by increasing latency."""
        rows = np.flatnonzero(front_mask(np.column_stack((self.accuracy, self.latency)), ACCURACY_LATENCY))
        return rows[np.argsort(self.latency[rows], kind="stable")]

    @cached_property
    def hv_star(self) -> float:
        """Normalised hypervolume of the true front (of all candidates)."""
        return self.hv(np.arange(self.accuracy.size))

    def regret(self, rows: Sequence[int] | np.ndarray) -> float:
        """Hypervolume regret 1 - HV(rows) / HV* of a set of evaluated candidates (0 = the true front)."""
        return 1.0 - self.hv(rows) / self.hv_star

    def regret_curve(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Regret after each evaluation of a run that evaluated `rows` in this order (non-increasing)."""
        rows = np.asarray(rows, dtype=int)
        hv_star = self.hv_star
        return np.array([1.0 - self.hv(rows[: k + 1]) / hv_star for k in range(rows.size)])


def evaluations_to_reach(curve: np.ndarray, fraction: float) -> float:
    """Evaluations a run needed to reach `fraction` of HV* (regret <= 1 - fraction); inf if it never did."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction of HV* must be in (0, 1], e.g. 0.95; got {fraction!r}")
    hit = np.flatnonzero(np.asarray(curve) <= 1.0 - fraction + 1e-12)
    return float(hit[0] + 1) if hit.size else float("inf")
