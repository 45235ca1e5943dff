"""The sampler configurations the NAS-Bench-201 benchmark compares, by name (stock Optuna 5 samplers + variants;
`_norepeat`: the search's own `sampler.no_repeat` wrapper, nas.search.norepeat).

Private to `experiments.bench` (a leading underscore keeps it off the list of benchmark commands).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler

from nas.config import CONF_DIR, to_plain
from nas.search.ehvi import Costs, Known, KnownLatencyEHVI
from nas.search.norepeat import NoRepeat
from nas.search.optuna_internals import set_generation
from nas.search.study import make_sampler
from nas.space import load_space


class Handover(BaseSampler):
    """`first` for the first `n` trials, then `then`; a genetic `then` takes those trials as its first generation.

    Order of calls as in BaseSampler: infer_relative_search_space, sample_relative, sample_independent, each
    routed by the trial's number.
    """

    def __init__(self, first: BaseSampler, then: BaseSampler, n: int) -> None:
        self.first, self.then, self.n = first, then, n

    def _pick(self, trial: optuna.trial.FrozenTrial) -> BaseSampler:
        return self.first if trial.number < self.n else self.then

    def infer_relative_search_space(self, study, trial):  # noqa: D102
        return self._pick(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # noqa: D102
        return self._pick(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
        return self._pick(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):  # noqa: D102
        if trial.number < self.n and isinstance(self.then, NSGAIISampler):
            # Marking the warm-up trials as NSGA-II's generation 0 makes them the population its first
            # children are bred from (Optuna's private API, in nas.search.optuna_internals).
            set_generation(study, trial, self.then, 0)
        self._pick(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # noqa: D102
        self._pick(trial).after_trial(study, trial, state, values)


def _gamma(fraction: float) -> Callable[[int], int]:
    return lambda n: math.ceil(fraction * n)


def _tpe(**kw: Any) -> Callable[[int], BaseSampler]:
    return lambda seed: TPESampler(seed=seed, **kw)


MV = {"multivariate": True}
# name -> seed -> sampler. `tpe` is the stock TPESampler (independent per edge for two objectives).
SAMPLERS: dict[str, Callable[[int], BaseSampler]] = {
    "random": lambda seed: RandomSampler(seed=seed),
    "tpe": _tpe(),
    "tpe_mv": _tpe(**MV),
    "tpe_mv_group": _tpe(**MV, group=True),
    "tpe_mv_s5": _tpe(**MV, n_startup_trials=5),
    "tpe_mv_s20": _tpe(**MV, n_startup_trials=20),
    "tpe_mv_s30": _tpe(**MV, n_startup_trials=30),
    "tpe_mv_ei100": _tpe(**MV, n_ei_candidates=100),
    "tpe_mv_ei1000": _tpe(**MV, n_ei_candidates=1000),
    "tpe_mv_prior0.3": _tpe(**MV, prior_weight=0.3),
    "tpe_mv_prior3": _tpe(**MV, prior_weight=3.0),
    "tpe_mv_g05": _tpe(**MV, gamma=_gamma(0.05)),
    "tpe_mv_g20": _tpe(**MV, gamma=_gamma(0.2)),
    "tpe_mv_g30": _tpe(**MV, gamma=_gamma(0.3)),
    "tpe_g20": _tpe(gamma=_gamma(0.2)),
    "tpe_mv_norepeat": lambda seed: NoRepeat(TPESampler(seed=seed, **MV), seed=seed),
    "tpe_mv_s20_norepeat": lambda seed: NoRepeat(TPESampler(seed=seed, **MV, n_startup_trials=20), seed=seed),
    "tpe_mv_ei100_norepeat": lambda seed: NoRepeat(
        TPESampler(seed=seed, **MV, n_ei_candidates=100), seed=seed
    ),
    "gp": lambda seed: GPSampler(seed=seed),
    "gp_norepeat": lambda seed: NoRepeat(GPSampler(seed=seed), seed=seed),
    "gp_log": lambda seed: GPSampler(seed=seed),
    "tpe_mv_norepeat_log": lambda seed: NoRepeat(TPESampler(seed=seed, **MV), seed=seed),
    "nsga2": lambda seed: NSGAIISampler(seed=seed),
    "nsga2_p20": lambda seed: NSGAIISampler(seed=seed, population_size=20),
    "nsga2_p100": lambda seed: NSGAIISampler(seed=seed, population_size=100),
    "tpe_mv50_nsga2": lambda seed: Handover(
        TPESampler(seed=seed, **MV), NSGAIISampler(seed=seed, population_size=50), 50
    ),
    "tpe_mv20_nsga2": lambda seed: Handover(
        TPESampler(seed=seed, **MV), NSGAIISampler(seed=seed, population_size=20), 20
    ),
}


# Configurations whose sampler is told log(latency) instead of latency (see nb201.run_one).
LOG_LATENCY = frozenset({"gp_log", "tpe_mv_norepeat_log"})


# NAS-Bench-201's cell as a DAG (conf/space/nb201.yaml `dag`): dead edges set to none for the model
_CELL = load_space("nb201").dag.canonical


def _search_ehvi(seed: int, known: Known, costs: Costs | None, **options: Any) -> BaseSampler:
    """The search's own `sampler=ehvi`: conf/sampler/ehvi.yaml (`options` changed) through
    nas.search.study.make_sampler, with the space's cell, as `python -m nas.search space=nb201 benchmark=nb201`
    builds it for each trial (`costs`: the evaluator's params / MACs of a candidate, nb201.cost_oracle)."""
    cfg = to_plain(OmegaConf.load(CONF_DIR / "sampler" / "ehvi.yaml"))  # as `sampler=ehvi` reads it
    cfg["priced"] = None  # a table look-up: every candidate priced, as SearchPlan resolves `auto` for nb201
    return make_sampler(
        {**cfg, **options, "seed": None}, seed=seed, known=known, costs=costs, dag=load_space("nb201").dag
    )


# Configurations that are told each candidate's latency (and costs) before it is evaluated:
# name -> (seed, known, costs) -> sampler.
KNOWN_LATENCY: dict[str, Callable[[int, Known, Costs | None], BaseSampler]] = {
    "ehvi": _search_ehvi,
    # before the cost inputs and design (2026-12-07): 10 start-up trials spread over latency, latency the only
    # known input
    "ehvi_latency_startup": lambda seed, known, costs: _search_ehvi(
        seed, known, None, startup="latency", n_startup_trials=10, cost_features=[]
    ),
    # the same with random start-up trials instead of its latency design (before 2026-12-07)
    "ehvi_random_startup": lambda seed, known, costs: _search_ehvi(
        seed, known, None, startup="random", n_startup_trials=10, cost_features=[]
    ),
    "ehvi_known": lambda seed, known, costs: KnownLatencyEHVI(known, seed=seed),
    # before the latency input and the denoised front (2026-12-01)
    "ehvi_known_plain": lambda seed, known, costs: KnownLatencyEHVI(
        known, seed=seed, latency_feature=False, denoise=False
    ),
    "ehvi_known_p8000": lambda seed, known, costs: KnownLatencyEHVI(known, seed=seed, pool=8000),
    "ehvi_known_cell": lambda seed, known, costs: KnownLatencyEHVI(known, seed=seed, canonical=_CELL),
}


def build_sampler(
    name: str, seed: int, known: Known | None = None, costs: Costs | None = None
) -> BaseSampler:
    """A fresh sampler of configuration `name` seeded with `seed`; `known(params) -> latency` for the
    configurations that use the latency before evaluation (KNOWN_LATENCY), `costs(params) -> {params, macs}`
    for those that also use what a candidate costs (None: they go without)."""
    if name in KNOWN_LATENCY:
        if known is None:
            raise ValueError(f"sampler {name!r} needs each candidate's latency before it is evaluated")
        return KNOWN_LATENCY[name](seed, known, costs)
    if name not in SAMPLERS:
        valid = [*SAMPLERS, *KNOWN_LATENCY]
        raise KeyError(f"unknown sampler {name!r}; valid samplers: {', '.join(valid)}")
    with warnings.catch_warnings():
        # deprecated / experimental TPE options are exactly what is being measured
        warnings.simplefilter("ignore")
        return SAMPLERS[name](seed)
