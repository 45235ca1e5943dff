"""`sampler=ehvi`: for (accuracy up, latency down), a sampler that uses what a NAS search knows: a candidate's
latency before it is evaluated.

Latency is known before training in the table benchmark (a column of the table) and in a real search (timed or
predicted before the network trains), yet Optuna's samplers model it as a second unknown objective. This one
models only accuracy and scores each candidate by its expected hypervolume improvement with its latency
exactly known:

- **Candidates**: `pool` random cells plus every single-edit neighbour of the current front, minus the cells
  already evaluated, being evaluated, failed or pruned; their latency from `known(params)` (None: not a candidate).
- **Model**: a Gaussian process on log(1 - accuracy) (the error on a log scale, which separates the top of
  the accuracy range), with a categorical ARD kernel `exp(-sum_j theta_j [a_j != b_j])` whose per-parameter
  weights and noise are fitted by maximum marginal likelihood every `refit_every` new results. With
  `latency_feature`, log-latency (known for every candidate) is one more input, a squared-distance term with
  its own fitted weight: on NAS-Bench-201 accuracy grows with latency, so the model generalises from it.
- **Cells**: with `canonical` (a space's cell `dag`, nas.space.dag), the model sees each cell as the function
  it computes (edges that cannot reach the output set to none): two cells that differ only in dead edges
  share one accuracy, and the cheaper one is the better candidate.
- **Front**: with `denoise`, the front a candidate must improve on is the model's posterior mean at the
  evaluated cells rather than their one noisy observation each (a lucky run would hide its neighbourhood).
- **Score**: for a candidate at latency l with accuracy a = 1 - exp(Y), Y ~ N(mu, sd^2), the hypervolume it
  adds is the integral over latencies x in [l, reference] of (a - b(x))^+, where b(x) is the best accuracy the
  front reaches at latency <= x (the worst observed accuracy below the front); its expectation is analytic
  per segment of the front: (1 - b) P(e < 1 - b) - E[e; e < 1 - b] for the error e = exp(Y).

The first `n_startup_trials` are drawn at random (Optuna's independent sampling). The search hands the sampler
its latency oracle (`nas.search.trial.latency_oracle`: the candidate rendered, costed and timed or looked up
through the trial's evaluator, as the trial itself would); `SearchPlan` refuses it where that is not cheap or
the space is not categorical. Measured on NAS-Bench-201: docs/search.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial, TrialState
from scipy.optimize import minimize
from scipy.special import ndtr

from nas.pareto import ACCURACY_LATENCY, front_mask

Known = Callable[[Mapping[str, Any]], "float | None"]


class KnownLatencyEHVI(BaseSampler):
    """Expected hypervolume improvement with the latency objective known before evaluation (module docstring).

    The study's directions must be (maximise accuracy, minimise latency), accuracy in [0, 1].
    """

    def __init__(
        self,
        known: Known | None,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        pool: int = 2000,
        refit_every: int = 10,
        latency_feature: bool = True,
        denoise: bool = True,
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        self.known, self.canonical = known, canonical
        self.n_startup, self.pool, self.refit_every = n_startup_trials, pool, refit_every
        self.latency_feature, self.denoise = latency_feature, denoise
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self._space.calculate(study)
        return {n: d for n, d in space.items() if isinstance(d, CategoricalDistribution)}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        names = sorted(search_space)
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values is not None and all(n in t.params for n in names)
        ]
        if not names or len(done) < self.n_startup:
            return {}
        if self.known is None:
            raise RuntimeError("KnownLatencyEHVI was built without its latency oracle (known=None)")
        choices = [list(search_space[n].choices) for n in names]
        index = [{c: i for i, c in enumerate(ch)} for ch in choices]

        def code(params: Mapping[str, Any]) -> tuple[int, ...]:
            return tuple(index[j][params[n]] for j, n in enumerate(names))

        X = np.array([code(t.params) for t in done])
        acc = np.array([t.values[0] for t in done], dtype=float)
        lat = np.array([t.values[1] for t in done], dtype=float)
        seen = {tuple(r) for r in X.tolist()}
        # Cells being evaluated, and those that failed or were pruned, are not proposed again either.
        others = (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL, TrialState.PRUNED)
        for t in study.get_trials(deepcopy=False, states=others):
            if t.number != trial.number and all(n in t.params for n in names):
                seen.add(code(t.params))
        cand = self._candidates(X, acc, lat, [len(c) for c in choices], seen)
        params = [{n: choices[j][int(r[j])] for j, n in enumerate(names)} for r in cand]
        lats = np.array([_finite(self.known(p)) for p in params], dtype=float)
        ok = np.isfinite(lats)
        if not ok.any():
            return {}
        cand, lats = cand[ok], lats[ok]
        params = [p for p, k in zip(params, ok, strict=True) if k]
        y = np.log(np.clip(1.0 - acc, 1e-6, None))
        if self.canonical is not None:  # the model sees each cell as the function it computes
            X = np.array([code(self.canonical(t.params)) for t in done])
            cand = np.array([code(self.canonical(p)) for p in params])
        # With denoise, the front a candidate must improve on is the model's accuracy at the evaluated cells,
        # not one noisy observation of each (a lucky seed would hide the region around it).
        at, at_lat = (
            (np.concatenate([cand, X]), np.concatenate([lats, lat])) if self.denoise else (cand, lats)
        )
        mu, sd = self._posterior(X, y, at, *((lat, at_lat) if self.latency_feature else ()))
        k = len(cand)
        front_acc = 1.0 - np.exp(mu[k:]) if self.denoise else acc
        return params[int(np.argmax(expected_improvement(mu[:k], sd[:k], lats, front_acc, lat)))]

    def _candidates(
        self, X: np.ndarray, acc: np.ndarray, lat: np.ndarray, sizes: list[int], seen: set
    ) -> np.ndarray:
        d = len(sizes)
        rows = [np.stack([self._rng.integers(s, size=self.pool) for s in sizes], axis=1)]
        for r in X[front_mask(np.column_stack((acc, lat)), ACCURACY_LATENCY)]:
            for j in range(d):
                for v in range(sizes[j]):
                    if v != r[j]:
                        q = r.copy()
                        q[j] = v
                        rows.append(q[None, :])
        allc = np.unique(np.concatenate(rows), axis=0)
        return allc[np.array([tuple(r) not in seen for r in allc.tolist()], dtype=bool)]

    def _posterior(
        self,
        X: np.ndarray,
        y: np.ndarray,
        C: np.ndarray,
        lat: np.ndarray | None = None,
        lc: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of y at the candidates C (GP, categorical ARD kernel, fitted noise); with the
        latencies `lat` of X and `lc` of C, log-latency is one more input (a squared-distance term)."""
        m, s = float(y.mean()), float(y.std()) or 1.0
        z = (y - m) / s
        D, Ds = _distances(X, X, lat, lat), _distances(C, X, lc, lat)
        hp = _hyperparameters(D, y, self.refit_every)
        w = np.exp(hp[:-1])
        K = np.exp(-(D @ w))
        L = np.linalg.cholesky(K + (math.exp(hp[-1]) + 1e-8) * np.eye(len(z)))
        a = np.linalg.solve(L.T, np.linalg.solve(L, z))
        Ks = np.exp(-(Ds @ w))
        v = np.linalg.solve(L, Ks.T)
        var = np.clip(1.0 - (v * v).sum(0), 1e-12, None)
        return m + s * (Ks @ a), s * np.sqrt(var)


def _distances(
    A: np.ndarray, B: np.ndarray, la: np.ndarray | None = None, lb: np.ndarray | None = None
) -> np.ndarray:
    """(len A, len B, d [+ 1]) per-input distances: 1 where a categorical parameter differs; with latencies,
    the squared difference of log-latency (its weight, fitted like the others, sets the scale)."""
    D = (A[:, None, :] != B[None, :, :]).astype(float)
    if la is None or lb is None:
        return D
    za, zb = np.log(np.clip(la, 1e-12, None)), np.log(np.clip(lb, 1e-12, None))
    return np.concatenate([D, ((za[:, None] - zb[None, :]) ** 2)[:, :, None]], axis=2)


# Fitted kernel weights by the observations they were fitted on: the search builds a fresh sampler for every
# trial (each trial draws from its own seed), and a refit costs a few hundred Cholesky factorisations.
_FITS: dict[str, np.ndarray] = {}


def _hyperparameters(D: np.ndarray, y: np.ndarray, every: int) -> np.ndarray:
    """log(theta_1..k), log(noise) maximising the marginal likelihood of the first m observations (D: their
    (n, n, k) input distances), m the largest multiple of `every` <= n (all n when fewer): refitted every
    `every` results, and the same for the same history whichever sampler object asks."""
    m = max(len(y) // every * every, min(len(y), every))
    Dk, yk = D[:m, :m], y[:m]
    key = hashlib.sha1(Dk.tobytes() + yk.tobytes() + str(Dk.shape).encode()).hexdigest()
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
    fit = minimize(nll, start, method="L-BFGS-B", bounds=[(-5, 3)] * d + [(-9, 0)]).x
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
