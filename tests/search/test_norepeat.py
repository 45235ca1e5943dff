"""sampler.no_repeat: joint proposals the study has evaluated are redrawn; conditional parameters a trial did
not use do not make a proposal new."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

from nas.search.norepeat import NoRepeat, repeats
from nas.search.study import make_sampler

SPACE = {"a": CategoricalDistribution([0, 1, 2]), "b": CategoricalDistribution([0, 1, 2])}


class Stuck(BaseSampler):
    """A relative sampler that always proposes a=0, b=0 (a converged model, at its extreme)."""

    def infer_relative_search_space(self, study, trial):
        return dict(SPACE)

    def sample_relative(self, study, trial, search_space):
        return {"a": 0, "b": 0} if search_space else {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return param_distribution.choices[0]


def _objective(trial):
    return trial.suggest_categorical("a", [0, 1, 2]) * 3 + trial.suggest_categorical("b", [0, 1, 2])


def test_a_repeat_is_a_match_on_every_parameter_the_earlier_trial_had():
    assert repeats({"a": 1, "b": 2}, {"a": 1, "b": 2})
    assert not repeats({"a": 1, "b": 2}, {"a": 1, "b": 0})
    # the earlier trial did not use b (conditional): a proposal with any b is the same network
    assert repeats({"a": 1, "b": 2}, {"a": 1})
    # the earlier trial used c, which this proposal leaves to independent sampling: not known to repeat
    assert not repeats({"a": 1}, {"a": 1, "c": 0})


def test_a_stuck_sampler_wrapped_never_repeats_until_the_space_is_exhausted():
    plain = optuna.create_study(sampler=Stuck())
    plain.optimize(_objective, n_trials=5)
    assert len({tuple(t.params.values()) for t in plain.trials}) == 1
    wrapped = optuna.create_study(sampler=NoRepeat(Stuck(), seed=0, tries=3))
    wrapped.optimize(_objective, n_trials=9)
    assert len({tuple(sorted(t.params.items())) for t in wrapped.trials}) == 9  # all 9 points of the space


def test_tpe_with_no_repeat_proposes_no_repeat_after_its_start_up_trials():
    def repeated(sampler) -> int:
        """Trials after the 3 random start-up ones that repeat an earlier point (9 points, 9 trials)."""
        study = optuna.create_study(sampler=sampler)
        study.optimize(_objective, n_trials=9)
        points = [tuple(sorted(t.params.items())) for t in study.trials]
        return sum(p in points[:i] for i, p in enumerate(points) if i >= 3)

    tpe = dict(multivariate=True, n_startup_trials=3)
    for seed in (0, 1):
        assert (
            repeated(NoRepeat(TPESampler(seed=seed, **tpe), seed=seed))
            == 0
            < repeated(TPESampler(seed=seed, **tpe))
        )


def test_the_config_option_wraps_any_sampler_and_a_bad_value_is_refused():
    assert isinstance(make_sampler({"name": "tpe", "no_repeat": True}, seed=0), NoRepeat)
    wrapped = make_sampler({"name": "random", "no_repeat": True}, seed=0)
    assert isinstance(wrapped, NoRepeat) and isinstance(wrapped.inner, RandomSampler)
    assert isinstance(make_sampler({"name": "tpe", "no_repeat": False}, seed=0), TPESampler)
    with pytest.raises(ValueError, match="no_repeat is true or false"):
        make_sampler({"name": "tpe", "no_repeat": "yes"}, seed=0)
