"""Fronts and hypervolume of trial records (the maths of points: tests/engine/test_pareto.py)."""

from __future__ import annotations

import pytest

from nas.pareto import hypervolume
from nas.search.records import dominated_by, front


def test_front_keeps_one_row_per_architecture():
    recs = [
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": None},
        {"trial": 1, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": 0},
        {"trial": 2, "state": "COMPLETE", "accuracy": 0.5, "latency": 2.0, "reused_from": None},
        {"trial": 3, "state": "PRUNED", "accuracy": None, "latency": 0.1, "reused_from": None},
    ]
    assert [r["trial"] for r in front(recs, ["accuracy", "latency"])] == [0]


def test_a_baseline_is_dominated_by_the_front_rows_better_in_both():
    rows = [{"trial": 0, "accuracy": 0.9, "latency": 1.0}, {"trial": 1, "accuracy": 0.7, "latency": 0.5}]
    assert dominated_by({"accuracy": 0.8, "latency": 2.0}, rows, ["accuracy", "latency"]) == [0]
    assert dominated_by({"accuracy": 0.95, "latency": 0.4}, rows, ["accuracy", "latency"]) == []
    assert dominated_by({"accuracy": None, "latency": 0.4}, rows, ["accuracy", "latency"]) == []


def test_hypervolume_with_the_study_reference_grows_as_the_front_improves():
    # Issue example: the front's own reference (1.1 x its slowest) scored 8.1, then 3.675 after adding a
    # point that dominates one of it. A reference fixed with the study only lets the value grow.
    import optuna

    from nas.search.records import front_hypervolume
    from nas.search.study import HV_REFERENCE, hypervolume_reference

    dims = ["accuracy", "latency"]
    rows = [
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.8, "latency": 1.0},
        {"trial": 1, "state": "COMPLETE", "accuracy": 0.9, "latency": 10.0},
    ]
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert hypervolume_reference(study, dims, bounds={"latency": None}) is None  # nothing to fix it from yet
    ref = hypervolume_reference(study, dims, bounds={"latency": None}, observed={"latency": [1.0, 10.0]})
    assert ref == [0.0, 20.0] and study.user_attrs[HV_REFERENCE]["point"] == ref
    before = front_hypervolume(front(rows, dims), dims, ref)["value"]
    rows.append({"trial": 2, "state": "COMPLETE", "accuracy": 0.95, "latency": 5.0})
    fr = front(rows, dims)
    assert [r["trial"] for r in fr] == [0, 2]
    # Resumed later with other observations: the recorded point stays.
    again = hypervolume_reference(study, dims, bounds={"latency": None}, observed={"latency": [5.0]})
    after = front_hypervolume(fr, dims, again)["value"]
    assert again == ref and after > before
    assert before == pytest.approx(0.9 * 10 + 0.8 * 9) and after == pytest.approx(0.95 * 15 + 0.8 * 4)
    # A bound from the space's constraints is the reference from the start.
    bounded = optuna.create_study(directions=["maximize", "minimize"])
    assert hypervolume_reference(bounded, dims, bounds={"latency": 12.0}) == [0.0, 12.0]


def test_reports_trust_optunas_state_over_the_state_attribute():
    # Recorded COMPLETE in its attributes, then told FAIL (a second Ctrl-C between the two writes, or a
    # lost-trial failure racing a live worker): not on the front.
    from optuna.trial import TrialState, create_trial

    from nas.search.records import records

    attrs = {"state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "spec": {}}
    told_fail = create_trial(state=TrialState.FAIL, user_attrs=attrs)
    told_fail.number = 0
    done = create_trial(
        state=TrialState.COMPLETE, values=[0.5, 2.0], user_attrs={**attrs, "accuracy": 0.5, "latency": 2.0}
    )
    done.number = 1
    rejected = create_trial(state=TrialState.PRUNED, user_attrs={"state": "REJECTED", "rejected": True})
    rejected.number = 2
    recs = records([told_fail, done, rejected])
    assert [r["state"] for r in recs] == ["FAIL", "COMPLETE", "REJECTED"]
    assert [r["trial"] for r in front(recs, ["accuracy", "latency"])] == [1]


def test_a_network_at_chance_is_never_on_the_front():
    recs = [
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.1, "latency": 0.5, "not_trained": True},
        {"trial": 1, "state": "COMPLETE", "accuracy": 0.7, "latency": 2.0, "not_trained": False},
    ]
    assert [r["trial"] for r in front(recs, ["accuracy", "latency"])] == [1]


@pytest.mark.parametrize(
    "accuracy, n, trained",
    [(0.1, 2000, False), (0.12, 2000, True), (0.11, 2000, False), (0.5, 10, True), (0.3, 10, False)],
)
def test_the_chance_test_is_a_one_sided_binomial_test(accuracy, n, trained):
    from scipy.stats import binom

    from nas.search.evaluator import chance_reason

    k = round(accuracy * n)
    assert (binom.sf(k - 1, n, 0.1) < 0.01) == trained  # P(K >= k) under guessing, the definition
    why = chance_reason(accuracy, n, 10, 0.01)
    assert (why is None) == trained
    if not trained:
        assert "not trained" in why and f"{n} validation images" in why and "1/10" in why


def test_hypervolume_of_three_objectives_is_the_volume_of_the_union_of_boxes():
    from nas.search.records import front_hypervolume

    # boxes against (accuracy 0, latency 2, params 3): 0.9 x 1 x 2 and 0.8 x 1.5 x 1, overlapping 0.8 x 1 x 1
    pts = [[0.9, 1.0, 1.0], [0.8, 0.5, 2.0]]
    rows = [{"accuracy": a, "latency": lat, "n_params": p} for a, lat, p in pts]
    hv = front_hypervolume(rows, ["accuracy", "latency", "params"], [0.0, 2.0, 3.0])
    assert hv == {"value": pytest.approx(2.2), "reference": [0.0, 2.0, 3.0]}


def test_hypervolume_history_is_the_front_after_each_trial_in_trial_order():
    from nas.search.records import hypervolume_history

    dims, dirs, ref = ["accuracy", "latency"], ["maximize", "minimize"], [0.0, 4.0]
    recs = [  # listed out of order, as workers finish: the history follows trial numbers
        {"trial": 2, "state": "COMPLETE", "accuracy": 0.9, "latency": 3.0},
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.5, "latency": 1.0},
        {"trial": 1, "state": "FAIL", "accuracy": None, "latency": None},
        {"trial": 3, "state": "COMPLETE", "accuracy": 0.99, "latency": 0.5, "not_trained": True},
        {"trial": 4, "state": "COMPLETE", "accuracy": 0.4, "latency": 2.0},  # dominated: adds nothing
        {"trial": 5, "state": "COMPLETE", "accuracy": 0.95, "latency": 3.0},
    ]
    history = hypervolume_history(recs, dims, ref)
    assert list(history) == [0, 1, 2, 3, 4, 5]
    pts = lambda *ts: [[r["accuracy"], r["latency"]] for r in recs if r["trial"] in ts]  # noqa: E731
    assert history[0] == history[1] == pytest.approx(0.5 * 3.0)
    assert history[2] == history[3] == history[4] == pytest.approx(hypervolume(pts(0, 2), dirs, ref))
    assert history[5] == pytest.approx(hypervolume(pts(0, 2, 4, 5), dirs, ref))
    assert history[5] == pytest.approx(front_hypervolume_value(recs, dims, ref))


def front_hypervolume_value(recs, dims, ref) -> float:
    from nas.search.records import front_hypervolume

    return front_hypervolume(front(recs, dims), dims, ref)["value"]


def test_records_carry_the_reference_network_a_trial_came_from():
    import optuna

    from nas.search.records import records

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial({"x": 1.0}, user_attrs={"reference": "resnet20"})
    for _ in range(2):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 2.0)
        study.tell(trial, [0.5, 1.0])
    assert [r["reference"] for r in records(study.trials)] == ["resnet20", None]



@pytest.mark.parametrize(
    ("found", "relation", "beaters", "versus_resnet8"),
    [
        ([(0.90, 1.0), (0.80, 0.1)], "dominates", [2], "dominates"),  # trial 3 is less accurate than resnet20
        ([(0.70, 3.0)], "is dominated by", [], "is dominated by"),
        ([(0.90, 9.0), (0.60, 0.5)], "trades off with", [], "trades off with"),
        ([(0.80, 1.8)], "trades off with", [], "trades off with"),  # more accurate than resnet8, slower
    ],
)
def test_the_best_network_found_is_compared_with_the_best_reference_then_the_others(
    found, relation, beaters, versus_resnet8
):
    from nas.search.records import versus_textbook

    def rec(trial, acc, lat, ref=None):
        return {"trial": trial, "state": "COMPLETE", "accuracy": acc, "latency": lat, "reference": ref}

    recs = [rec(0, 0.75, 1.5, "resnet8"), rec(1, 0.85, 2.0, "resnet20")]
    recs += [rec(2 + i, a, t) for i, (a, t) in enumerate(found)]
    got = versus_textbook(recs, ["accuracy", "latency"])
    assert got["reference"] == "resnet20" and got["reference_trial"] == 1 and got["best_trial"] == 2
    assert got["relation"] == relation and got["dominating_trials"] == beaters
    assert got["others"] == [{"reference": "resnet8", "reference_trial": 0, "relation": versus_resnet8}]
    assert versus_textbook(recs[:2], ["accuracy", "latency"]) is None  # nothing found yet
