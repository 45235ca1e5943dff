"""The search with `benchmark=surrogate`: a surrogate fitted on synthetic data drives the real loop (look-ups,
seeded noise, MAC latency, constraints, reuse, resume, the report), nothing trains, and bad options fail before
compute with what to do."""

from __future__ import annotations

import copy
import json

import optuna
import pytest

import nas.fit
import nas.surrogate.evaluator
from nas.search.evaluator import Candidate
from nas.search.evaluators import make_evaluator
from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.scheduler import Rung
from nas.surrogate.model import Surrogate
from nas.surrogate.options import model_file
from tests.search.conftest import compose_search
from tests.surrogate import synthetic


@pytest.fixture
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("a surrogate look-up must not train")

    monkeypatch.setattr(nas.fit, "fit", fit)


def cfg_for(tmp_path, *overrides: str, raw: dict = synthetic.SPACE) -> dict:
    cfg = compose_search("benchmark=surrogate", "sampler=random", "n_trials=8",
                         f"benchmark.file={tmp_path / 'data.json'}", *overrides)  # fmt: skip
    cfg["space"] = copy.deepcopy(raw)
    cfg["study_name"] = "sur"
    cfg["export_dir"] = str(tmp_path / "exported")
    cfg["latency"]["cache"] = str(tmp_path / "latency.sqlite")
    return cfg


def fitted(tmp_path, *, raw: dict = synthetic.SPACE, n: int = 30, seeded: int = 12, **kw) -> Surrogate:
    """Data at the test search's own fidelity (its signature) and its gp surrogate, in tmp_path."""
    plain = cfg_for(tmp_path, raw=raw)
    plain["benchmark"] = None
    plan = SearchPlan.from_cfg(plain)
    doc = synthetic.doc(n, seeded=seeded, raw=raw, **kw)
    doc.update(signature=plan.calibration_signature(), data=plan.base["data"]["name"])
    (tmp_path / "data.json").write_text(json.dumps(doc))
    surrogate = Surrogate.fit(plan.space, doc, "gp", data_file="data.json")
    surrogate.save(model_file(tmp_path / "data.json"))
    return surrogate


def trials_of(study_dir) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / 'study.db'}")
    return optuna.load_study(study_name="sur", storage=storage).trials


def test_trials_look_up_the_surrogate_with_seeded_noise_and_counted_macs(tmp_path, no_training):
    surrogate, study_dir = fitted(tmp_path), tmp_path / "study"
    identity = SearchPlan.from_cfg(cfg_for(tmp_path)).benchmark.identity()
    lines = []
    result = run_search(cfg_for(tmp_path, "seed=3"), study_dir=study_dir, echo=lines.append)
    assert any("evaluation: surrogate (gp, fitted on 30 cond architectures" in line for line in lines)
    trials = trials_of(study_dir)
    assert result.n_trials == 8 and [t.user_attrs["state"] for t in trials] == ["COMPLETE"] * 8
    for t in trials:
        a = t.user_attrs
        mean = float(surrogate.predict([(t.params, a["macs"], a["n_params"])])[0])
        assert a["surrogate_mean"] == pytest.approx(mean)
        assert t.values == [pytest.approx(surrogate.draw(mean, t.params, seed=3)), float(a["macs"])]
        assert a["latency_unit"] == "MACs" and a["benchmark"] == identity
    for name in ("front.csv", "trials.csv", "pareto.png"):
        assert (study_dir / name).is_file()

    # resume: the same study continues to 11 trials, the first 8 unchanged
    again = run_search(cfg_for(tmp_path, "seed=3", "n_trials=11"), study_dir=study_dir, echo=lambda s: None)
    after = trials_of(study_dir)
    assert again.n_trials == 11 and [t.values for t in after[:8]] == [t.values for t in trials]


def test_repeats_are_reused_and_constraints_reject_before_the_look_up(tmp_path, no_training):
    fitted(tmp_path, raw=synthetic.SMALL, n=16)  # of its 24 networks
    cfg = cfg_for(tmp_path, "n_trials=30", raw=synthetic.SMALL)
    cfg["space"]["constraints"] = {"params": {"max": 800}}  # the widest two-stage networks are rejected
    run_search(cfg, study_dir=tmp_path / "study", echo=lambda s: None)
    trials = trials_of(tmp_path / "study")
    done = [t for t in trials if t.user_attrs.get("state") == "COMPLETE"]
    reused = [t for t in done if "reused_from" in t.user_attrs]
    rejected = [t for t in trials if t.user_attrs.get("state") == "REJECTED"]
    assert len(done) == 30 and reused and rejected
    assert all(t.user_attrs["n_params"] <= 800 for t in done)
    assert all("surrogate_mean" not in t.user_attrs for t in rejected)
    by_params = {}
    for t in done:  # a repeat gets its first evaluation's result
        assert by_params.setdefault(json.dumps(t.params, sort_keys=True), t.values) == t.values


def test_noise_follows_the_training_seed_and_can_be_turned_off(tmp_path, no_training):
    surrogate = fitted(tmp_path)
    params = synthetic.doc(1)["archs"][0]["params"]
    macs, n_params = synthetic.costs(params)
    mean = float(surrogate.predict([(params, macs, n_params)])[0])

    def accuracy(*overrides: str) -> float:
        plan = SearchPlan.from_cfg(cfg_for(tmp_path, *overrides))
        evaluator = make_evaluator(plan, tmp_path, guard=None)
        candidate = Candidate(0, params, {}, {}, {}, {"macs": macs, "n_params": n_params})
        return evaluator.evaluate(None, candidate, Rung(0, 1)).attrs["accuracy"]

    assert accuracy("seed=0") == accuracy("seed=0") == pytest.approx(surrogate.draw(mean, params, seed=0))
    assert accuracy("seed=1") != accuracy("seed=0")
    assert accuracy("seed=1", "benchmark.noise=false") == pytest.approx(mean)


def test_a_network_is_counted_once_per_process(tmp_path, monkeypatch):
    fitted(tmp_path)
    plan = SearchPlan.from_cfg(cfg_for(tmp_path))
    evaluator, real, calls = make_evaluator(plan, tmp_path, guard=None), SearchPlan.cost, []
    monkeypatch.setattr(SearchPlan, "cost", lambda self, spec: calls.append(1) or real(self, spec))
    monkeypatch.setattr(nas.surrogate.evaluator, "_COSTS", {})
    spec = plan.space.sample_random(5).spec
    first = evaluator.cost(plan, spec)
    first[2]["params"] = -1  # a trial's changes stay its own
    assert evaluator.cost(plan, spec) == real(plan, spec) and len(calls) == 1


def test_the_studys_identity_holds_the_model_and_the_latency_mode(tmp_path):
    fitted(tmp_path)
    plan = SearchPlan.from_cfg(cfg_for(tmp_path))
    ident = plan.latency_identity()
    assert ident["mode"] == "macs" and ident["benchmark"] == "surrogate" and ident["noise"] is True
    assert ident["model"] == plan.benchmark.model_hash and len(ident["model"]) == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["fidelity.epochs=2"], "this search differs in epochs:"),
        (["latency.mode=measured"], "latency.mode=measured would time each network: use latency.mode=macs"),
        (
            ["+benchmark.colour=1"],
            "unknown benchmark keys ['colour']; valid keys for surrogate: name, file, noise",
        ),
        (["benchmark.name=xyz"], "unknown benchmark 'xyz'; valid benchmarks: none, nb201, surrogate"),
    ],
)
def test_bad_options_are_refused_before_compute(tmp_path, overrides, message):
    fitted(tmp_path)
    with pytest.raises(ValueError) as e:
        SearchPlan.from_cfg(cfg_for(tmp_path, *overrides))
    assert message in str(e.value)


def test_a_missing_model_or_noise_estimate_says_what_to_run(tmp_path):
    with pytest.raises(
        ValueError, match=r"no fitted surrogate of space 'cond' at .*python -m nas.surrogate build"
    ):
        SearchPlan.from_cfg(cfg_for(tmp_path))
    fitted(tmp_path, seeded=0)
    with pytest.raises(ValueError, match="no seed-noise estimate.*benchmark.noise=false"):
        SearchPlan.from_cfg(cfg_for(tmp_path))
    assert SearchPlan.from_cfg(cfg_for(tmp_path, "benchmark.noise=false")).benchmark.noise is False
