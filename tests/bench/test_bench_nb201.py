"""`python -m experiments.bench nb201`: the scoring maths (regret at budgets, CI, ratio, reach) and the command."""

from __future__ import annotations

import itertools
import json

import numpy as np
import optuna
import pytest

from experiments.bench import nb201 as bench
from experiments.bench._nb201_samplers import KNOWN_LATENCY, SAMPLERS, build_sampler
from nas.pareto import ACCURACY_LATENCY, Problem, front_mask
from nas.search.ehvi import KnownLatencyEHVI, expected_improvement
from nas.search.mixed import posterior
from nas.space import load_space
from nas.tabular import nb201


def test_summary_regret_ci_ratio_and_reach():
    random = np.array([[0.5, 0.3, 0.2, 0.1], [0.7, 0.5, 0.2, 0.1]])
    better = np.array([[0.4, 0.04, 0.02, 0.005], [0.3, 0.2, 0.03, 0.02]])
    rows = bench.summary({("random", "cpu"): random, ("tpe", "cpu"): better}, budgets=[2, 4, 8])
    by = {(r["sampler"], r["budget"]): r for r in rows}
    assert set(by) == {("random", 2), ("random", 4), ("tpe", 2), ("tpe", 4)}  # budget 8 > the runs' length
    assert by[("tpe", 2)]["regret"] == pytest.approx(0.12)
    assert by[("tpe", 2)]["ratio_to_random"] == pytest.approx(0.12 / 0.4)
    assert by[("random", 4)]["ratio_to_random"] == pytest.approx(1.0)
    # 95 % t-interval of 0.3 and 0.5: 12.706 * sd / sqrt(2)
    assert by[("random", 2)]["ci95"] == pytest.approx(
        12.706 * np.std([0.3, 0.5], ddof=1) / np.sqrt(2), rel=1e-3
    )
    assert by[("tpe", 4)]["evals_to_95"] == pytest.approx(2.5)  # median of 2 and 3
    assert by[("tpe", 4)]["reached_99"] == 0.5 and by[("tpe", 4)]["evals_to_99"] == np.inf
    assert by[("random", 4)]["reached_95"] == 0.0


def test_runs_that_find_the_front_score_zero(tmp_path):
    rng = np.random.default_rng(0)
    lat = rng.uniform(1, 20, 300)
    problem = Problem(np.clip(0.4 + lat / 40 + rng.normal(0, 0.05, 300), 0, 1), lat)
    found = {"sampler": "oracle", "device": "cpu", "rows": [*range(10), *problem.front.tolist()]}
    blind = {"sampler": "random", "device": "cpu", "rows": list(range(10 + len(problem.front)))}
    regret = bench.curves([found, blind], {"cpu": problem})
    assert regret[("oracle", "cpu")][0, -1] == pytest.approx(0.0, abs=1e-12)
    assert regret[("random", "cpu")][0, -1] > 0
    assert np.all(np.diff(regret[("random", "cpu")], axis=1) <= 1e-15)
    assert bench.plot(regret, tmp_path / "regret.png").stat().st_size > 1000


@pytest.mark.parametrize("name", sorted([*SAMPLERS, *KNOWN_LATENCY]))
def test_every_sampler_proposes_cells(full_tables, name):
    table = nb201.load(full_tables, pickle_dir=full_tables)
    sampler = build_sampler(name, 3, known=bench.latency_oracle(table, "raspi4"))
    rows = bench.run_one(table, sampler, dataset="cifar10", device="raspi4", n=12, seed=3)
    assert len(rows) == 12 and all(0 <= r < nb201.N_CELLS for r in rows)


def test_the_known_latency_sampler_never_repeats_a_cell_and_is_reproducible(full_tables):
    table = nb201.load(full_tables, pickle_dir=full_tables)
    known = bench.latency_oracle(table, "gold_6226")
    runs = [
        bench.run_one(
            table,
            build_sampler("ehvi_known", 1, known=known),
            dataset="cifar10",
            device="gold_6226",
            n=25,
            seed=1,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(set(runs[0])) == 25
    with pytest.raises(ValueError, match="latency before it is evaluated"):
        build_sampler("ehvi_known", 1)


def test_expected_improvement_matches_monte_carlo_and_ignores_dominated_candidates():
    acc, lat = np.array([0.5, 0.8, 0.9, 0.6]), np.array([1.0, 4.0, 8.0, 6.0])  # (0.6, 6 ms) is dominated
    assert front_mask(np.column_stack((acc, lat)), ACCURACY_LATENCY).tolist() == [True, True, True, False]
    mu, sd, lc = np.log(np.array([0.1, 0.5, 0.15])), np.array([0.3, 0.05, 0.4]), np.array([2.0, 9.0, 5.0])
    got = expected_improvement(mu, sd, lc, acc, lat)
    rng = np.random.default_rng(0)
    ref = max(lat.max(), lc.max()) * 1.0001
    xs = np.linspace(0, ref, 4001)[:-1] + ref / 8000  # midpoints: the improvement integrated over latency
    best = np.array([max([acc.min(), *acc[(lat <= x)]]) for x in xs])
    for i in range(3):
        a = 1 - np.exp(rng.normal(mu[i], sd[i], 20000))
        gain = np.clip(a[:, None] - best[None, :], 0, None) * (xs[None, :] >= lc[i])
        assert got[i] == pytest.approx(gain.mean(0).sum() * ref / 4000, rel=0.03, abs=1e-4)
    # a candidate slower than (0.9, 8 ms) with accuracy ~0.5 adds (almost) nothing
    assert got[1] < 1e-3 < got[0]


@pytest.mark.parametrize("name", ["tpe_mv_norepeat", "tpe_mv20_nsga2"])
def test_wrapped_samplers_are_reproducible_past_their_hand_over(full_tables, name):
    table = nb201.load(full_tables, pickle_dir=full_tables)
    runs = [
        bench.run_one(table, build_sampler(name, 3), dataset="cifar10", device="raspi4", n=30, seed=3)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_the_command_resumes_and_reports(full_tables, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(nb201.PICKLE_ENV_VAR, str(full_tables))
    args = ["--data", str(full_tables), "--samplers", "random,tpe_mv", "--devices", "gold_6226"]
    args += ["--seeds", "2", "--evaluations", "30", "--out", str(tmp_path)]
    assert bench.main(args) == 0
    first = capsys.readouterr().out
    assert first.count(" seed ") == 4
    assert bench.main(args) == 0  # every run is in the results file: nothing is run again
    assert capsys.readouterr().out.count(" seed ") == 0
    runs = [json.loads(line) for line in (tmp_path / "runs_cifar10_n30.jsonl").read_text().splitlines()]
    assert sorted((r["sampler"], r["seed"]) for r in runs) == [
        ("random", 0),
        ("random", 1),
        ("tpe_mv", 0),
        ("tpe_mv", 1),
    ]
    assert "tpe_mv" in first and "x random" in first
    # budget 25 only (the runs are 30 long): a header and one row per sampler
    assert (tmp_path / "regret.png").is_file() and (tmp_path / "summary.csv").read_text().count("\n") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samplers", "random,bogus"], "unknown sampler(s) bogus; valid samplers: random, tpe"),
        (["--devices", "gpu9000"], "unknown NAS-Bench-201 device 'gpu9000'; valid devices: gold_6226"),
    ],
)
def test_bad_options_say_what_is_valid(full_tables, tmp_path, capsys, args, message):
    assert bench.main(["--data", str(full_tables), "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_norepeat_never_proposes_an_evaluated_cell_after_start_up(full_tables):
    table = nb201.load(full_tables, pickle_dir=full_tables)
    # the synthetic table's accuracy is a function of the convolution count: TPE soon repeats its best cells
    plain = bench.run_one(table, build_sampler("tpe_mv", 0), dataset="cifar10", device="raspi4", n=60, seed=0)
    rows = bench.run_one(
        table, build_sampler("tpe_mv_norepeat", 0), dataset="cifar10", device="raspi4", n=60, seed=0
    )
    assert len(set(plain)) < 60
    assert len(set(rows)) == 60


def test_the_known_latency_is_a_model_input_where_accuracy_follows_it():
    # Accuracy a smooth function of latency, unrelated to the categorical codes: only the kernel's
    # log-latency term can predict unseen cells; the categorical-only kernel is at chance.
    rng = np.random.default_rng(0)
    X, C = rng.integers(5, size=(60, 6)), rng.integers(5, size=(200, 6))
    lat, lc = np.exp(rng.uniform(0, 4, 60)), np.exp(rng.uniform(0, 4, 200))

    def y(latency):
        return -1.0 - 0.4 * np.log(latency)

    categorical = np.ones(6, dtype=bool)
    with_lat, _ = posterior(X, y(lat), C, categorical, 10, lat, lc)
    without, _ = posterior(X, y(lat), C, categorical, 10)
    truth = y(lc)
    assert np.corrcoef(with_lat, truth)[0, 1] > 0.95
    assert abs(np.corrcoef(without, truth)[0, 1]) < 0.5


def test_with_the_cell_modelled_the_cheapest_twin_of_the_best_cell_is_proposed():
    # Cells of none / 3x3 conv edges; one (0.95) has node 2 feeding nothing (edge5 = none), so cutting edge1
    # and edge2 leaves its function unchanged and saves two of its five ops' latency (one unit an op). 30 other
    # cells evaluated (0.3, disconnected ones 0.1), none of them the best cell's twins. Told the cell's DAG,
    # the sampler knows the twins' accuracy and proposes the cheapest, whatever the 30; without, it cannot
    # tell a twin from a neighbour.
    dag = load_space("nb201").dag
    ops = ["none", "nor_conv_3x3"]
    dist = {f"edge{k}": optuna.distributions.CategoricalDistribution(ops) for k in range(6)}
    cut = {f"edge{k}": "none" for k in range(6)}

    def latency(p):
        return float(sum(v != "none" for v in p.values())) + 0.01

    best = {f"edge{k}": op for k, op in enumerate(["nor_conv_3x3"] * 5 + ["none"])}
    cheapest = {**best, "edge1": "none", "edge2": "none"}
    cells = [dict(zip(dist, c, strict=True)) for c in itertools.product(ops, repeat=6)]
    others = [c for c in cells if dag.canonical(c) != dag.canonical(best)]
    found = {True: 0, False: 0}
    for seed in range(10):
        rng = np.random.default_rng(seed)
        study = optuna.create_study(directions=["maximize", "minimize"])
        for p in [*(others[i] for i in rng.choice(len(others), 30, replace=False)), best]:
            acc = (
                0.95 if p == best else 0.1 if dag.canonical(p) == cut else 0.3 + 0.02 * rng.standard_normal()
            )
            study.add_trial(optuna.trial.create_trial(params=p, distributions=dist, values=[acc, latency(p)]))
        for modelled in found:
            sampler = KnownLatencyEHVI(
                latency, seed=0, pool=200, canonical=dag.canonical if modelled else None
            )
            found[modelled] += sampler.sample_relative(study, study.ask(), dist) == cheapest
    assert found == {True: 10, False: found[False]} and found[False] < 10
