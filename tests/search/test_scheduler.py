"""Multi-objective successive halving: the pure rule (nas.search.halving) and the ASHA scheduler on trials."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import nas.fit
from nas.search import halving
from nas.search.evaluator import Evaluation, Evaluator
from nas.search.plan import SearchPlan
from nas.search.scheduler import ASHA, RUNG_ATTR, scheduler_config
from nas.search.trial import TrialRunner

SENSES = (1, -1)  # maximise accuracy, minimise latency


# ------------------------------------------------------------------------------------------- the rule


def test_front_ranks_and_crowding_order_a_hand_made_set():
    pts = np.array([[0.9, 5.0], [0.8, 2.0], [0.7, 1.0], [0.85, 3.0], [0.6, 4.0], [0.75, 3.0]])
    # front 0: rows 0, 1, 2, 3 (nas.pareto.front_ranks, tests/engine/test_pareto.py); row 5 is dominated by 3 only
    # within front 0 the extremes (0: best accuracy, 2: fastest) come first, then the less crowded of 1, 3
    crowd = halving.crowding(pts[[0, 1, 2, 3]])
    assert math.isinf(crowd[0]) and math.isinf(crowd[2]) and crowd[1] > crowd[3]
    assert halving.order(pts, SENSES).tolist() == [0, 2, 1, 3, 5, 4]


def test_promotion_keeps_the_top_n_over_eta_by_non_dominated_sorting():
    peers = [[0.9, 5.0], [0.8, 2.0], [0.7, 1.0], [0.85, 3.0], [0.6, 4.0]]
    # n = 6 with the candidate, eta 3 -> k = 2: only the two front extremes would pass...
    assert not halving.promotable([0.75, 3.0], peers, SENSES, 3)
    assert halving.promotable([0.95, 6.0], peers, SENSES, 3)  # the new most accurate: an extreme
    assert halving.promotable([0.5, 0.5], peers, SENSES, 3)  # the new fastest, however inaccurate
    # ...and with eta 2 (k = 3 of the six points above) the less crowded middle point of the front as well
    six = [*peers, [0.75, 3.0]]
    assert halving.promotable([0.8, 2.0], [p for p in six if p != [0.8, 2.0]], SENSES, 2)
    assert not halving.promotable([0.85, 3.0], [p for p in six if p != [0.85, 3.0]], SENSES, 2)
    # the first candidates of a study always pass (k = max(1, n // eta))
    assert halving.promotable([0.1, 9.0], [], SENSES, 3)
    assert not halving.promotable([0.1, 9.0], [[0.2, 8.0]], SENSES, 3)


def test_a_candidate_that_cannot_reach_the_front_is_stopped_whatever_its_rank():
    full = [[0.90, 2.0]]  # a full result: 0.90 at 2 ms
    # alone at its rung (it would be promoted), but slower than 2 ms and 0.5 + best gain 0.3 < 0.90
    d = halving.decide([0.5, 3.0], [], full, 0.3, SENSES, 3)
    assert not d.promote and "cannot reach the front" in d.reason
    # faster than every full result: latency alone may put it on the front, so it goes on
    assert halving.decide([0.5, 1.0], [], full, 0.3, SENSES, 3).promote
    # a gain large enough to match the full result: not hopeless
    assert halving.decide([0.5, 3.0], [], full, 0.45, SENSES, 3).promote
    # no candidate finished both rungs yet: the gain is unknown, nothing is hopeless
    assert halving.decide([0.5, 3.0], [], full, None, SENSES, 3).promote
    assert halving.best_gain([(0.5, 0.7), (0.6, 0.95)]) == pytest.approx(0.35)


# ------------------------------------------------------------------------ the scheduler on trials


def _peer(acc: float, latency: float, *, top: float | None = None, state=TrialState.PRUNED):
    attrs = {RUNG_ATTR + "0": {"epochs": 1, "values": [acc, latency]}}
    if top is not None:
        attrs[RUNG_ATTR + "1"] = {"epochs": 3, "values": [top, latency]}
        state = TrialState.COMPLETE
    return create_trial(
        state=state,
        values=[top, latency] if state == TrialState.COMPLETE else None,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
    )


def _decide(study, values):
    """ASHA's decision for a fresh trial of `study` that finished rung 0 with `values`."""
    asha = ASHA([1, 3], 3, ["accuracy", "latency"])
    trial = study.ask()
    try:
        nxt = asha.after(study, trial, asha.rungs[0], values, [])
    except optuna.TrialPruned as e:
        return str(e), trial
    return nxt, trial


def test_asha_ranks_a_finished_rung_against_the_peers_recorded_on_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc, lat in [(0.6, 2.0), (0.7, 3.0), (0.8, 4.0), (0.5, 5.0), (0.4, 6.0)]:
        study.add_trial(_peer(acc, lat))
    nxt, trial = _decide(study, [0.85, 4.5])  # n = 6, k = 2: the new most accurate is an extreme
    assert nxt == ASHA([1, 3], 3, ["accuracy", "latency"]).rungs[1]
    assert study.trials[trial.number].user_attrs[RUNG_ATTR + "0"] == {"epochs": 1, "values": [0.85, 4.5]}
    nxt, _ = _decide(study, [0.65, 3.5])  # dominated by (0.7, 3.0): not in the top 2 of 7
    assert isinstance(nxt, str) and "not in the top 2 of the 7 candidates" in nxt
    # interrupted trials (run again) and reused copies are not peers
    study.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={"interrupted": True, **_peer(0.9, 1.0).user_attrs})
    )
    study.add_trial(_peer(0.95, 0.5, state=TrialState.PRUNED))
    study.trials  # noqa: B018
    nxt, _ = _decide(study, [0.3, 9.0])
    assert "of the 9 candidates" in nxt  # 5 + 2 fresh + the new pruned peer + itself; not the interrupted one


def test_asha_stops_at_the_first_rung_a_candidate_whose_latency_cannot_reach_the_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_peer(0.6, 2.0, top=0.8))  # gained 0.2 between the rungs
    nxt, trial = _decide(study, [0.55, 2.5])  # best case 0.75 at 2.5 ms: dominated by 0.8 at 2 ms
    assert isinstance(nxt, str) and "cannot reach the front" in nxt and "rung 0" in nxt
    nxt, _ = _decide(study, [0.61, 2.5])  # best case 0.81: may reach the front; ranked (and here outranked)
    assert "cannot reach the front" not in nxt and "not in the top 1 of the 3" in nxt


class RungTable(Evaluator):
    """Look-up evaluator: accuracy per (trial, rung) from a table; records every call."""

    def __init__(self, acc: dict[int, tuple[float, float]], during=None) -> None:
        self.acc, self.during, self.calls = acc, during, []

    def evaluate(self, trial, candidate, rung):
        self.calls.append((candidate.number, rung.epochs))
        if self.during is not None:
            self.during(candidate.number, rung)
        return Evaluation("COMPLETE", attrs={"accuracy": self.acc[candidate.number][rung.index]})


@pytest.fixture
def asha_plan(search_cfg, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a look-up evaluator must not train")

    monkeypatch.setattr(nas.fit, "fit", no_training)
    return SearchPlan.from_cfg(
        search_cfg("latency.mode=macs", "n_trials=4", "reuse=none", "scheduler=asha", "scheduler.rungs=[1,3]")
    )


def test_the_decision_uses_the_peers_seen_when_the_rung_finishes(asha_plan):
    """Async: another worker's rung-0 result that lands while this trial trains counts in its decision."""
    study = optuna.create_study(directions=["maximize", "minimize"])

    def other_worker(number, rung):
        if number == 1 and rung.index == 0:  # meanwhile: two better and faster peers finish rung 0
            study.add_trial(_peer(0.99, 1.0))
            study.add_trial(_peer(0.98, 0.5))

    evaluator = RungTable({0: (0.5, 0.6), 1: (0.7, 0.8)}, during=other_worker)
    runner = TrialRunner(asha_plan, study, evaluator, ASHA([1, 3], 3, asha_plan.objectives))
    first = runner.run()
    assert first.state == "COMPLETE" and evaluator.calls == [(0, 1), (0, 3)]  # alone: promoted
    assert study.trials[0].values[0] == pytest.approx(0.6)  # the top rung's accuracy is told
    second = runner.run()  # alone with trial 0 it would be promoted (more accurate); not with the new peers
    assert second.state == "PRUNED" and "rung 0" in second.reason and evaluator.calls[2:] == [(1, 1)]
    t = study.trials[1]
    assert t.state == TrialState.PRUNED and t.user_attrs["state"] == "PRUNED"
    assert t.user_attrs[RUNG_ATTR + "0"]["values"][0] == pytest.approx(0.7)  # its rung result is kept
    assert RUNG_ATTR + "1" not in t.user_attrs


def test_resume_keeps_the_rung_state(asha_plan, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    acc = {n: (0.1 + 0.1 * n, 0.2 + 0.1 * n) for n in range(6)}
    study = optuna.create_study(study_name="s", storage=url, directions=["maximize", "minimize"])
    runner = TrialRunner(asha_plan, study, RungTable(acc), ASHA([1, 3], 3, asha_plan.objectives))
    for _ in range(3):
        runner.run()
    # a new process: the study loaded from the storage, a fresh scheduler (it holds no state)
    again = optuna.load_study(study_name="s", storage=url)
    asha = ASHA([1, 3], 3, asha_plan.objectives)
    peers, full, pairs = asha.peers(again.get_trials(), 0, exclude=-1)
    assert len(peers) == 3 and [p[0] for p in peers] == pytest.approx([0.1, 0.2, 0.3])
    assert len(full) == sum(t.state == TrialState.COMPLETE for t in again.trials) >= 1
    assert pairs and all(top - low == pytest.approx(0.1) for low, top in pairs)
    nxt = TrialRunner(asha_plan, again, RungTable(acc), asha).run()
    assert len(asha.peers(again.get_trials(), 0, exclude=-1)[0]) == 4
    if "not in the top" in nxt.reason:  # ranked against the three recorded before the restart
        assert "of the 4 candidates" in nxt.reason


# ----------------------------------------------------------------------------------------- config


def test_scheduler_config_resolves_rungs_and_rejects_bad_input():
    assert scheduler_config(None, 1).as_config() == {"name": "single"}
    assert scheduler_config({"name": "asha"}, 2).epochs == (2, 6, 18)
    got = scheduler_config({"name": "asha", "eta": 4, "rungs": [1, 3], "epochs": [12, 200]}, 1)
    assert got.as_config() == {"name": "asha", "eta": 4, "epochs": [12, 200]}
    for bad, words in [
        ({"name": "hyperband"}, "valid schedulers: single, asha"),
        ({"name": "asha", "eta": 1}, "scheduler.eta"),
        ({"name": "asha", "rungs": [3, 1]}, "strictly increasing"),
        ({"name": "asha", "epochs": [5]}, ">= 2"),
        ({"name": "asha", "epochs": [1.5, 3]}, "whole numbers"),
        ({"name": "asha", "bracket": 2}, "valid keys: name, eta, rungs, epochs"),
    ]:
        with pytest.raises(ValueError, match=words):
            scheduler_config(bad, 1)


def test_an_asha_plan_trains_its_full_results_at_the_top_rung(search_cfg):
    plan = SearchPlan.from_cfg(search_cfg("scheduler=asha", "scheduler.rungs=[1,3]", "fidelity.epochs=2"))
    assert plan.scheduler.epochs == (2, 6) and plan.fidelity.epochs == 6
    assert plan.base["trainer"]["max_epochs"] == 6  # baselines are trained like a full result
    single = SearchPlan.from_cfg(search_cfg("fidelity.epochs=2"))
    assert plan.run_key({"a": 1}) != single.run_key({"a": 1})  # a 2-epoch result is not reused as a full one
    six = SearchPlan.from_cfg(search_cfg("fidelity.epochs=6"))
    assert plan.run_key({"a": 1}) != six.run_key(
        {"a": 1}
    )  # nor a trial ASHA stopped at rung 0 by a 6-epoch one
    with pytest.raises(ValueError, match="pruner=none"):
        SearchPlan.from_cfg(search_cfg("scheduler=asha", "pruner=median", "objectives=[accuracy]"))
