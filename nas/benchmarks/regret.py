"""Two-objective hypervolume (maximise accuracy, minimise latency) and hypervolume regret of a run.

Vectorised numpy, so the true front of all 15,625 NAS-Bench-201 cells and a regret curve of a 200-evaluation
run both take milliseconds. Objectives are normalised to the box between the ideal point (best accuracy,
lowest latency) and the reference point (worst accuracy, largest latency): every hypervolume is then a
fraction of that box, comparable across devices whose latencies differ by orders of magnitude. Regret
`1 - HV / HV*` is unchanged by that scaling; the normalisation makes HV and HV* themselves comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def hypervolume(accuracy: Sequence[float], latency: Sequence[float], ref: tuple[float, float]) -> float:
    """Area dominated by the points (accuracy up, latency down) and bounded by `ref` = (accuracy, latency).

    Points not strictly better than the reference in both objectives add nothing.
    """
    acc = np.asarray(accuracy, dtype=float).ravel()
    lat = np.asarray(latency, dtype=float).ravel()
    if acc.shape != lat.shape:
        raise ValueError(f"accuracy and latency differ in length: {acc.size} vs {lat.size}")
    keep = (acc > ref[0]) & (lat < ref[1])
    acc, lat = acc[keep], lat[keep]
    if acc.size == 0:
        return 0.0
    # Sweep latency upwards (ties: most accurate first); each point adds the strip (ref_lat - lat) wide
    # between the best accuracy seen at lower latency and its own.
    order = np.lexsort((-acc, lat))
    acc, lat = acc[order], lat[order]
    best_before = np.maximum.accumulate(np.concatenate(([ref[0]], acc)))[:-1]
    gain = np.clip(acc - best_before, 0.0, None)
    return float(np.sum((ref[1] - lat) * gain))


def front_mask(accuracy: Sequence[float], latency: Sequence[float]) -> np.ndarray:
    """Boolean mask of the non-dominated points (exact duplicates of a front point are all kept)."""
    acc = np.asarray(accuracy, dtype=float).ravel()
    lat = np.asarray(latency, dtype=float).ravel()
    # A point is dominated by a strictly faster one at least as accurate, or an equally fast, more
    # accurate one: compare with the best accuracy of all faster points and of its own latency group.
    levels, group = np.unique(lat, return_inverse=True)
    group_best = np.full(levels.size, -np.inf)
    np.maximum.at(group_best, group, acc)
    faster_best = np.concatenate(([-np.inf], np.maximum.accumulate(group_best)[:-1]))
    return (faster_best[group] < acc) & (group_best[group] <= acc)


@dataclass(frozen=True)
class Problem:
    """One objective pair over a finite set of candidates, with its true front and the reference point.

    The reference point is fixed before any run: the worst accuracy and largest latency of the whole table.
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
        return hypervolume(a, -g, (0.0, 0.0))  # gain g maximised == -g minimised, reference 0

    @cached_property
    def front(self) -> np.ndarray:
        """Rows of the true Pareto front, by increasing latency."""
        rows = np.flatnonzero(front_mask(self.accuracy, self.latency))
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
