"""`sampler=ehvi`: for (accuracy up, latency down), a sampler that uses what a NAS search knows: a candidate's
latency before it is evaluated.

Latency is known before training in the table benchmark (a column of the table) and in a real search (predicted
from the per-layer table, or timed, before the network trains), yet Optuna's samplers model it as a second
unknown objective. This one models only accuracy and scores each candidate by its expected hypervolume
improvement with its latency exactly known:

- **Space**: every parameter the study's finished trials used (their union: a conditional parameter counts
  where it was active) and those `distributions` declares (the search space's own, nas.search.space_rules,
  so that one no trial has used yet can be proposed), categorical, integer or float, on a linear or log
  scale. `active(params)` (the space's own rule, nas.search.space_rules.active_params) says which
  parameters a full assignment actually uses and whether it is a point at all; without it every parameter
  counts as used.
- **Candidates**: `pool` random draws plus the neighbours of the current front (every single-parameter edit: a
  categorical parameter set to each other choice, a numeric one stepped up and down by one grid step and by an
  eighth and a quarter of its (log) range), minus the points already evaluated, being evaluated, failed or
  pruned; their latency from `known(params)` (None: not a candidate). Where pricing is costly (a trained
  space: each candidate's network built and its layers looked up), `priced` caps it: the candidates are ranked
  at a latency estimated by a GP on log-latency from the evaluated points, and only the best `priced` are
  priced exactly and scored again.
- **Model**: a Gaussian process on log(1 - accuracy) (the error on a log scale, which separates the top of
  the accuracy range) with an ARD kernel `exp(-sum_j theta_j d_j)` over mixed inputs: d_j is 1 where a
  categorical parameter differs, the squared difference of a numeric one's position in its (log) range, and 1
  where a parameter is used by one point and not the other (0 where neither uses it: an inactive parameter is
  encoded explicitly, not imputed). The weights and the noise are fitted by maximum marginal likelihood every
  `refit_every` new results. With `latency_feature`, log-latency (known for every candidate) is one more input,
  a squared-distance term with its own weight: on NAS-Bench-201 accuracy grows with latency, so the model
  generalises from it.
- **Cells**: with `canonical` (a space's cell `dag`, nas.space.dag), the model sees each cell as the function
  it computes (edges that cannot reach the output set to none), its latency input the latency of that
  function's cell: two cells that differ only in dead edges are one input and share one accuracy (a
  disconnected cell's near-zero latency, different for each of its twins, no longer sets it apart), and the
  cheaper one is the better candidate.
- **Front**: with `denoise`, the front a candidate must improve on is the model's posterior mean at the
  evaluated points rather than their one noisy observation each (a lucky run would hide its neighbourhood).
- **Score**: for a candidate at latency l with accuracy a = 1 - exp(Y), Y ~ N(mu, sd^2), the hypervolume it
  adds is the integral over latencies x in [l, reference] of (a - b(x))^+, where b(x) is the best accuracy the
  front reaches at latency <= x (the worst observed accuracy below the front); its expectation is analytic
  per segment of the front: (1 - b) P(e < 1 - b) - E[e; e < 1 - b] for the error e = exp(Y).

**Start-up.** The first `n_startup_trials` are a design, not the model's choice. With `startup="latency"` each is
the pool candidate whose latency lies farthest, in quantiles of the pool's latencies, from every point
evaluated or being evaluated (and, with `canonical`, no twin of one): the first results span the latency axis the
front lives on instead of clustering where random draws fall. `startup="random"` draws them at random. The very
first trial, with nothing known of the space, is drawn at random.

Studies the model does not apply to (other objectives or directions than (maximise accuracy, minimise
latency)) get the start-up design for every trial; so does a study without `known`, whose design is random.
The search hands the sampler its latency oracle (`nas.search.trial.latency_oracle`: the candidate rendered,
costed and priced through the trial's evaluator, a measured latency predicted unless `sampler.measure`), and
the space's parameters and rule (nas.search.space_rules). Measured on NAS-Bench-201:
docs/search.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.optimize import minimize
from scipy.special import ndtr

from nas.pareto import ACCURACY_LATENCY, front_mask

Known = Callable[[Mapping[str, Any]], "float | None"]
Active = Callable[[Mapping[str, Any]], "Mapping[str, Any] | None"]
STARTUPS = ("latency", "random")
# Numeric neighbours: steps up and down of an eighth and a quarter of a parameter's (log) range, besides one
# grid step (a small move where the grid is fine, e.g. a width of 64 -> 65).
NUMERIC_STEPS = (0.125, 0.25)
# Bounds of log(theta): categorical (and latency) weights as tuned on NAS-Bench-201; a numeric input is a
# squared distance in [0, 1], so a short length scale (0.1 of the range) needs theta ~ 50.
CATEGORICAL_BOUNDS, NUMERIC_BOUNDS, NOISE_BOUNDS = (-5.0, 3.0), (-5.0, 5.0), (-9.0, 0.0)


class KnownLatencyEHVI(BaseSampler):
    """Expected hypervolume improvement with the latency objective known before evaluation (module docstring).

    For the model the study's directions must be (maximise accuracy, minimise latency), accuracy in [0, 1].
    Call order as in BaseSampler: `infer_relative_search_space` (the union of the finished trials' parameters),
    `sample_relative` (one point over all of them), `sample_independent` (random, for a parameter no finished
    trial has used yet).
    """

    def __init__(
        self,
        known: Known | None,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        startup: str = "latency",
        pool: int = 2000,
        refit_every: int = 10,
        latency_feature: bool = True,
        denoise: bool = True,
        priced: int | None = None,
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        active: Active | None = None,
        distributions: Mapping[str, BaseDistribution] | None = None,
    ) -> None:
        if startup not in STARTUPS:
            raise ValueError(f"unknown start-up design {startup!r}; valid: {', '.join(STARTUPS)}")
        if priced is not None and (not isinstance(priced, int) or priced < 1):
            raise ValueError(f"priced is a number of candidates >= 1 or None (all), got {priced!r}")
        self.known, self.canonical, self.active = known, canonical, active
        self.distributions = dict(distributions or {})
        self._view_names: list[str] = []
        self._view_rows: dict[bytes, np.ndarray] = {}  # point -> its cell's row (`_views`)
        self.n_startup, self.startup, self.pool, self.refit_every = (
            n_startup_trials,
            startup,
            pool,
            refit_every,
        )
        self.latency_feature, self.denoise, self.priced = latency_feature, denoise, priced
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Every parameter a finished trial used, and those of `distributions` (the space's own, so that a
        conditional parameter no trial has used yet can be proposed), with one distribution throughout (a
        parameter whose range changed between trials, or that has a single value, is left to independent
        sampling)."""
        space: dict[str, BaseDistribution] = dict(self.distributions)
        changed: set[str] = set()
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            for name, dist in t.distributions.items():
                if space.setdefault(name, dist) != dist:
                    changed.add(name)
        return {n: d for n, d in sorted(space.items()) if n not in changed and not d.single()}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        enc = _Encoding(search_space)
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values is not None and np.all(np.isfinite(t.values))
        ]
        model = study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
        if model and self.known is None:
            raise RuntimeError("KnownLatencyEHVI was built without its latency oracle (known=None)")
        # Points being evaluated, and those that failed or were pruned, are not proposed again either.
        others = (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL, TrialState.PRUNED)
        pending = [
            t
            for t in study.get_trials(deepcopy=False, states=others)
            if t.number != trial.number and self._whole(t.params, enc)
        ]
        seen_params = [t.params for t in [*done, *pending]]
        seen = enc.rows(seen_params)
        if not model or len(done) < self.n_startup:
            return self._design(enc, seen, seen_params)
        full = enc.rows([t.params for t in done])
        acc = np.array([t.values[0] for t in done], dtype=float)
        lat = np.array([_finite(self.known(t.params)) for t in done], dtype=float)
        lat = np.where(np.isfinite(lat), lat, [t.values[1] for t in done])  # known: the candidates' scale
        front = front_mask(np.column_stack((acc, lat)), ACCURACY_LATENCY)
        y = np.log(np.clip(1.0 - acc, 1e-6, None))
        X = self._views(enc, full)
        draws = np.concatenate([enc.draw(self._rng, self.pool), self._neighbours(enc, full[front])])
        rows, used = self._candidates(enc, draws, seen)

        feature = self._feature(enc, full, lat)

        def score(points: np.ndarray, lats: np.ndarray) -> np.ndarray:
            C, fc = self._views(enc, points), self._feature(enc, points, lats)
            # With denoise, the front a candidate must improve on is the model's accuracy at the evaluated
            # points, not one noisy observation of each (a lucky seed would hide the region around it).
            at, at_lat = (np.concatenate([C, X]), np.concatenate([fc, feature])) if self.denoise else (C, fc)
            lat_in = (feature, at_lat) if self.latency_feature else (None, None)
            mu, sd = _posterior(X, y, at, enc.categorical, self.refit_every, *lat_in)
            k = len(C)
            front_acc = 1.0 - np.exp(mu[k:]) if self.denoise else acc
            return expected_improvement(mu[:k], sd[:k], lats, front_acc, lat)

        if self.priced is not None and len(used) > self.priced:
            # Too many to price: rank them at a latency estimated from the evaluated points' (a GP on
            # log-latency, inputs as the space uses them), then price the best `priced` exactly.
            guess = _posterior(
                enc.inputs(full), np.log(lat), enc.inputs(used), enc.categorical, self.refit_every
            )
            top = np.argsort(-score(used, np.exp(guess[0])), kind="stable")[: self.priced]
            rows, used = rows[top], used[top]
        lats = np.array([_finite(self.known(p)) for p in enc.points(used)], dtype=float)
        ok = np.isfinite(lats)
        if not ok.any():
            return self._design(enc, seen, seen_params)
        rows, used, lats = rows[ok], used[ok], lats[ok]
        return enc.params(rows[int(np.argmax(score(used, lats)))])

    def _whole(self, params: Mapping[str, Any], enc: _Encoding) -> bool:
        """Whether `params` are a whole point (a running trial may have drawn only some of them yet)."""
        if self.active is None:
            return all(n in params for n in enc.names)
        used = self.active(params)
        return used is not None and set(used) <= set(params)

    def _feature(self, enc: _Encoding, rows: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """The latency input of the model for points given as rows, at latencies `lats`: with `canonical`, the
        latency of the cell each computes (twins, which differ only in dead edges, are one input; a
        disconnected cell's near-zero latency would otherwise set it apart from its twins)."""
        if self.canonical is None or not self.latency_feature:
            return lats
        self._views(enc, rows)  # the cells, remembered
        cells = [self._view_rows[r.tobytes()] for r in rows]
        own = np.array([_finite(self.known(enc.params(c, used_only=True))) for c in cells], dtype=float)
        return np.where(np.isfinite(own), own, lats)

    def _views(self, enc: _Encoding, rows: np.ndarray) -> np.ndarray:
        """Model inputs of points given as rows of the parameters they use: with `canonical`, of the cell each
        computes (remembered per point: the pool draws the same cells again)."""
        if self.canonical is None:
            return enc.inputs(rows)
        if self._view_names != enc.names:
            self._view_names, self._view_rows = enc.names, {}
        out = np.empty_like(rows)
        for i, r in enumerate(rows):
            key = r.tobytes()
            if key not in self._view_rows:
                self._view_rows[key] = enc.rows([self.canonical(enc.params(r, used_only=True))])[0]
            out[i] = self._view_rows[key]
        return enc.inputs(out)

    def _design(
        self, enc: _Encoding, seen: np.ndarray, seen_params: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """A start-up point (module docstring): the candidate farthest in latency quantile from every point
        evaluated or being evaluated (`seen`, as rows and as parameters), or a random unseen one."""
        rows, used = self._candidates(enc, enc.draw(self._rng, self.pool), seen)
        if not len(rows):
            return enc.params(enc.draw(self._rng, 1)[0])
        if self.startup == "random" or self.known is None or not len(seen_params):
            return enc.params(rows[0])
        rows, used = rows[: self.priced], used[: self.priced]
        lats = np.array([_finite(self.known(p)) for p in enc.points(used)], dtype=float)
        if self.canonical is not None:
            # A twin computes what an evaluated cell computes: nothing new to learn from it.
            lats[_repeats(self._views(enc, used), self._views(enc, seen))] = np.nan
        at = np.array([_finite(self.known(p)) for p in seen_params], dtype=float)
        ok, at = np.isfinite(lats), at[np.isfinite(at)]
        if not ok.any() or not len(at):
            return enc.params(rows[int(np.argmax(ok))])
        order = np.sort(lats[ok])  # the pool's latencies: their quantiles are the design's axis
        q, qs = ((np.searchsorted(order, v) + 0.5) / len(order) for v in (lats, at))
        gap = np.where(ok, np.abs(q[:, None] - qs[None, :]).min(axis=1), -1.0)
        return enc.params(rows[int(np.argmax(gap))])

    def _candidates(
        self, enc: _Encoding, full: np.ndarray, seen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(full rows, rows of the parameters each uses) of the distinct points of the space among `full` that
        are not `seen`, in their first order."""
        used, ok = enc.effective(full, self.active)
        keep = ok & ~_repeats(used, seen)
        full, used = full[keep], used[keep]
        _, first = np.unique(np.nan_to_num(used, nan=np.inf), axis=0, return_index=True)
        first = np.sort(first)
        return full[first], used[first]

    def _neighbours(self, enc: _Encoding, rows: np.ndarray) -> np.ndarray:
        """Every single-parameter edit of each row (module docstring), a parameter it does not use drawn first."""
        out = []
        for r in rows:
            base = np.where(np.isnan(r), enc.draw(self._rng, 1)[0], r)
            for j in range(enc.d):
                for v in enc.moves(j, base[j]):
                    q = base.copy()
                    q[j] = v
                    out.append(q)
        return np.array(out).reshape(-1, enc.d)


class _Encoding:
    """The relative search space as rows of numbers: a categorical parameter as its choice's index, a numeric
    one as its internal value (Optuna's internal representation); NaN where a point does not use it."""

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
    assert isinstance(dist, FloatDistribution | IntDistribution)
    v = np.clip(v, dist.low, dist.high)
    step = dist.step if dist.step is not None else (1 if isinstance(dist, IntDistribution) else None)
    if step is not None:
        v = dist.low + np.round((v - dist.low) / step) * step
        v = np.clip(v, dist.low, dist.high)
    return v


def _repeats(rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
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


def _posterior(
    X: np.ndarray,
    y: np.ndarray,
    C: np.ndarray,
    categorical: np.ndarray,
    refit_every: int,
    lat: np.ndarray | None = None,
    lc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of y at the candidates C (GP, mixed ARD kernel, fitted noise; X and C are model
    inputs, `_Encoding.inputs`); with the latencies `lat` of X and `lc` of C, log-latency is one more input."""
    m, s = float(y.mean()), float(y.std()) or 1.0
    z = (y - m) / s
    D, Ds = _distances(X, X, categorical, lat, lat), _distances(C, X, categorical, lc, lat)
    numeric = np.concatenate([~categorical, [False] * (D.shape[2] - len(categorical))])
    hp = _hyperparameters(D, y, refit_every, numeric)
    w = np.exp(hp[:-1])
    K = np.exp(-(D @ w))
    L = np.linalg.cholesky(K + (math.exp(hp[-1]) + 1e-8) * np.eye(len(z)))
    a = np.linalg.solve(L.T, np.linalg.solve(L, z))
    Ks = np.exp(-(Ds @ w))
    v = np.linalg.solve(L, Ks.T)
    var = np.clip(1.0 - (v * v).sum(0), 1e-12, None)
    return m + s * (Ks @ a), s * np.sqrt(var)


def _distances(
    A: np.ndarray,
    B: np.ndarray,
    categorical: np.ndarray,
    la: np.ndarray | None = None,
    lb: np.ndarray | None = None,
) -> np.ndarray:
    """(len A, len B, d [+ 1]) per-input distances (module docstring): 1 where a categorical parameter differs,
    the squared difference of a numeric one's position, 1 where one point uses a parameter and the other does
    not, 0 where neither does; with latencies, the squared difference of log-latency (its weight, fitted like
    the others, sets the scale)."""
    na, nb = np.isnan(A)[:, None, :], np.isnan(B)[None, :, :]
    a, b = np.nan_to_num(A)[:, None, :], np.nan_to_num(B)[None, :, :]
    D = np.where(categorical, (a != b).astype(float), (a - b) ** 2)
    D = np.where(na | nb, np.where(na & nb, 0.0, 1.0), D)
    if la is None or lb is None:
        return D
    za, zb = np.log(np.clip(la, 1e-12, None)), np.log(np.clip(lb, 1e-12, None))
    return np.concatenate([D, ((za[:, None] - zb[None, :]) ** 2)[:, :, None]], axis=2)


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


def expected_improvement(
    mu: np.ndarray, sd: np.ndarray, lc: np.ndarray, acc: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """Expected hypervolume improvement of candidates at latencies `lc` whose error e = 1 - accuracy is
    lognormal (log e ~ N(mu, sd^2)), over the front of the observed (acc, lat); reference point: the worst
    observed accuracy and just past the largest latency seen."""
    f = front_mask(np.column_stack((acc, lat)), ACCURACY_LATENCY)
    o = np.argsort(lat[f])
    fl, fa = lat[f][o], np.maximum.accumulate(acc[f][o])
    ref = max(lat.max(), lc.max()) * 1.0001
    starts = np.concatenate([[min(lc.min(), fl[0])], fl])
    ends = np.concatenate([fl, [ref]])
    base = np.concatenate([[acc.min()], fa])  # best accuracy reached at latency <= each segment's start
    width = np.clip(ends[None, :] - np.maximum(starts[None, :], lc[:, None]), 0.0, None)
    gap = np.clip(1.0 - base[None, :], 1e-12, None)  # the error a candidate must beat
    dd = (np.log(gap) - mu[:, None]) / sd[:, None]
    gain = gap * ndtr(dd) - np.exp(mu[:, None] + 0.5 * sd[:, None] ** 2) * ndtr(dd - sd[:, None])
    return (width * np.clip(gain, 0.0, None)).sum(1)


def _finite(value: float | None) -> float:
    return float("nan") if value is None else float(value)
