"""The surrogate model: the encoding of a space's parameters, the regressors, the model file and its seed noise,
the held-out comparison and the fit command, on synthetic data whose true accuracies are known."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from nas.space import Space, load_space
from nas.stats import spearman
from nas.surrogate.__main__ import main
from nas.surrogate.features import Encoder, stage_range
from nas.surrogate.model import REGRESSORS, MLPEnsemble, Surrogate, regressor, seed_noise, trained
from nas.surrogate.options import model_file
from nas.surrogate.validate import MIN_ARCHS, agreement, compare, folds
from tests.surrogate import synthetic


def row(params):
    return (params, *synthetic.costs(params))


# ------------------------------------------------------------------------------------------------ features


def test_every_parameter_is_encoded_absent_values_explicitly():
    enc = Encoder(synthetic.space())
    assert enc.columns == [
        "n_stages=1", "n_stages=2", "act=relu", "act=silu", "pool=avg", "pool=max", "drop", "drop:absent",
        "width_0", "width_1", "width_1:absent", "log10_macs", "log10_params",
    ]  # fmt: skip
    col = {c: i for i, c in enumerate(enc.columns)}
    one = enc.encode_one(*row({"n_stages": 1, "act": "silu", "pool": "max", "drop": 0.25, "width_0": 16}))
    assert one[col["n_stages=1"]] == 1 and one[col["n_stages=2"]] == 0 and one[col["act=silu"]] == 1
    assert one[col["drop"]] == pytest.approx(0.5) and one[col["drop:absent"]] == 0
    assert one[col["width_0"]] == pytest.approx(math.log(16 / 4) / math.log(64 / 4))  # a log range: log scale
    assert one[col["width_1"]] == 0 and one[col["width_1:absent"]] == 1  # no second stage
    assert one[col["log10_macs"]] == pytest.approx(
        math.log10(synthetic.costs({"n_stages": 1, "width_0": 16})[0])
    )
    two = enc.encode_one(*row({"n_stages": 2, "act": "relu", "pool": "avg", "width_0": 4, "width_1": 64}))
    assert two[col["drop:absent"]] == 1 and two[col["width_1"]] == 1 and two[col["width_1:absent"]] == 0


def test_values_outside_the_space_are_refused_with_its_parameters():
    enc = Encoder(synthetic.space())
    with pytest.raises(ValueError, match="'depth_0'.*not in space 'cond'.*width_0"):
        enc.encode_one({"n_stages": 1, "act": "relu", "pool": "avg", "width_0": 8, "depth_0": 2}, 1, 1)
    with pytest.raises(ValueError, match="'act': 'gelu' is not one of"):
        enc.encode_one({"n_stages": 1, "act": "gelu", "pool": "avg", "width_0": 8}, 1, 1)
    with pytest.raises(ValueError, match="'width_0' has no value"):
        enc.encode_one({"n_stages": 1, "act": "relu", "pool": "avg"}, 1, 1)


def test_stage_counts_come_from_the_space_declaration():
    assert stage_range(synthetic.space()) == (1, 2)
    assert stage_range(load_space("resnet_like")) == (3, 4)  # stages: $n_stages, choices [3, 4]
    assert stage_range(load_space("regnet")) == (1, 4)  # a derivation: its max_stages
    fixed = {**synthetic.SPACE, "stages": 2, "params": {k: v for k, v in synthetic.SPACE["params"].items()
                                                        if k != "n_stages"}}  # fmt: skip
    enc = Encoder(Space.from_dict(fixed))
    assert "width_1" in enc.columns and "width_1:absent" not in enc.columns  # every network has both stages


# ---------------------------------------------------------------------------------------------- the runs


def test_runs_are_grouped_by_architecture_and_failed_ones_left_out():
    doc = synthetic.doc(12, seeded=3)
    doc["runs"]["run-5-0"]["accuracy"] = None  # a failed training
    archs = trained(doc)
    assert [a.arch for a in archs] == [i for i in range(12) if i != 5]
    assert archs[0].keys == ("run-0-0", "run-0-1") and set(archs[0].accuracy) == {0, 1}
    assert archs[0].mean == pytest.approx(np.mean([doc["runs"][k]["accuracy"] for k in archs[0].keys]))
    assert [a.arch for a in trained(doc, ["run-1-1", "run-7-0"])] == [1, 7]


def test_seed_noise_is_one_runs_standard_deviation_from_the_pairs():
    doc = synthetic.doc(6, seeded=4, noise=0.0)
    for i, d in enumerate((0.01, -0.02, 0.0, 0.03)):
        doc["runs"][f"run-{i}-1"]["accuracy"] += d
    assert seed_noise(trained(doc)) == pytest.approx(math.sqrt((0.01**2 + 0.02**2 + 0.03**2) / 4 / 2))
    assert seed_noise(trained(synthetic.doc(6, seeded=1))) is None  # one pair says nothing


# ------------------------------------------------------------------------------------------- regressors


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_every_regressor_ranks_unseen_architectures(name, monkeypatch):
    monkeypatch.setattr(MLPEnsemble, "STEPS", 300)
    archs = trained(synthetic.doc(60, seeded=0, noise=0.0))
    test = trained(synthetic.doc(100, seeded=0, noise=0.0, seed=1))[60:]  # draws 60.. are other networks
    enc = Encoder(synthetic.space())
    fitted = regressor(name).fit(enc.encode([a.row for a in archs]), np.array([a.mean for a in archs]),
                                 np.ones(len(archs)))  # fmt: skip
    pred = fitted.predict(enc.encode([a.row for a in test]))
    assert spearman(pred, [a.mean for a in test]) > 0.75  # a curve: the linear baseline ranks it least well


def test_an_unknown_model_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown surrogate model 'xgb'; valid models: gp, mlp, ridge"):
        regressor("xgb")


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_the_model_file_rebuilds_the_same_predictions(name, tmp_path, monkeypatch):
    monkeypatch.setattr(MLPEnsemble, "STEPS", 50)
    sp, doc = synthetic.space(), synthetic.doc(30)
    fitted = Surrogate.fit(sp, doc, name)
    fitted.save(tmp_path / "m.json")
    doc["runs"]["later"] = {"arch": 3, "seed": 2, "accuracy": 0.1}  # the data grew since: not used
    loaded = Surrogate.load(tmp_path / "m.json", sp, doc)
    rows = [row(sp.sample_random(s).params) for s in range(100, 120)]
    assert np.allclose(loaded.predict(rows), fitted.predict(rows), atol=1e-5)
    assert loaded.hash == fitted.hash and loaded.noise_sd == fitted.noise_sd > 0
    assert len(json.loads((tmp_path / "m.json").read_text())["runs"]) == 42  # 30 seed-0 runs, 12 seed-1


def test_a_model_file_of_another_space_or_lost_runs_is_refused(tmp_path):
    sp, doc = synthetic.space(), synthetic.doc(20)
    Surrogate.fit(sp, doc, "ridge").save(tmp_path / "m.json")
    changed = copy.deepcopy(synthetic.SPACE)
    changed["params"]["width"]["high"] = 128
    with pytest.raises(ValueError, match="another version of space 'cond'.*nas.surrogate fit"):
        Surrogate.load(tmp_path / "m.json", Space.from_dict(changed), doc)
    del doc["runs"]["run-4-0"]
    with pytest.raises(ValueError, match="fitted on 32 runs, its data file holds 31"):
        Surrogate.load(tmp_path / "m.json", sp, doc)


def test_an_evaluations_noise_is_drawn_from_its_seed_and_network():
    fitted = Surrogate.fit(synthetic.space(), synthetic.doc(20, noise=0.01), "ridge")
    params = synthetic.doc(1)["archs"][0]["params"]
    same = fitted.draw(0.8, params, seed=3)
    assert same == fitted.draw(0.8, dict(reversed(list(params.items()))), seed=3)  # key order does not matter
    draws = np.array([fitted.draw(0.8, params, seed=s) for s in range(2000)])
    assert len(set(draws.tolist())) == 2000 and draws.mean() == pytest.approx(0.8, abs=0.002)
    assert draws.std() == pytest.approx(fitted.noise_sd, rel=0.1)
    assert fitted.draw(0.8, {**params, "act": "relu" if params["act"] == "silu" else "silu"}, seed=3) != same
    assert max(fitted.draw(0.9999, params, seed=s) for s in range(50)) == 1.0  # clipped to [0, 1]


# ------------------------------------------------------------------------------------ held-out comparison


def test_folds_partition_the_architectures():
    parts = folds(23, 5, seed=1)
    assert len(parts) == 5 and sorted(np.concatenate(parts).tolist()) == list(range(23))


def test_the_comparison_ranks_a_nonlinear_truth_better_with_the_gp_than_linearly():
    archs = trained(synthetic.doc(40, noise=0.002))
    scores = {s.model: s for s in compare(Encoder(synthetic.space()), archs, ["gp", "ridge"], k=5)}
    assert scores["gp"].n == 40 and scores["gp"].n_seeded == 12
    assert scores["gp"].spearman > 0.9 and scores["gp"].rmse < scores["ridge"].rmse
    ceiling = agreement(archs)
    assert ceiling.n == 12 and ceiling.noise_sd == pytest.approx(0.002, rel=0.5)
    with pytest.raises(ValueError, match=f"holds 9 architecture.*at least {MIN_ARCHS}.*nas.surrogate build"):
        compare(Encoder(synthetic.space()), archs[:9], ["ridge"])


# ------------------------------------------------------------------------------------------------ command


def test_the_fit_command_prints_the_table_and_writes_the_model_beside_the_data(tmp_path, capsys):
    data, space_yaml = synthetic.write(tmp_path, synthetic.doc(30))
    argv = ["fit", "--space", str(space_yaml), "--file", str(data), "--compare", "gp,ridge", "--folds", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "5-fold cross-validation over 30 architectures" in out and "seed 0 vs seed 1 over 12" in out
    written = json.loads(model_file(data).read_text())
    assert model_file(data) == tmp_path / "cond-synthetic.model.json"
    assert written["model"] in ("gp", "ridge") and f"model: {written['model']}" in out
    assert [s["model"] for s in written["cross_validation"]] == ["gp", "ridge"]
    assert written["command"].startswith("python -m nas.surrogate fit") and written["data_file"] == data.name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--file", "/nonexistent/x.json"], "no surrogate data at /nonexistent/x.json: train it first"),
        (["--space", "nowhere"], "unknown space 'nowhere'; valid spaces:"),
    ],
)
def test_the_fit_command_refuses_bad_input_in_one_line(argv, message, capsys):
    assert main(["fit", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_an_unknown_model_to_compare_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--compare", "gp,xgb"])
    assert (
        e.value.code == 2
        and "unknown models ['xgb']; valid models: gp, mlp, ridge" in capsys.readouterr().err
    )
