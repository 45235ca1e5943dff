"""A new study starts from the networks its space holds (and the user's known ones), marked as references."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.search.loop import run_search
from nas.search.plan import SearchPlan

REFS = {"narrow": {"act": "relu", "width_0": 4, "width_1": 4, "pool": "avg"},
        "wide": {"act": "silu", "width_0": 8, "width_1": 8, "pool": "max"}}  # fmt: skip


@pytest.fixture
def held(tiny_space):
    return {**tiny_space, "references": REFS}


def load(study_dir) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_dir / 'study.db'}")


def test_a_new_study_trains_the_references_first_then_resumes_without_them(
    search_cfg, held, tmp_path, capsys
):
    study_dir = tmp_path / "study"
    run_search(search_cfg("n_trials=3", space=held), study_dir=study_dir)
    trials = load(study_dir).trials
    assert [t.user_attrs.get("reference") for t in trials[:2]] == ["narrow", "wide"]
    assert [t.params for t in trials[:2]] == [REFS["narrow"], REFS["wide"]]
    assert all(t.user_attrs["state"] == "COMPLETE" for t in trials[:2])
    assert "reference" not in trials[2].user_attrs
    out = capsys.readouterr().out
    assert "starting from 2 known network(s): narrow, wide" in out and "[narrow]" in out and "[wide]" in out
    line = next(x for x in out.splitlines() if x.startswith("best network found: trial 2"))
    assert "all at the search fidelity (1 epoch(s) at 8 px), not fully trained" in line
    # the most accurate reference, then the other, each named with how the best network found compares with it
    assert "narrow (trial 0:" in line and "wide (trial 1:" in line
    assert any(f" {rel} " in line for rel in ("dominates", "is dominated by", "trades off with"))

    run_search(search_cfg("n_trials=4", space=held), study_dir=study_dir)  # resumed: nothing enqueued again
    trials = load(study_dir).trials
    assert [t.user_attrs.get("reference") for t in trials].count("narrow") == 1 and len(trials) == 4


def test_references_can_be_turned_off(search_cfg, held, tmp_path):
    run_search(search_cfg("n_trials=2", "start.references=false", space=held), study_dir=tmp_path / "s")
    assert not any("reference" in t.user_attrs for t in load(tmp_path / "s").trials)


def test_a_reference_outside_the_constraints_is_not_enqueued(search_cfg, held, tmp_path, capsys):
    held["constraints"] = {"params": {"max": 600}}  # narrow: 470 parameters, wide: 1,102
    run_search(search_cfg("n_trials=1", space=held), study_dir=tmp_path / "s")
    assert load(tmp_path / "s").trials[0].user_attrs["reference"] == "narrow"
    assert "not started from (outside the constraints): wide (params" in capsys.readouterr().out


def test_an_exported_front_architecture_starts_a_new_study(search_cfg, tiny_space, tmp_path):
    first = run_search(search_cfg("n_trials=2", "start.references=false"), study_dir=tmp_path / "a")
    export = first.exports[0]
    path, trial = export["paths"][0], export["trial"]
    params = load(tmp_path / "a").trials[trial].params
    cfg = search_cfg("n_trials=1", f"start.known=[{path}]")
    cfg["study_name"] = "tiny"
    run_search(cfg, study_dir=tmp_path / "b")
    (t,) = load(tmp_path / "b").trials
    assert t.params == params and t.user_attrs["reference"] == export["name"]


@pytest.mark.parametrize(
    ("known", "message"),
    [("resnet18", "is not a point of space 'tiny'.*baselines.models"), ("nowhere.yaml", "cannot read")],
)
def test_a_known_architecture_that_is_not_a_point_is_refused_before_compute(search_cfg, held, known, message):
    with pytest.raises(ValueError, match=message):
        SearchPlan.from_cfg(search_cfg(f"start.known=[{known}]", space=held))


def test_only_the_references_a_study_started_from_leave_the_baselines():
    from nas.runfile import compose_plan
    from nas.search.followups import run_baselines
    from nas.search.starts import ENQUEUED_ATTR

    plan = compose_plan(["space=resnet_like", "data=synthetic", "baselines.enabled=true",
                         "baselines.models=[resnet8,resnet20]", "baselines.max_share=null", "data.val_size=200"])  # fmt: skip
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr(ENQUEUED_ATTR, ["resnet8"])  # resnet20 was left out (say, outside the constraints)
    recs = run_baselines(plan, study, Path("unused"), train=False, notify=lambda _: None)
    assert [r["name"] for r in recs] == ["resnet20"]
