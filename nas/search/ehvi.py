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
  at a latency (and costs) estimated by a GP on the log of each from the evaluated points, and only the best
  `priced` are priced exactly and scored again.
- **Model**: a Gaussian process on log(1 - accuracy) (the error on a log scale, which separates the top of
  the accuracy range) with an ARD kernel over mixed inputs (nas.search.mixed): a term per categorical
  parameter that differs, the squared difference of a numeric one's position in its (log) range, and an unused
  parameter encoded explicitly, not imputed. The weights and the noise are fitted by maximum marginal
  likelihood every `refit_every` new results. With `latency_feature`, log-latency (known for every candidate) is one more input,
  a squared-distance term with its own weight: on NAS-Bench-201 accuracy grows with latency, so the model
  generalises from it. So is the log of each of `cost_features` (`costs(params)`: the evaluator's count of the
  candidate, its `params` and `macs`, known before it trains like its latency; accuracy grows with what a
  network computes on any device, while latency follows it on some devices only). With `trend`, the model's
  mean is a linear trend in those logs (a ridge fit) and the GP models what it leaves.
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
front lives on instead of clustering where random draws fall; its very first trial, with nothing known yet, is
drawn at random. `startup="cost"` (with `costs`) chooses the same way among the pool candidates that compute
the most for their latency (no other candidate has a larger sum of the logs of `cost_features`, of the cell it
computes with `canonical`, at a latency no higher: the prior that accuracy grows with compute), its first at
the middle quantile; without `costs` it is the latency design. `startup="random"` draws them at random.

Studies the model does not apply to (other objectives or directions than (maximise accuracy, minimise
latency)) get the start-up design for every trial; so does a study without `known`, whose design is random.
The search hands the sampler its latency oracle (`nas.search.trial.latency_oracle`: the candidate rendered,
costed and priced through the trial's evaluator, a measured latency predicted unless `sampler.measure`), its
cost oracle (`nas.search.trial.cost_oracle`: the same rendering's params / MACs), and the space's parameters
and rule (nas.search.space_rules). Measured on NAS-Bench-201:
docs/search.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.special import ndtr

from nas.pareto import ACCURACY_LATENCY, front_mask
from nas.search import optuna_internals as internals
from nas.search.mixed import Active, Encoding, posterior, repeats

Known = Callable[[Mapping[str, Any]], "float | None"]
# params -> what the candidate costs before it trains (the evaluator's count: {"params": ..., "macs": ...}), or
# None where the trial would reject it.
Costs = Callable[[Mapping[str, Any]], "Mapping[str, float] | None"]
STARTUPS = ("cost", "latency", "random")
COST_FEATURES = ("macs", "params")  # what `costs` gives (nas.search.trial.cost_oracle)


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
        costs: Costs | None = None,
        cost_features: Sequence[str] = (),
        trend: bool = False,
    ) -> None:
        if startup not in STARTUPS:
            raise ValueError(f"unknown start-up design {startup!r}; valid: {', '.join(STARTUPS)}")
        if priced is not None and (not isinstance(priced, int) or isinstance(priced, bool) or priced < 1):
            raise ValueError(f"priced is a number of candidates >= 1 or None (all), got {priced!r}")
        if isinstance(cost_features, str) or not set(cost_features) <= set(COST_FEATURES):
            raise ValueError(
                f"cost_features is a list of {', '.join(COST_FEATURES)} (or []), got {cost_features!r}"
            )
        self.canonical, self.active = canonical, active
        self.cost_features, self.trend = tuple(cost_features), trend
        # Per-point memos by kind ("latency", "counts", "cell"), keyed by a point's row; rows depend on the space's
        # parameter names, so a change of those empties them all (`_per_point`).
        self._memo_names: list[str] = []
        self._memos: dict[str, dict[bytes, Any]] = {}
        self._known: Known | None = None
        self._costs: Costs | None = None
        self.known, self.costs = known, costs  # (their setters empty their memos)
        self.distributions = dict(distributions or {})
        self.n_startup, self.startup, self.pool, self.priced = n_startup_trials, startup, pool, priced
        self.refit_every, self.latency_feature, self.denoise = refit_every, latency_feature, denoise
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)

    @property
    def known(self) -> Known | None:
        """The latency oracle: params -> latency, or None where the trial would reject them."""
        return self._known

    @known.setter
    def known(self, value: Known | None) -> None:
        self._known = value
        self._memos.pop("latency", None)

    @property
    def costs(self) -> Costs | None:
        """The cost oracle: params -> the evaluator's counts ({"params", "macs"}), or None; optional."""
        return self._costs

    @costs.setter
    def costs(self, value: Costs | None) -> None:
        self._costs = value
        self._memos.pop("counts", None)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def reseed(self, seed: int) -> None:
        """Where a fresh sampler of seed `seed` starts (nas.search.optuna_internals.reseed): a worker builds one
        sampler and reseeds it for each trial."""
        self._rng = np.random.default_rng(seed)
        internals.reseed(self._random, seed)

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
        enc = Encoding(search_space)
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values is not None and np.all(np.isfinite(t.values))
        ]
        model = study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
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
        if self.known is None:
            raise RuntimeError("KnownLatencyEHVI was built without its latency oracle (known=None)")
        full = enc.rows([t.params for t in done])
        acc = np.array([t.values[0] for t in done], dtype=float)
        lat = np.array([_finite(self.known(t.params)) for t in done], dtype=float)
        lat = np.where(np.isfinite(lat), lat, [t.values[1] for t in done])  # known: the candidates' scale
        front = front_mask(np.column_stack((acc, lat)), ACCURACY_LATENCY)
        y = np.log(np.clip(1.0 - acc, 1e-6, None))
        X = self._views(enc, full)
        draws = np.concatenate([enc.draw(self._rng, self.pool), self._neighbours(enc, full[front])])
        rows, used = self._candidates(enc, draws, seen)

        feature = self._features(enc, full, lat)

        def score(points: np.ndarray, lats: np.ndarray, fc: np.ndarray | None) -> np.ndarray:
            C = self._views(enc, points)
            # With denoise, the front a candidate must improve on is the model's accuracy at the evaluated
            # points, not one noisy observation of each (a lucky seed would hide the region around it).
            at = np.concatenate([C, X]) if self.denoise else C
            at_f = None if fc is None else (np.concatenate([fc, feature]) if self.denoise else fc)
            mu, sd = posterior(X, y, at, enc.categorical, self.refit_every, feature, at_f, trend=self.trend)
            k = len(C)
            front_acc = 1.0 - np.exp(mu[k:]) if self.denoise else acc
            return expected_improvement(mu[:k], sd[:k], lats, front_acc, lat)

        if self.priced is not None and len(used) > self.priced:
            # Too many to price: rank them at a latency (and costs) estimated from the evaluated points' (a GP
            # on the log of each, inputs as the space uses them), then price the best `priced` exactly.
            def guess(values: np.ndarray) -> np.ndarray:
                mu = posterior(
                    enc.inputs(full), np.log(values), enc.inputs(used), enc.categorical, self.refit_every
                )
                return np.exp(mu[0])

            lat_guess = guess(lat)
            f_guess = None if feature is None else np.column_stack([guess(f) for f in feature.T])
            top = np.argsort(-score(used, lat_guess, f_guess), kind="stable")[: self.priced]
            rows, used = rows[top], used[top]
        lats = self._latencies(enc, used)
        ok = np.isfinite(lats)
        if not ok.any():
            return self._design(enc, seen, seen_params)
        rows, used, lats = rows[ok], used[ok], lats[ok]
        return enc.params(rows[int(np.argmax(score(used, lats, self._features(enc, used, lats))))])

    def _whole(self, params: Mapping[str, Any], enc: Encoding) -> bool:
        """Whether `params` are a whole point (a running trial may have drawn only some of them yet)."""
        if self.active is None:
            return all(n in params for n in enc.names)
        used = self.active(params)
        return used is not None and set(used) <= set(params)

    def _per_point(
        self, enc: Encoding, kind: str, rows: np.ndarray, value: Callable[[dict[str, Any]], Any]
    ) -> list[Any]:
        """`value(params)` of points given as rows of the parameters they use, memoised per point and `kind`."""
        if self._memo_names != enc.names:
            self._memo_names, self._memos = enc.names, {}
        memo, keys = self._memos.setdefault(kind, {}), [r.tobytes() for r in rows]
        for key, r in zip(keys, rows, strict=True):
            if key not in memo:
                memo[key] = value(enc.params(r, used_only=True))
        return [memo[k] for k in keys]

    def _latencies(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
        """`known` of points given as rows of the parameters they use (NaN: no point), memoised per point."""
        lats = self._per_point(enc, "latency", rows, lambda p: _finite(self.known(p)))  # type: ignore[misc]
        return np.array(lats, dtype=float).reshape(len(rows))

    def _counts(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
        """(len rows, len cost_features) of `costs` of points given as rows of the parameters they use (NaN where
        unknown), memoised per point."""
        if self.costs is None:
            return np.full((len(rows), len(self.cost_features)), np.nan)

        def count(params: dict[str, Any]) -> list[float]:
            c = self.costs(params)  # type: ignore[misc]
            return [_finite(None if c is None else c.get(f)) for f in self.cost_features]

        counts = self._per_point(enc, "counts", rows, count)
        return np.array(counts, dtype=float).reshape(len(rows), len(self.cost_features))

    def _cells(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
        """Rows of the cells points given as rows compute (with `canonical`; else the rows themselves)."""
        if self.canonical is None:
            return rows
        canonical = self.canonical
        cells = self._per_point(enc, "cell", rows, lambda p: enc.rows([canonical(p)])[0])
        return np.array(cells, dtype=float).reshape(rows.shape)

    def _features(self, enc: Encoding, rows: np.ndarray, lats: np.ndarray) -> np.ndarray | None:
        """(len rows, k) known inputs of the model (positive values, the model takes their log) of points given
        as rows at latencies `lats`, or None: with `latency_feature` the latency, then each of `cost_features`
        (`costs`). With `canonical`, those of the cell each point computes (twins, which differ only in dead
        edges, are one input; a disconnected cell's near-zero latency would otherwise set it apart from its
        twins; a dead edge's MACs compute nothing)."""
        cols = []
        cells = self._cells(enc, rows)
        if self.latency_feature:
            own = self._latencies(enc, cells) if self.canonical is not None else lats
            cols.append(np.where(np.isfinite(own), own, lats))
        if self.cost_features and self.costs is not None:
            counts = self._counts(enc, cells)
            if self.canonical is not None and not np.isfinite(counts).all():
                counts = np.where(np.isfinite(counts), counts, self._counts(enc, rows))
            # a count the evaluator does not give: no information, one value for every point
            cols.extend(np.where(np.isfinite(counts), counts, 1.0).T)
        return np.column_stack(cols) if cols else None

    def _views(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
        """Model inputs of points given as rows of the parameters they use: with `canonical`, of the cell each
        computes (remembered per point: the pool draws the same cells again)."""
        return enc.inputs(self._cells(enc, rows))

    def _design(
        self, enc: Encoding, seen: np.ndarray, seen_params: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """A start-up point (module docstring): the candidate farthest in latency quantile from every point
        evaluated or being evaluated (`seen`, as rows and as parameters), with `startup="cost"` among those
        that compute the most for their latency; or a random unseen one."""
        rows, used = self._candidates(enc, enc.draw(self._rng, self.pool), seen)
        if not len(rows):
            return enc.params(enc.draw(self._rng, 1)[0])
        by_cost = self.startup == "cost" and self.costs is not None and bool(self.cost_features)
        if self.startup == "random" or self.known is None or not (len(seen_params) or by_cost):
            return enc.params(rows[0])
        rows, used = rows[: self.priced], used[: self.priced]
        lats = self._latencies(enc, used)
        if self.canonical is not None:
            # A twin computes what an evaluated cell computes: nothing new to learn from it.
            lats[repeats(self._views(enc, used), self._views(enc, seen))] = np.nan
        at = np.array([_finite(self.known(p)) for p in seen_params], dtype=float)
        ok, at = np.isfinite(lats), at[np.isfinite(at)]
        if not ok.any():
            return enc.params(rows[0])
        order = np.sort(lats[ok])  # the pool's latencies: their quantiles are the design's axis
        q, qs = ((np.searchsorted(order, v) + 0.5) / len(order) for v in (lats, at))
        if by_cost:
            # The prior of most networks' accuracy: it grows with what they compute (MACs, parameters; of the
            # cell a point computes). Only the candidates no other computes more than at a latency no higher.
            counts = np.log(np.clip(self._counts(enc, self._cells(enc, used)), 1e-12, None)).sum(axis=1)
            ok &= np.isfinite(counts)
            if ok.any():
                idx = np.flatnonzero(ok)
                best = front_mask(np.column_stack((counts[idx], lats[idx])), ACCURACY_LATENCY)
                ok = np.zeros_like(ok)
                ok[idx[best]] = True
            if not len(at):  # the first point: the middle of the latency axis
                return enc.params(rows[int(np.argmin(np.where(ok, np.abs(q - 0.5), np.inf)))])
        if not ok.any() or not len(at):
            return enc.params(rows[int(np.argmax(ok))])
        gap = np.where(ok, np.abs(q[:, None] - qs[None, :]).min(axis=1), -1.0)
        return enc.params(rows[int(np.argmax(gap))])

    def _candidates(self, enc: Encoding, full: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(full rows, rows of the parameters each uses) of the distinct points of the space among `full` that
        are not `seen`, in their first order."""
        used, ok = enc.effective(full, self.active)
        keep = ok & ~repeats(used, seen)
        full, used = full[keep], used[keep]
        _, first = np.unique(np.nan_to_num(used, nan=np.inf), axis=0, return_index=True)
        first = np.sort(first)
        return full[first], used[first]

    def _neighbours(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
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
