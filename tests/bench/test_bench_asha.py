"""`python -m experiments.bench asha`: the simulated-time driver of successive halving on NAS-Bench-201."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.samplers import RandomSampler

from experiments.bench import asha as bench
from nas.tabular import nb201


@pytest.fixture(scope="module")
def table(full_tables):
    return nb201.load(full_tables)


def test_asha_runs_pay_rung_costs_and_stop_at_the_budget(table):
    cost12, cost200 = table.cost("cifar10", 12), table.cost("cifar10", 200)
    budget = 20 * float(np.mean(cost200))
    one = dict(dataset="cifar10", device="gold_6226", budget_s=budget, seed=0)
    single = bench.run_one(table, RandomSampler(seed=0), asha=False, **one)
    halving = bench.run_one(table, RandomSampler(seed=0), asha=True, **one)
    for run in (single, halving):
        times = [t for t, _ in run["full"]]
        assert times == sorted(times) and times[-1] <= budget
    # the first cell of a study is always promoted: its full result lands after both rungs' costs
    t0, row0 = halving["full"][0]
    assert t0 == pytest.approx(cost12[row0] + cost200[row0])
    assert single["full"][0][0] == pytest.approx(cost200[single["full"][0][1]])
    # most cells stop at 12 epochs: many more candidates seen for about as many full results
    assert len(halving["full"]) in (halving["promoted"], halving["promoted"] - 1)  # the last may be cut
    assert halving["promoted"] < halving["trials"] / 2
    assert halving["trials"] > 2 * single["trials"]


def test_the_command_caches_runs_and_resumes(full_tables, tmp_path, capsys, monkeypatch):
    argv = [
        "--samplers",
        "random",
        "--single",
        "",
        "--seeds",
        "2",
        "--budget",
        "25",
        "--data",
        str(full_tables),
    ]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "asha_random" in first and first.count("seed") == 4  # 2 methods x 2 seeds, each logged once run
    monkeypatch.setattr(bench, "run_one", lambda *a, **k: pytest.fail("a cached run ran again"))
    assert bench.main([*argv, "--out", str(tmp_path), "--baseline", "random"]) == 0
    table = capsys.readouterr().out
    assert "seed" not in table and "x random" in table and "asha_random" in table
    assert bench.main(["--samplers", "nope"]) == 2 and "valid samplers" in capsys.readouterr().err
