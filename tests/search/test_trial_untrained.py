"""No untrained network on a front: a trial at chance accuracy is recorded as not trained and left out of the
front, the exports and the hypervolume (it is still a result for the sampler)."""

from __future__ import annotations

import copy
import json

import optuna
import pytest
from optuna.trial import TrialState

from nas.pareto import hypervolume
from nas.search.loop import run_search
from nas.search.records import front, records
from tests.search.conftest import fixed


def at_chance_when_narrow(spec) -> float:
    """A first stage of width 4 (the fastest networks) learns nothing (0.1 on 10 classes); width 8 learns."""
    return 0.1 if spec["stages"][0]["channels"] == 4 else 0.6


def test_a_network_at_chance_is_recorded_as_not_trained_and_left_off_the_front(
    search_cfg, tmp_path, tiny_space, fake_fit
):
    fake_fit(at_chance_when_narrow, val_size=200)
    space = fixed(copy.deepcopy(tiny_space), width=[4, 8])
    cfg = search_cfg("n_trials=6", "latency.mode=macs", "chance_alpha=0.01", space=space)
    result = run_search(cfg, study_dir=tmp_path / "study")
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    untrained = [t for t in study.trials if t.user_attrs["spec"]["stages"][0]["channels"] == 4]
    assert untrained, "the case this test is about: a network at chance was drawn"
    for t in untrained:
        a = t.user_attrs
        assert t.state == TrialState.COMPLETE and a["not_trained"] is True
        assert (
            "not above chance (1/10)" in a["not_trained_reason"]
            and "200 validation images" in a["not_trained_reason"]
        )
    # Without the mark, the fastest network at chance would be on the front: the mark is what keeps it off.
    recs = records(study.trials)
    unmarked = [{**r, "not_trained": False} for r in recs]
    assert any(r["trial"] in {t.number for t in untrained} for r in front(unmarked, ["accuracy", "latency"]))
    on_front = {r["trial"] for r in result.front}
    assert on_front and not on_front & {t.number for t in untrained}
    assert {e["trial"] for e in result.exports} == on_front
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["not_trained"] == len(untrained)
    # The hypervolume counts the trained front only (the network at chance would add its area).
    hv, dims, dirs = summary["hypervolume"], ["accuracy", "latency"], ["maximize", "minimize"]
    pts = lambda rows: [[r["accuracy"], r["latency"]] for r in rows]  # noqa: E731
    assert hv["value"] == pytest.approx(hypervolume(pts(result.front), dirs, hv["reference"]))
    assert hv["value"] < hypervolume(pts(front(unmarked, dims)), dirs, hv["reference"])
    assert (tmp_path / "study" / "pareto.png").stat().st_size > 0


def test_a_reused_result_is_tested_against_chance_by_the_study_reusing_it(
    search_cfg, tmp_path, tiny_space, fake_fit
):
    calls = fake_fit(lambda spec: 0.1, val_size=200)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    space = fixed(copy.deepcopy(tiny_space))
    common = ("n_trials=1", "latency.mode=macs", "reuse=storage", f"storage.url={url}")
    untested = run_search(search_cfg(*common, "chance_alpha=null", space=space), study_dir=tmp_path / "a")
    assert [r["trial"] for r in untested.front] == [0]  # no test: at chance, yet on that study's front
    tested = run_search({**search_cfg(*common, "chance_alpha=0.01", space=space), "study_name": "b"},
                        study_dir=tmp_path / "b")  # fmt: skip
    (t,) = optuna.load_study(study_name="b", storage=url).trials
    assert len(calls) == 1 and t.user_attrs["reused_from"] == "tiny#0" and t.user_attrs["not_trained"] is True
    assert tested.front == [] and "not above chance" in t.user_attrs["reason"]
