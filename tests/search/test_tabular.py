"""The search with `benchmark=nb201`: a few-row table drives the tabular evaluator through the real loop
(look-ups, simulated cost, reuse, resume, constraints, the report), and bad options fail before compute."""

from __future__ import annotations

import copy
import csv
import itertools
import pickle

import numpy as np
import optuna
import pytest

import nas.fit
from nas.latency import spec_costs
from nas.search import ehvi
from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.scheduler import Rung
from nas.search.tabular import TabularEvaluator
from nas.space import load_space
from nas.tabular import nb201
from tests.tabular.conftest import write_tables

# Cells whose edges are all skip_connect or nor_conv_3x3: the 64 rows of the test table.
CODES = ["".join(p) for p in itertools.product("13", repeat=6)]


@pytest.fixture
def tables(tmp_path):
    return write_tables(tmp_path / "nb201", CODES)


@pytest.fixture
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("a table look-up must not train")

    monkeypatch.setattr(nas.fit, "fit", fit)


def space(free_edges: int = 2) -> dict:
    """conf/space/nb201.yaml with `free_edges` edges choosing skip / 3x3 conv and the others 3x3 conv."""
    raw = copy.deepcopy(load_space("nb201").raw)
    for k in range(6):
        raw["params"][f"edge{k}"] = (
            {"choices": ["skip_connect", "nor_conv_3x3"]}
            if k < free_edges
            else {"type": "fixed", "value": "nor_conv_3x3"}
        )
    return raw


def cfg_for(tables, tmp_path, *overrides: str, free_edges: int = 2) -> dict:
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain

    base = ["benchmark=nb201", f"benchmark.data_dir={tables}", f"benchmark.pickle_dir={tables}",
            "logger=none", "progress=false", "html=false", "onnx=false", "sampler=random", "n_trials=10"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose("search", overrides=[*base, *overrides]))
    cfg["space"] = space(free_edges)
    cfg["study_name"] = "table"
    cfg["export_dir"] = str(tmp_path / "exported")
    return cfg


def code_of(t: optuna.trial.FrozenTrial) -> str:
    return "".join(
        str(nb201.OPS.index(t.params[f"edge{k}"])) if f"edge{k}" in t.params else "3" for k in range(6)
    )


def trials_of(study_dir) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / 'study.db'}")
    return optuna.load_study(study_name="table", storage=storage).trials


def test_trials_look_up_accuracy_latency_and_cost_reuse_and_resume(tables, tmp_path, no_training):
    table = nb201.load(tables, pickle_dir=tables)
    study_dir = tmp_path / "study"
    result = run_search(cfg_for(tables, tmp_path, "seed=4"), study_dir=study_dir, echo=lambda s: None)
    trials = trials_of(study_dir)
    assert result.n_trials == 10 and len(trials) == 10
    states = [t.user_attrs["state"] for t in trials]
    assert states == ["COMPLETE"] * 10  # reused duplicates complete too
    reused = [t for t in trials if "reused_from" in t.user_attrs]
    assert reused and len({code_of(t) for t in trials}) == 10 - len(reused)  # 4 cells, 10 trials
    for t in trials:
        a, row = t.user_attrs, table.row(code_of(t))
        expect = table.lookup(code_of(t), dataset="cifar10", device="gold_6226", epochs=200, seed=4)
        assert t.values == [pytest.approx(expect.accuracy), pytest.approx(expect.latency_ms)]
        assert a["latency_unit"] == "ms" and a["device_key"] == "nb201:gold_6226"
        if "reused_from" not in t.user_attrs:
            assert a["simulated_time_s"] == pytest.approx(table.cost("cifar10", 200)[row], abs=1e-3)
            assert a["cell_code"] == code_of(t)
    # the report of a trained search: front, trials table, Pareto plot
    for name in ("front.csv", "trials.csv", "pareto.png"):
        assert (study_dir / name).is_file()
    with open(study_dir / "trials.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 10
    assert result.front and all(r["state"] == "COMPLETE" for r in result.front)

    # resume: the same study continues to 14 trials, the first 10 unchanged
    again = run_search(
        cfg_for(tables, tmp_path, "seed=4", "n_trials=14"), study_dir=study_dir, echo=lambda s: None
    )
    after = trials_of(study_dir)
    assert again.n_trials == 14 and [t.values for t in after[:10]] == [t.values for t in trials]


def test_a_cell_at_chance_in_the_table_is_not_trained_and_never_on_the_front(tables, tmp_path, no_training):
    # The all-conv cell is the most accurate of the four; made a cell at chance (10.1 % on CIFAR-10's 25,000
    # validation images, as NAS-Bench-201's disconnected cells are), it must not sit on the front however fast.
    with open(tables / "cifar10.pkl", "rb") as fh:
        table = pickle.load(fh)
    table["333333"]["val_acc"] = [10.1] * len(table["333333"]["val_acc"])
    with open(tables / "cifar10.pkl", "wb") as fh:
        pickle.dump(table, fh)
    study_dir = tmp_path / "study"
    result = run_search(cfg_for(tables, tmp_path, "seed=0", "n_trials=12"),
                        study_dir=study_dir, echo=lambda s: None)  # fmt: skip
    at_chance = [t for t in trials_of(study_dir) if code_of(t) == "333333"]
    assert at_chance, "the search should have drawn the all-conv cell in 12 trials of 4 cells"
    assert all(t.user_attrs.get("not_trained") for t in at_chance)
    assert "25000 validation images" in at_chance[0].user_attrs["not_trained_reason"]
    assert result.front and all(r["trial"] not in {t.number for t in at_chance} for r in result.front)


def test_seed_mode_mean_and_the_12_epoch_table(tables, tmp_path, no_training):
    table = nb201.load(tables, pickle_dir=tables)
    for over, epochs, seed in ((["benchmark.seed_mode=mean"], 200, None), (["benchmark.epochs=12"], 12, 1)):
        study_dir = tmp_path / f"s{epochs}"
        lines: list[str] = []
        run_search(cfg_for(tables, tmp_path, *over, "n_trials=3", "reuse=none"), study_dir=study_dir,
                   echo=lines.append)  # fmt: skip
        # The header says what a trial looks up, not a data fraction that is never loaded (it said "fraction 0.1")
        assert f"fidelity {epochs} epoch(s) in the nb201 table (cifar10)" in lines[0]
        assert "fraction" not in lines[0]
        for t in trials_of(study_dir):
            row = table.row(code_of(t))
            want = (
                table.accuracy("cifar10", epochs)[row] if seed is None else table.accuracy("cifar10", 12)[row]
            )
            assert t.user_attrs["accuracy"] == pytest.approx(want)
            assert t.user_attrs["simulated_time_s"] == pytest.approx(
                table.cost("cifar10", epochs)[row], abs=1e-3
            )
    assert np.allclose(table.cost("cifar10", 12), table.cost("cifar10", 200) * 12 / 200)


def test_constraints_and_budgets_reject_before_the_look_up(tables, tmp_path, no_training):
    table = nb201.load(tables, pickle_dir=tables)
    lat = table.latency("raspi4")
    budget = float(np.median(lat))
    study_dir = tmp_path / "budget"
    cfg = cfg_for(tables, tmp_path, "benchmark.device=raspi4", f"latency_budget_ms={budget}", "objectives=[accuracy]",
                  "n_trials=6", free_edges=6)  # fmt: skip
    run_search(cfg, study_dir=study_dir, echo=lambda s: None)
    trials = trials_of(study_dir)
    rejected = [t for t in trials if t.user_attrs["state"] == "REJECTED"]
    done = [t for t in trials if t.user_attrs["state"] == "COMPLETE"]
    assert len(done) == 6 and rejected  # rejections do not count toward n_trials
    assert all(lat[table.row(code_of(t))] <= budget for t in done)
    assert all("latency_ms" in t.user_attrs["reason"] and "accuracy" not in t.user_attrs for t in rejected)
    assert all(len(t.values) == 1 for t in done)  # one objective: accuracy under the budget


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["benchmark.epochs=50"], "12 or 200 epochs"),
        (["benchmark.device=toaster"], "valid devices: gold_6226, raspi4"),
        (["benchmark.dataset=mnist"], "valid datasets"),
        (["benchmark.seed_mode=median"], "valid: draw, mean"),
        (["baselines.enabled=true"], "baselines.enabled=false"),
        (["fidelity.epochs=12"], "set benchmark.epochs only"),
        (["benchmark.dataset=cifar100"], "set data=cifar100"),
    ],
)
def test_bad_benchmark_options_fail_before_compute(tables, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        SearchPlan.from_cfg(cfg_for(tables, tmp_path, *overrides))


def test_other_rung_epochs_and_cells_outside_the_table_are_clear_errors(tables, tmp_path):
    plan = SearchPlan.from_cfg(cfg_for(tables, tmp_path))
    evaluator = TabularEvaluator(plan, plan.benchmark)
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    spec = plan.space.sample(trial).spec
    trained, deployed, cost = evaluator.cost(plan, spec)
    from nas.search.evaluator import Candidate

    cand = Candidate(trial.number, dict(trial.params), spec, trained, deployed, {})
    evaluator.prepare(trial, cand)
    assert evaluator.evaluate(trial, cand, Rung(0, 12)).attrs["simulated_time_s"] > 0
    with pytest.raises(ValueError, match="12 or 200 epochs, not 50"):
        evaluator.evaluate(trial, cand, Rung(1, 50))
    with pytest.raises(KeyError, match="no cell"):  # a cell the (few-row) table lacks
        evaluator.latency(evaluator_spec(deployed, "000000"), plan.latency)


def evaluator_spec(spec: dict, code: str) -> dict:
    return {
        **spec,
        "stages": [{**s, "cell": code} if s.get("block") == "nb201_cell" else s for s in spec["stages"]],
    }


def test_params_and_macs_from_the_cost_model_equal_a_count_on_the_meta_device(tables, tmp_path):
    plan = SearchPlan.from_cfg(cfg_for(tables, tmp_path))
    evaluator = TabularEvaluator(plan, plan.benchmark)
    full = load_space("nb201")
    for seed in (1, 2):
        spec = full.sample_random(seed).spec
        _, deployed, cost = evaluator.cost(plan, spec)
        assert cost == spec_costs(deployed)


def test_the_ehvi_sampler_searches_with_latency_known_before_each_trial(tables, tmp_path, no_training):
    # 4 free edges (16 cells): after 5 random trials the model proposes; no cell is evaluated twice, and every
    # proposal's latency was priced through the tabular evaluator before the trial (the oracle's memo).
    cfg = cfg_for(
        tables, tmp_path, "sampler=ehvi", "sampler.n_startup_trials=5", "sampler.pool=50", "n_trials=12",
        free_edges=4,
    )  # fmt: skip
    assert SearchPlan.from_cfg(cfg).sampler.options["priced"] is None  # auto: a look-up, every candidate priced
    study_dir = tmp_path / "study"
    result = run_search(cfg, study_dir=study_dir, echo=lambda s: None)
    trials = trials_of(study_dir)
    assert result.n_trials == 12 and all(t.user_attrs["state"] == "COMPLETE" for t in trials)
    assert len({code_of(t) for t in trials[5:]} - {code_of(t) for t in trials[:5]}) == 7  # no repeats
    run_search(cfg, study_dir=tmp_path / "again", echo=lambda s: None)
    assert [t.params for t in trials_of(tmp_path / "again")] == [t.params for t in trials]  # seeded


@pytest.mark.parametrize(("overrides", "sampler"), [([], "ehvi"), (["sampler=tpe"], "tpe")])
def test_the_table_benchmark_searches_with_ehvi_unless_told(overrides, sampler):
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("search", overrides=["space=nb201", "benchmark=nb201", *overrides])
        assert cfg.sampler.name == sampler
        assert (
            compose("search", overrides=["space=nb201"]).sampler.name == "tpe"
        )  # trained: latency measured


def test_the_ehvi_sampler_is_refused_where_it_cannot_work(tables, tmp_path):
    cfg = cfg_for(tables, tmp_path, "sampler=ehvi", "objectives=[accuracy,params]")
    with pytest.raises(ValueError, match=r"sampler=ehvi searches objectives=\[accuracy,latency\]"):
        SearchPlan.from_cfg(cfg)


def test_ehvi_inside_successive_halving_models_top_rung_results_and_never_repeats_a_cell(
    tables, tmp_path, no_training, monkeypatch
):
    # 12-epoch results as the low rung, 200-epoch as the top: the sampler's model sees only results at the
    # top rung (COMPLETE), so the two fidelities are never mixed in one model, and a cell stopped at the low
    # rung (PRUNED) is not proposed again.
    cfg = cfg_for(
        tables, tmp_path, "sampler=ehvi", "sampler.n_startup_trials=3", "sampler.pool=50", "n_trials=14",
        "scheduler=asha", "scheduler.epochs=[12,200]", "scheduler.eta=2",
        # the latency design: the cost design's first cells (most compute first) leave fewer than 3 promoted to
        # the top rung within 14 trials on these tables, so the model would never be asked
        "sampler.startup=latency", free_edges=4,
    )  # fmt: skip
    proposals = []
    real = ehvi.KnownLatencyEHVI.sample_relative

    def spy(self, study, trial, search_space):
        out = real(self, study, trial, search_space)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        top = [max((v for k, v in t.user_attrs.items() if k.startswith("rung_")), key=lambda r: r["epochs"])
               for t in done]  # fmt: skip
        proposals.append((len(done) >= 3, {r["epochs"] for r in top}))  # the model past its 3 start-up trials
        return out

    monkeypatch.setattr(ehvi.KnownLatencyEHVI, "sample_relative", spy)
    run_search(cfg, study_dir=tmp_path / "study", echo=lambda s: None)
    trials = trials_of(tmp_path / "study")
    states = [t.user_attrs["state"] for t in trials]
    assert "PRUNED" in states and "COMPLETE" in states
    assert len({code_of(t) for t in trials}) == len(trials)  # no cell twice, pruned ones included
    modelled = [epochs for model, epochs in proposals if model]
    assert modelled and all(epochs == {200} for epochs in modelled)
