"""`sampler.no_repeat`: a sampler that does not propose an architecture the study has already evaluated.

In a finite space a converged TPE keeps proposing points it has seen (a fifth of 200 trials on
NAS-Bench-201's 15,625 cells); a repeat teaches the sampler nothing and, with `reuse`, still spends a trial
of the budget. Measured on NAS-Bench-201 (`python -m experiments.bench nb201`, whose `_norepeat` samplers are
this wrapper; 30 seeds, docs/benchmarks.md), multivariate TPE with it had lower hypervolume regret than
without on all three devices at 50, 100 and 200 evaluations.

Only relative samples (the multivariate model's joint proposal) are checked: independent ones (start-up
trials, random draws) are drawn one parameter at a time and rarely repeat. A proposal repeats a finished trial
when it agrees with it on every parameter that trial has, and that trial has no parameter the proposal lacks
(a conditional parameter the trial did not use, e.g. `expansion` of a basic block, does not make it
different). A repeat is redrawn up to `tries` times, then the relative parameters are drawn uniformly at
random (a fresh point with near certainty); whatever still repeats is left to the search's duplicate reuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from nas.search import optuna_internals as internals

__all__ = ["NoRepeat", "repeats"]


def repeats(params: Mapping[str, Any], seen: Mapping[str, Any]) -> bool:
    """Whether proposing `params` would evaluate the trial whose parameters are `seen` again."""
    if not set(seen) <= set(params):
        return False  # `seen` used a parameter this proposal leaves to independent sampling: unknown
    return all(params[k] == v for k, v in seen.items())


class NoRepeat(BaseSampler):
    """`inner`, redrawn when its relative proposal repeats an evaluated trial (see the module docstring).

    Every BaseSampler method is passed through to `inner`; `sample_relative` is the one that checks.
    """

    def __init__(self, inner: BaseSampler, *, seed: int | None = None, tries: int = 20) -> None:
        self.inner, self.tries = inner, tries
        self._random = RandomSampler(seed=seed)

    def __repr__(self) -> str:
        return f"NoRepeat({self.inner!r})"

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._random.reseed_rng()

    def reseed(self, seed: int) -> None:
        """Where a fresh wrapper of a fresh `inner` of seed `seed` starts (nas.search.optuna_internals.reseed)."""
        internals.reseed(self.inner, seed)
        internals.reseed(self._random, seed)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        params = self.inner.sample_relative(study, trial, search_space)
        if not params:
            return params
        done = [
            t.params
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.params
        ]
        for _ in range(self.tries):
            if not any(repeats(params, seen) for seen in done):
                return params
            params = self.inner.sample_relative(study, trial, search_space)
        names = sorted(params)
        for _ in range(100):
            params = {n: self._random.sample_independent(study, trial, n, search_space[n]) for n in names}
            if not any(repeats(params, seen) for seen in done):
                break
        return params

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.inner.after_trial(study, trial, state, values)
