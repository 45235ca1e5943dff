"""A mixed search space as rows of numbers, and a Gaussian process over them (the model of `sampler=ehvi`).

A point is a row: a categorical parameter as its choice's index, an integer or float as its value (Optuna's
internal representation), NaN where the point does not use a parameter (a conditional one whose condition
fails). The GP's ARD kernel `exp(-sum_j theta_j d_j)` takes such rows as they are: d_j is 1 where a categorical
parameter differs, the squared difference of a numeric one's position in its (log) range, and 1 where one
point uses a parameter and the other does not (0 where neither does: an unused parameter is a state of its
own, not imputed); optionally log-latency, and the log of other quantities known before evaluation (MACs,
parameters), are more inputs, each a squared-distance term with its own weight.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from scipy.optimize import minimize

# params (a full assignment) -> those a point of the space uses, or None where they are no point of it.
Active = Callable[[Mapping[str, Any]], "Mapping[str, Any] | None"]
# Numeric neighbours: steps up and down of an eighth and a quarter of a parameter's (log) range, besides one
# grid step (a small move where the grid is fine, e.g. a width of 64 -> 65).
NUMERIC_STEPS = (0.125, 0.25)
# Bounds of log(theta): categorical (and latency) weights as tuned on NAS-Bench-201; a numeric input is a
# squared distance in [0, 1], so a short length scale (0.1 of the range) needs theta ~ 50.
CATEGORICAL_BOUNDS, NUMERIC_BOUNDS, NOISE_BOUNDS = (-5.0, 3.0), (-5.0, 5.0), (-9.0, 0.0)
# Ridge penalty of the linear trend in the known inputs (`posterior`, standardised inputs and outputs): with
# the first few results it shrinks the slope towards none.
TREND_RIDGE = 1.0


class Encoding:
    """A search space (name -> distribution) as rows of numbers (module docstring)."""

    def __init__(self, space: Mapping[str, BaseDistribution]) -> None:
        self.names = sorted(space)
        self.dists = [space[n] for n in self.names]
        self.d = len(self.names)
        self.categorical = np.array([isinstance(d, CategoricalDistribution) for d in self.dists], dtype=bool)

    def rows(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(len points, d) rows of parameter dicts (NaN for a parameter a point lacks)."""
        out = np.full((len(points), self.d), np.nan)
        for i, p in enumerate(points):
            for j, (n, dist) in enumerate(zip(self.names, self.dists, strict=True)):
                if n in p:
                    try:
                        out[i, j] = dist.to_internal_repr(p[n])
                    except ValueError:  # a value outside a categorical's choices: not a point of this space
                        pass
        return out

    def points(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Rows as the parameters each uses."""
        return [self.params(r, used_only=True) for r in rows]

    def params(self, row: np.ndarray, *, used_only: bool = False) -> dict[str, Any]:
        """A row as parameter values (Python types); `used_only` leaves out the NaN ones."""
        return {
            n: dist.to_external_repr(float(v))
            for n, dist, v in zip(self.names, self.dists, row, strict=True)
            if not (used_only and math.isnan(v))
        }

    def effective(self, full: np.ndarray, active: Active | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows with NaN where `active` says a parameter is not used, whether each is a point at all)."""
        if active is None:
            return full.copy(), np.ones(len(full), dtype=bool)
        eff, ok = np.full_like(full, np.nan), np.zeros(len(full), dtype=bool)
        for i, r in enumerate(full):
            used = active(self.params(r))
            if used is not None:
                ok[i] = True
                eff[i] = np.where([n in used for n in self.names], r, np.nan)
        return eff, ok

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, d) uniform random rows (log-uniform on a log scale), every parameter set."""
        cols = []
        for dist in self.dists:
            if isinstance(dist, CategoricalDistribution):
                cols.append(rng.integers(len(dist.choices), size=n).astype(float))
                continue
            lo, hi, step = dist.low, dist.high, dist.step
            if dist.log:  # an integer's log range is widened by half a step so that both ends get their share
                pad = 0.5 if isinstance(dist, IntDistribution) else 0.0
                v = np.exp(rng.uniform(math.log(lo - pad), math.log(hi + pad), n))
            else:
                v = (
                    rng.uniform(lo, hi, n)
                    if step is None
                    else lo + step * rng.integers(round((hi - lo) / step) + 1, size=n)
                )
            cols.append(_snap(dist, v))
        return np.column_stack(cols) if cols else np.zeros((n, 0))

    def moves(self, j: int, value: float) -> list[float]:
        """The values a single-parameter edit of parameter j moves `value` to (module docstring)."""
        dist = self.dists[j]
        if isinstance(dist, CategoricalDistribution):
            return [float(v) for v in range(len(dist.choices)) if v != value]
        grid = dist.step or (1 if isinstance(dist, IntDistribution) else 0.0)
        steps = [value - grid, value + grid] if grid and not dist.log else []
        u = self.unit(j, np.array([value]))[0]
        for s in NUMERIC_STEPS:
            steps += [self.from_unit(j, u - s), self.from_unit(j, u + s)]
        if dist.log and isinstance(dist, IntDistribution):
            steps += [value - 1, value + 1]
        moved = _snap(dist, np.array(steps, dtype=float))
        return sorted({float(v) for v in moved if v != value})

    def unit(self, j: int, v: np.ndarray) -> np.ndarray:
        """Positions of numeric parameter j's values in its range, in [0, 1] (log scale where it is log)."""
        dist = self.dists[j]
        if dist.log:
            return (np.log(v) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low))
        return (v - dist.low) / (dist.high - dist.low)

    def from_unit(self, j: int, u: float) -> float:
        dist = self.dists[j]
        u = min(1.0, max(0.0, u))
        if dist.log:
            return math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        return dist.low + u * (dist.high - dist.low)

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """Model inputs: categorical indices as they are, numeric values as their position in [0, 1]."""
        out = rows.copy()
        for j in np.flatnonzero(~self.categorical):
            out[:, j] = self.unit(j, rows[:, j])
        return out


def _snap(dist: BaseDistribution, v: np.ndarray) -> np.ndarray:
    """Values clipped to a numeric distribution's range and rounded to its grid."""
    v = np.clip(v, dist.low, dist.high)
    step = dist.step if dist.step is not None else (1 if isinstance(dist, IntDistribution) else None)
    if step is not None:
        v = dist.low + np.round((v - dist.low) / step) * step
        v = np.clip(v, dist.low, dist.high)
    return v


def repeats(rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Whether each row repeats a seen point: equal on every parameter that point used (its NaNs match
    anything: a parameter it did not use cannot make a candidate different from it)."""
    out = np.zeros(len(rows), dtype=bool)
    if not len(rows) or not len(seen):
        return out
    used = ~np.isnan(seen)
    for pattern in np.unique(used, axis=0):
        cols = np.flatnonzero(pattern)
        keys = {tuple(r) for r in seen[(used == pattern).all(axis=1)][:, cols].tolist()}
        out |= np.array([tuple(r) in keys for r in rows[:, cols].tolist()], dtype=bool)
    return out


def posterior(
    X: np.ndarray,
    y: np.ndarray,
    C: np.ndarray,
    categorical: np.ndarray,
    refit_every: int,
    lat: np.ndarray | None = None,
    lc: np.ndarray | None = None,
    *,
    trend: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of y at the candidates C (GP, mixed ARD kernel, fitted noise; X and C are model
    inputs, `Encoding.inputs`); with the latencies `lat` of X and `lc` of C, log-latency is one more input (given
    as (n, k) columns of positive quantities known before evaluation, latency and costs, the log of each is one).
    With `trend` (and those inputs), the GP models what a linear trend in them leaves (a ridge fit on their
    standardised logs): the mean extrapolates along them where no point is near, instead of reverting to the
    average."""
    m, s = float(y.mean()), float(y.std()) or 1.0
    z = (y - m) / s
    base, fitted, r = np.zeros(len(C)), y, 1.0
    if trend and lat is not None and lc is not None:
        F, Fc = (_logs(v, len(at)) for v, at in ((lat, X), (lc, C)))
        mu, sd = F.mean(axis=0), F.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        F, Fc = (F - mu) / sd, (Fc - mu) / sd
        beta = np.linalg.solve(F.T @ F + TREND_RIDGE * np.eye(F.shape[1]), F.T @ z)
        z, base = z - F @ beta, Fc @ beta
        r = float(z.std()) or 1.0
        z = fitted = z / r
    D, Ds = _distances(X, X, categorical, lat, lat), _distances(C, X, categorical, lc, lat)
    numeric = np.concatenate([~categorical, [False] * (D.shape[2] - len(categorical))])
    hp = _hyperparameters(D, fitted, refit_every, numeric)
    w = np.exp(hp[:-1])
    K = np.exp(-(D @ w))
    L = np.linalg.cholesky(K + (math.exp(hp[-1]) + 1e-8) * np.eye(len(z)))
    a = np.linalg.solve(L.T, np.linalg.solve(L, z))
    Ks = np.exp(-(Ds @ w))
    v = np.linalg.solve(L, Ks.T)
    var = np.clip(1.0 - (v * v).sum(0), 1e-12, None)
    return m + s * (base + r * (Ks @ a)), s * r * np.sqrt(var)


def _distances(
    A: np.ndarray,
    B: np.ndarray,
    categorical: np.ndarray,
    la: np.ndarray | None = None,
    lb: np.ndarray | None = None,
) -> np.ndarray:
    """(len A, len B, d [+ 1]) per-input distances (module docstring): 1 where a categorical parameter differs,
    the squared difference of a numeric one's position, 1 where one point uses a parameter and the other does
    not, 0 where neither does; with latencies (a column each of known quantities: latency, costs), the squared
    difference of the log of each (its weight, fitted like the others, sets the scale)."""
    na, nb = np.isnan(A)[:, None, :], np.isnan(B)[None, :, :]
    a, b = np.nan_to_num(A)[:, None, :], np.nan_to_num(B)[None, :, :]
    D = np.where(categorical, (a != b).astype(float), (a - b) ** 2)
    D = np.where(na | nb, np.where(na & nb, 0.0, 1.0), D)
    if la is None or lb is None:
        return D
    za, zb = _logs(la, len(A)), _logs(lb, len(B))
    return np.concatenate([D, (za[:, None, :] - zb[None, :, :]) ** 2], axis=2)


def _logs(values: np.ndarray, n: int) -> np.ndarray:
    """(n, k) logs of n points' known positive inputs, given as (n,) or (n, k)."""
    return np.log(np.clip(np.asarray(values, dtype=float).reshape(n, -1), 1e-12, None))


# Fitted kernel weights by the observations they were fitted on: the search builds a fresh sampler for every
# trial (each trial draws from its own seed), and a refit costs a few hundred Cholesky factorisations.
_FITS: dict[str, np.ndarray] = {}


def _hyperparameters(D: np.ndarray, y: np.ndarray, every: int, numeric: np.ndarray) -> np.ndarray:
    """log(theta_1..k), log(noise) maximising the marginal likelihood of the first m observations (D: their
    (n, n, k) input distances; `numeric`: which of the k inputs are numeric parameters), m the largest multiple
    of `every` <= n (all n when fewer): refitted every `every` results, and the same for the same history
    whichever sampler object asks."""
    m = max(len(y) // every * every, min(len(y), every))
    Dk, yk = D[:m, :m], y[:m]
    key = hashlib.sha1(Dk.tobytes() + yk.tobytes() + numeric.tobytes() + str(Dk.shape).encode()).hexdigest()
    if key in _FITS:
        return _FITS[key]
    z = (yk - yk.mean()) / (float(yk.std()) or 1.0)
    d, n = Dk.shape[2], m

    def nll(p: np.ndarray) -> float:
        K = np.exp(-(Dk @ np.exp(p[:d]))) + (math.exp(p[d]) + 1e-8) * np.eye(n)
        try:
            L = np.linalg.cholesky(K)
        except np.linalg.LinAlgError:
            return 1e10
        a = np.linalg.solve(L.T, np.linalg.solve(L, z))
        return float(0.5 * z @ a + np.log(np.diag(L)).sum())

    start = np.full(d + 1, math.log(0.5))
    start[d] = math.log(1e-2)
    bounds = [NUMERIC_BOUNDS if k else CATEGORICAL_BOUNDS for k in numeric] + [NOISE_BOUNDS]
    fit = minimize(nll, start, method="L-BFGS-B", bounds=bounds).x
    if len(_FITS) > 256:
        _FITS.clear()
    _FITS[key] = fit
    return fit
