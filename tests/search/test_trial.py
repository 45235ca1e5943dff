"""The trial's two seams: another evaluator or scheduler plugs into `TrialRunner` without changing it."""

from __future__ import annotations

import optuna
import pytest

import nas.fit
from nas.search.evaluator import Evaluation, Evaluator
from nas.search.plan import SearchPlan
from nas.search.scheduler import Rung, Scheduler, SingleFidelity
from nas.search.trial import TrialRunner


class TableLookup(Evaluator):
    """A tabular benchmark's stand-in: the accuracy is a function of the architecture, nothing trains."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (trial, rung epochs)

    def evaluate(self, trial, candidate, rung):
        self.calls.append((candidate.number, rung.epochs))
        widths = [s["channels"] for s in candidate.spec["stages"]]
        return Evaluation("COMPLETE", attrs={"accuracy": sum(widths) / 100 + rung.epochs / 1000})


class TwoRungs(Scheduler):
    """Promotes every candidate from 1 to 3 epochs, except trial 1, which is stopped at the first rung."""

    def first_rung(self, study, trial):
        return Rung(0, 1)

    def after(self, study, trial, rung, values, trials):
        if rung.index == 0 and trial.number == 1:
            raise optuna.TrialPruned("not in the top half of rung 0")
        return Rung(1, 3) if rung.index == 0 else None


@pytest.fixture
def runner_for(search_cfg, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a look-up evaluator must not train")

    monkeypatch.setattr(nas.fit, "fit", no_training)

    def make(scheduler_of=lambda plan: SingleFidelity(plan.fidelity)):
        plan = SearchPlan.from_cfg(search_cfg("latency.mode=macs", "n_trials=3", "reuse=none"))
        study = optuna.create_study(directions=["maximize", "minimize"])
        evaluator = TableLookup()
        return TrialRunner(plan, study, evaluator, scheduler_of(plan)), study, evaluator

    return make


def test_a_lookup_evaluator_completes_trials_without_training(runner_for):
    runner, study, evaluator = runner_for()
    outcomes = [runner.run() for _ in range(3)]
    assert [o.state for o in outcomes] == ["COMPLETE"] * 3
    for t in study.trials:
        widths = [s["channels"] for s in t.user_attrs["spec"]["stages"]]
        assert t.values == [sum(widths) / 100 + 1 / 1000, t.user_attrs["macs"]]  # latency.mode=macs
        assert t.user_attrs["state"] == "COMPLETE" and t.user_attrs["reason"] == ""
    assert evaluator.calls == [(0, 1), (1, 1), (2, 1)]  # the search fidelity: one rung each


def test_a_rung_scheduler_promotes_or_stops_through_the_same_trial_code(runner_for):
    runner, study, evaluator = runner_for(lambda plan: TwoRungs())
    outcomes = [runner.run() for _ in range(3)]
    for o in outcomes:
        rungs = [e for n, e in evaluator.calls if n == o.number]
        if o.number == 1:
            assert o.state == "PRUNED" and rungs == [1] and "rung 0" in o.reason
            assert study.trials[1].state == optuna.trial.TrialState.PRUNED
        else:
            assert o.state == "COMPLETE" and rungs == [1, 3]
            assert study.trials[o.number].values[0] == pytest.approx(o.attrs["accuracy"])
            assert o.attrs["accuracy"] % 0.01 == pytest.approx(0.003)  # the last rung's result is told
