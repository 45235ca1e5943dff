"""Tiny searches end to end on synthetic 8 px data (1 epoch, a handful of trials, no W&B)."""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import warnings

import optuna
import pytest
import yaml

import nas.fit
from nas.search.loop import run_search


def load(study_dir, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")


@pytest.fixture
def count_fits(monkeypatch):
    """Count calls of nas.fit.fit (trials, baselines and retraining all go through it)."""
    calls: list[str] = []
    real = nas.fit.fit

    def counting(cfg, **kwargs):
        calls.append(cfg["name"])
        return real(cfg, **kwargs)

    monkeypatch.setattr(nas.fit, "fit", counting)
    return calls


def test_tiny_search_end_to_end_then_resume(search_cfg, tmp_path, count_fits, capsys):
    study_dir = tmp_path / "study"
    cfg = search_cfg(
        "n_trials=3",
        "html=true",
        "baselines.enabled=true",
        "baselines.models=[simple_cnn]",
        "baselines.max_share=null",
    )
    result = run_search(cfg, study_dir=study_dir)

    study = load(study_dir)
    counted = [t for t in study.trials if not t.user_attrs.get("rejected")]
    assert result.n_trials == 3 == len(counted)
    done = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    assert done, [t.user_attrs.get("reason") for t in counted]
    for t in done:
        a = t.user_attrs
        assert a["state"] == "COMPLETE" and 0.0 <= a["accuracy"] <= 1.0
        assert a["spec"]["stages"][0]["block"] == "conv" and a["n_params"] > 0 and a["macs"] > 0
        assert (
            a["latency"] > 0 and a["latency_unit"] == "ms" and a["device_key"] and a["device"]["threads"] == 1
        )
        assert t.values == [a["accuracy"], a["latency"]]
        if a.get("reused_from") is None:
            assert a["train_time_s"] > 0 and os.path.isdir(a["output_dir"])

    # Outputs: the front as files and exports, plot, Optuna's HTML, the baseline with its dominance check.
    for key in ("trials_csv", "front_csv", "front_json", "pareto_png", "html_history"):
        assert os.path.getsize(result.files[key]) > 0, key
    front = json.loads((study_dir / "front.json").read_text())
    assert [r["trial"] for r in front["front"]] == [r["trial"] for r in result.front]
    assert len(result.exports) == len(result.front) >= 1
    (baseline,) = result.baselines
    assert (
        baseline["name"] == "simple_cnn" and "dominated_by" in baseline and baseline["accuracy"] is not None
    )
    out = capsys.readouterr().out
    assert (
        "front of tiny" in out
        and "simple_cnn" in out
        and "python -m experiments.train model=exported/" in out
    )
    trained_first = len(count_fits)

    # Resume: raising n_trials adds trials to the same study; the baseline is not trained again.
    result2 = run_search({**cfg, "n_trials": 5}, study_dir=study_dir)
    study = load(study_dir)
    assert result2.n_trials == 5
    assert len([t for t in study.trials if not t.user_attrs.get("rejected")]) == 5
    new_fits = count_fits[trained_first:]
    assert not any("simple_cnn" in n for n in new_fits)
    assert len(new_fits) <= 2

    # Re-running at the budget trains nothing and reports again.
    run_search({**cfg, "n_trials": 5}, study_dir=study_dir)
    assert len(count_fits) == trained_first + len(new_fits)


def test_exported_config_trains_through_the_train_cli(search_cfg, tmp_path, monkeypatch, count_fits):
    cfg = search_cfg("n_trials=1", "retrain_top_k=1", "retrain.epochs=1")
    result = run_search(cfg, study_dir=tmp_path / "study")
    (export,) = result.exports
    exported = yaml.safe_load(open(export["paths"][0]))
    assert exported["name"] == export["name"] and exported["stages"]
    # retrain_top_k: the front's best at full fidelity (tested, checkpointed), cached for re-runs.
    (retrained,) = result.retrained
    assert retrained["name"] == export["name"] and retrained["test_acc"] is not None
    assert os.path.isfile(retrained["checkpoint"]) and len(count_fits) == 2
    assert run_search(cfg, study_dir=tmp_path / "study").retrained == [retrained] and len(count_fits) == 2

    from experiments import train

    run_dir = tmp_path / "train"
    # In-process, as `python -m experiments.train ...` (Hydra then finds conf/ next to the script's file).
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train",
            f"hydra.searchpath=[file://{tmp_path}]",
            f"model=exported/{export['name']}",
            "data=synthetic",
            "data.train_size=96",
            "data.test_size=16",
            "data.image_size=8",
            "data.batch_size=16",
            "logger=none",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "checkpoint=false",
            f"hydra.run.dir={run_dir}",
        ],
    )
    train.main()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["spec"]["stages"] == exported["stages"] and "test/acc" in metrics["metrics"]


def test_mismatched_space_for_an_existing_study_is_refused(search_cfg, tmp_path, count_fits):
    cfg = search_cfg("n_trials=1")
    run_search(cfg, study_dir=tmp_path / "study")
    other = copy.deepcopy(cfg)
    other["space"]["params"]["width"]["high"] = 16
    with pytest.raises(ValueError, match="(?s)different search.*search space"):
        run_search(other, study_dir=tmp_path / "study")
    with pytest.raises(ValueError, match="objectives"):
        run_search({**cfg, "objectives": ["accuracy"]}, study_dir=tmp_path / "study")
    assert len(count_fits) == 1


def test_constraints_hold_and_rejections_do_not_count(search_cfg, tmp_path):
    # Widths 4 / 8 per stage: only the narrowest networks stay under this MAC limit.
    cfg = search_cfg("n_trials=2", "seed=3")
    cfg["space"]["constraints"] = {"macs": {"max": 12000}}
    result = run_search(cfg, study_dir=tmp_path / "study")
    trials = load(tmp_path / "study").trials
    rejected = [t for t in trials if t.user_attrs.get("rejected")]
    kept = [t for t in trials if not t.user_attrs.get("rejected")]
    assert rejected and len(kept) == result.n_trials == 2
    for t in rejected:
        assert t.state == optuna.trial.TrialState.PRUNED and t.user_attrs["macs"] > 12000
        assert t.user_attrs["reason"].startswith("constraint: macs") and "output_dir" not in t.user_attrs
    assert all(t.user_attrs["macs"] <= 12000 for t in kept)


def test_a_smaller_training_size_still_judges_the_network_at_the_data_size(search_cfg, tmp_path, count_fits):
    """fidelity.image_size trains at 4 px; latency, MACs and the export are the 8 px network's."""
    from nas.latency import spec_costs
    from nas.search.plan import SearchPlan

    cfg = search_cfg("fidelity.image_size=4", "latency.mode=macs", "n_trials=2")
    result = run_search(cfg, study_dir=tmp_path / "study")
    plan = SearchPlan.from_cfg(cfg)
    for t in load(tmp_path / "study").trials:
        spec = t.user_attrs["spec"]
        at_8, at_4 = (
            spec_costs(plan.deployed_spec(spec))["macs"],
            spec_costs(plan.resolved_spec(spec))["macs"],
        )
        assert t.user_attrs["macs"] == t.user_attrs["latency"] == at_8 > at_4
    trained = json.loads((tmp_path / "study" / "trials" / "t0000" / "spec.json").read_text())
    assert trained["input_size"] == 4
    (path, *_) = result.exports[0]["paths"]
    assert yaml.safe_load(open(path))["input_size"] == 8


def test_identical_specs_reuse_the_first_result(search_cfg, tmp_path, tiny_space, count_fits):
    for p in tiny_space["params"].values():  # one choice each: every trial draws the same network
        p.update({"choices": [p["choices"][0]]} if "choices" in p else {"high": p["low"]})
    result = run_search(search_cfg("n_trials=3", space=tiny_space), study_dir=tmp_path / "study")
    first, *rest = load(tmp_path / "study").trials
    assert len(count_fits) == 1 and result.n_trials == 3
    assert [t.user_attrs["reused_from"] for t in rest] == [0, 0]
    assert all(t.values == first.values for t in rest)
    assert [r["trial"] for r in result.front] == [0]  # one row per architecture
    assert sorted(p.name for p in (tmp_path / "study" / "trials").iterdir()) == ["t0000"]


def test_pruner_prunes_through_the_lightning_callback(search_cfg, tmp_path):
    # A threshold no accuracy reaches: the callback reports epoch 0 and Optuna prunes the trial.
    cfg = search_cfg("n_trials=1", "objectives=[accuracy]", "pruner=threshold", "pruner.lower=1.5")
    run_search(cfg, study_dir=tmp_path / "study")
    (t,) = load(tmp_path / "study").trials
    assert t.state == optuna.trial.TrialState.PRUNED and "epoch 0" in t.user_attrs["reason"]
    assert t.intermediate_values  # the callback reported to the trial


def test_ctrl_c_records_the_trial_and_resume_retries_it(search_cfg, tmp_path, monkeypatch):
    def interrupted_fit(cfg, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during training
        raise AssertionError("the SIGINT handler should have stopped training")

    cfg = search_cfg("n_trials=2")
    monkeypatch.setattr(nas.fit, "fit", interrupted_fit)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in a background job
    result = run_search(cfg, study_dir=tmp_path / "study")
    assert result.interrupted and result.n_trials == 0
    (t,) = [t for t in load(tmp_path / "study").trials if t.state != optuna.trial.TrialState.WAITING]
    assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs["interrupted"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored

    monkeypatch.undo()
    result = run_search({**cfg, "n_trials": 1}, study_dir=tmp_path / "study")
    trials = load(tmp_path / "study").trials
    assert (
        result.n_trials == 1 and trials[1].params == trials[0].params
    )  # the interrupted architecture, retried
    assert trials[1].user_attrs["retry_of"] == 0


def test_failing_trials_are_recorded_and_max_failures_stops_the_search(search_cfg, tmp_path, monkeypatch):
    import nas.latency

    def broken(spec, cfg, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(nas.latency, "latency_objective", broken)
    result = run_search(search_cfg("n_trials=5", "max_failures=2"), study_dir=tmp_path / "study")
    trials = load(tmp_path / "study").trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
    assert (
        trials[0].user_attrs["reason"] == "RuntimeError: device lost"
        and "Traceback" in trials[0].user_attrs["traceback"]
    )
    assert "max_failures=2" in result.stopped and result.front == []


def test_reuse_across_studies_of_one_storage(search_cfg, tmp_path, tiny_space, count_fits):
    for p in tiny_space["params"].values():
        p.update({"choices": [p["choices"][0]]} if "choices" in p else {"high": p["low"]})
    url = f"storage.url=sqlite:///{tmp_path / 'shared.db'}"
    first = search_cfg("n_trials=1", url, "reuse=storage", space=tiny_space)
    run_search(first, study_dir=tmp_path / "a")
    run_search({**first, "study_name": "other", "sampler": {"name": "tpe"}}, study_dir=tmp_path / "b")
    other = optuna.load_study(study_name="other", storage=f"sqlite:///{tmp_path / 'shared.db'}")
    assert len(count_fits) == 1 and other.trials[0].user_attrs["reused_from"] == "tiny#0"


def test_a_constrained_search_raises_no_optuna_deprecation_or_experimental_warning(
    search_cfg, tmp_path, tiny_space
):
    # Optuna 5 deprecates samplers' `constraints_func` (Trial.set_constraint instead); nothing of ours may use
    # it, or another deprecated / experimental API, without choosing to (those are silenced where chosen).
    tiny_space["constraints"] = {"params": {"max": 2000}}
    cfg = search_cfg("n_trials=3", "sampler=tpe", "html=true", space=tiny_space)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("error", message=r".*has been deprecated in v\d", category=FutureWarning)
        warnings.filterwarnings("error", message=r".*has been deprecated in v\d", category=DeprecationWarning)
        result = run_search(cfg, study_dir=tmp_path / "study")
    trials = load(tmp_path / "study").trials
    # A warning raised inside a trial fails that trial: none may have failed.
    assert result.n_trials == 3 and not [t.user_attrs.get("reason") for t in trials if t.state.name == "FAIL"]
    assert any(t.user_attrs.get("rejected") for t in trials) or all(
        t.user_attrs["n_params"] <= 2000 for t in trials
    )
