"""sampler=ehvi on mixed spaces: integer, log-integer, float, categorical and conditional parameters; its latency
start-up design; the search's latency oracle (predicted for a measured latency unless asked) and its rule of
which parameters a point uses."""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from nas.pareto import Problem
from nas.search.ehvi import KnownLatencyEHVI
from nas.search.mixed import Encoding
from nas.search.plan import SearchPlan

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(trial) -> dict:
    """A mixed conditional space: a bottleneck block has an expansion ratio, a basic block has none."""
    block = trial.suggest_categorical("block", ["basic", "bottleneck"])
    if block == "bottleneck":
        trial.suggest_categorical("expansion", [2, 4])
    trial.suggest_int("width", 8, 128, log=True)
    trial.suggest_int("depth", 1, 3)
    trial.suggest_float("dropout", 0.0, 0.5, step=0.1)
    return dict(trial.params)


SPACE = {
    "block": CategoricalDistribution(["basic", "bottleneck"]),
    "expansion": CategoricalDistribution([2, 4]),
    "width": IntDistribution(8, 128, log=True),
    "depth": IntDistribution(1, 3),
    "dropout": FloatDistribution(0.0, 0.5, step=0.1),
}


def used(params) -> dict | None:
    """The space's own rule: which of a full assignment's parameters it reads (`active`); None: not a point."""
    names = ["block", "width", "depth", "dropout"] + (
        ["expansion"] if params.get("block") == "bottleneck" else []
    )
    return {k: params[k] for k in names} if all(k in params for k in names) else None


def latency(p) -> float:
    """Latency grows with width and depth; a bottleneck costs more."""
    return 0.1 + p["width"] ** 1.5 * p["depth"] / 100 * (1.4 if p["block"] == "bottleneck" else 1.0)


def accuracy(p) -> float:
    """Accuracy grows with width and depth; a bottleneck with expansion 4 and dropout cost a little."""
    a = 0.95 - 0.45 * math.exp(-p["width"] / 30) - 0.04 * (3 - p["depth"]) - 0.1 * p["dropout"]
    return a - (0.03 if p.get("expansion") == 4 else 0.0)


def search(sampler, n: int) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        p = draw(trial)
        study.tell(trial, [accuracy(p), latency(p)])
    return study


def key(params: dict) -> tuple:
    return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in params.items()))


def regret(study: optuna.Study, problem: Problem, points: list[dict]) -> float:
    index = {key(p): i for i, p in enumerate(points)}
    return float(problem.regret_curve([index[key(t.params)] for t in study.trials])[-1])


@pytest.fixture(scope="module")
def every_point() -> list[dict]:
    """All 3,366 points of the space (for the true front)."""
    out = []
    for width in range(8, 129):
        for depth in (1, 2, 3):
            for dropout in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
                out.append({"block": "basic", "width": width, "depth": depth, "dropout": dropout})
                for e in (2, 4):
                    out.append(
                        {
                            "block": "bottleneck",
                            "expansion": e,
                            "width": width,
                            "depth": depth,
                            "dropout": dropout,
                        }
                    )
    return out


def test_a_mixed_conditional_space_is_searched_by_the_model_and_beats_random_search(every_point):
    problem = Problem(
        np.array([accuracy(p) for p in every_point]), np.array([latency(p) for p in every_point])
    )
    ours, rand = [], []
    for seed in range(3):
        sampler = KnownLatencyEHVI(
            latency, seed=seed, n_startup_trials=6, pool=300, active=used, distributions=SPACE
        )
        study = search(sampler, 24)
        points = [t.params for t in study.trials]
        assert len({key(p) for p in points}) == len(points)  # never a repeat
        for p in points:  # a conditional parameter exactly where its condition holds, values in range
            assert ("expansion" in p) == (p["block"] == "bottleneck")
            assert type(p["width"]) is int and 8 <= p["width"] <= 128 and type(p["dropout"]) is float
        ours.append(regret(study, problem, every_point))
        rand.append(regret(search(optuna.samplers.RandomSampler(seed=seed), 24), problem, every_point))
    assert np.mean(ours) < 0.5 * np.mean(rand)


def test_the_start_up_design_spreads_its_points_over_the_latency_axis():
    enc = Encoding(SPACE)
    pool = [used(p) for p in (enc.params(r) for r in enc.draw(np.random.default_rng(0), 5000))]
    every = np.sort([latency(p) for p in pool])  # random draws' latencies: the axis the design spreads over

    def widest_gap(startup: str, seed: int) -> float:
        """The largest gap between the first 8 points' latencies, in quantiles of random draws' latencies."""
        sampler = KnownLatencyEHVI(
            latency,
            seed=seed,
            n_startup_trials=8,
            startup=startup,
            pool=300,
            active=used,
            distributions=SPACE,
        )
        q = np.sort(
            np.searchsorted(every, [latency(t.params) for t in search(sampler, 8).trials]) / len(every)
        )
        return float(np.diff(np.concatenate([[0.0], q, [1.0]])).max())

    spread = [widest_gap("latency", s) for s in range(5)]
    drawn = [widest_gap("random", s) for s in range(5)]
    assert max(spread) < 0.25 and np.mean(spread) < 0.8 * np.mean(drawn)  # 0.22 vs 0.31


def test_neighbours_of_the_front_are_single_parameter_edits_and_numeric_steps():
    sampler = KnownLatencyEHVI(latency, seed=0, active=used, distributions=SPACE)
    enc = Encoding(SPACE)
    row = enc.rows([{"block": "basic", "width": 64, "depth": 2, "dropout": 0.2}])  # expansion: unused
    edits = [enc.params(r, used_only=True) for r in sampler._neighbours(enc, row)]
    widths = sorted({e["width"] for e in edits if e["width"] != 64})
    assert {63, 65} <= set(widths) and min(widths) < 50 and max(widths) > 80  # a grid step, and range steps
    assert {e["depth"] for e in edits} == {1, 2, 3}
    assert {round(e["dropout"], 1) for e in edits} >= {0.1, 0.3}
    assert any(e["block"] == "bottleneck" for e in edits)
    assert all(
        sum(e[k] != v for k, v in (("width", 64), ("depth", 2), ("block", "basic"))) <= 1 for e in edits
    )


def test_the_plan_accepts_ehvi_on_a_space_with_numeric_parameters_and_a_measured_latency(search_cfg):
    from nas.search.plan import EHVI_PRICED

    plan = SearchPlan.from_cfg(search_cfg("sampler=ehvi"))  # tiny: integer widths, latency measured
    assert plan.sampler.name == "ehvi"
    assert plan.sampler.options["priced"] == EHVI_PRICED  # auto: pricing builds each candidate's network
    assert SearchPlan.from_cfg(search_cfg("sampler=ehvi", "sampler.priced=null")).sampler.options["priced"] is None
    with pytest.raises(ValueError, match="sampler=ehvi searches objectives=\\[accuracy,latency\\]"):
        SearchPlan.from_cfg(search_cfg("sampler=ehvi", "objectives=[accuracy,macs]"))


def conditional_space(tiny_space: dict) -> dict:
    """The tiny space with log-integer widths and a conditional parameter (a max-pooled head's dropout)."""
    tiny_space["params"]["width"] = {"type": "int", "low": 4, "high": 8, "log": True, "per_stage": True}
    tiny_space["params"]["drop"] = {"choices": [0.0, 0.2], "when": {"pool": "max"}}
    tiny_space["spec"]["head"]["dropout"] = "$drop"
    return tiny_space


def test_the_space_says_which_parameters_a_point_uses_and_every_parameter_it_may_use(tiny_space):
    from nas.search.space_rules import active_params, conditional, space_distributions
    from nas.space import Space, load_space

    space = Space.from_dict(conditional_space(tiny_space))
    assert conditional(space) and conditional(load_space("resnet_like"))  # a `when`; a stage count parameter
    assert not conditional(load_space("nb201"))  # every cell has six edges: no rule needed
    used = active_params(space)
    point = {"act": "relu", "width_0": 5, "width_1": 8, "pool": "avg", "drop": 0.2}
    assert used(point) == {"act": "relu", "width_0": 5, "width_1": 8, "pool": "avg"}  # drop: unused
    assert used({**point, "pool": "max"})["drop"] == 0.2
    assert used({k: v for k, v in point.items() if k != "width_1"}) is None  # a value missing: no point
    assert space_distributions(space) == {
        "act": CategoricalDistribution(["relu", "silu"]),
        "width_0": IntDistribution(4, 8, log=True),
        "width_1": IntDistribution(4, 8, log=True),
        "pool": CategoricalDistribution(["avg", "max"]),
        "drop": CategoricalDistribution([0.0, 0.2]),
    }


@pytest.mark.parametrize(("measure", "priced"), [(False, "predicted"), (True, "measured")])
def test_a_measured_latency_is_predicted_for_the_candidates_unless_asked(search_cfg, measure, priced):
    from nas.search.evaluator import Evaluator
    from nas.search.trial import latency_oracle

    class Priced(Evaluator):
        modes: list[str] = []

        def evaluate(self, trial, candidate, rung):
            raise AssertionError("the oracle evaluates nothing")

        def latency(self, deployed, cfg, *, costs=None):
            self.modes.append(cfg["mode"])
            return 1.5, {}

    plan = SearchPlan.from_cfg(search_cfg("sampler=ehvi", f"sampler.measure={str(measure).lower()}"))
    assert plan.latency["mode"] == "measured"
    evaluator = Priced()
    known = latency_oracle(plan, evaluator)
    point = {"act": "relu", "width_0": 4, "width_1": 8, "pool": "avg"}
    assert known(point) == known(dict(reversed(point.items()))) == 1.5  # priced once
    assert evaluator.modes == [priced]
    assert known({k: v for k, v in point.items() if k != "pool"}) is None  # no point of the space


def test_a_search_with_ehvi_on_a_mixed_conditional_space(search_cfg, tiny_space, fake_fit, tmp_path):
    from nas.search.loop import run_search

    fake_fit(lambda spec: 0.5 + 0.01 * sum(s.get("channels", 0) for s in spec["stages"]))
    cfg = search_cfg(
        "sampler=ehvi", "sampler.n_startup_trials=3", "sampler.pool=20", "sampler.priced=4", "latency.mode=macs",
        "n_trials=8",
        space=conditional_space(tiny_space),
    )  # fmt: skip
    run_search(cfg, study_dir=tmp_path / "study", echo=lambda s: None)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 8
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 8  # no network twice
    assert all(("drop" in t.params) == (t.params["pool"] == "max") for t in trials)
    assert all(4 <= t.params["width_0"] <= 8 for t in trials)


def test_a_disconnected_cells_twins_are_known_whatever_their_latency():
    # NAS-Bench-201-like cells of none / 3x3 conv edges: a cell whose edges cannot carry the input to the output
    # computes nothing (accuracy 0.01) in near-zero time that differs from twin to twin (0.001-0.006 ms). Once
    # one is evaluated the model knows them all, so none is proposed however fast: the model's latency input
    # is the latency of the cell a point computes, one value for all twins.
    from nas.space import load_space

    dag = load_space("nb201").dag
    ops = ["none", "nor_conv_3x3"]
    dist = {f"edge{k}": CategoricalDistribution(ops) for k in range(6)}
    cells = [dict(zip(dist, c, strict=True)) for c in itertools.product(ops, repeat=6)]
    dead = {f"edge{k}": "none" for k in range(6)}

    def convs(p):
        return sum(v != "none" for v in dag.canonical(p).values())

    def latency(p):
        return 0.001 * (1 + sum(v != "none" for v in p.values())) if convs(p) == 0 else 1.0 + convs(p)

    proposed = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        study = optuna.create_study(directions=["maximize", "minimize"])
        live = [c for c in cells if convs(c)]
        for p in [dead, *(live[i] for i in rng.choice(len(live), 20, replace=False))]:
            acc = 0.01 if convs(p) == 0 else 0.5 + 0.08 * convs(p) + 0.01 * rng.standard_normal()
            study.add_trial(optuna.trial.create_trial(params=p, distributions=dist, values=[acc, latency(p)]))
        sampler = KnownLatencyEHVI(latency, seed=seed, pool=200, canonical=dag.canonical)
        proposed.append(convs(sampler.sample_relative(study, study.ask(), dist)))
    assert min(proposed) > 0


def test_the_cost_start_up_proposes_what_computes_the_most_for_its_latency():
    # Three categorical knobs; latency and MACs disagree (the third knob costs latency and computes nothing),
    # so most points compute less than another at a latency no higher.
    space = {k: CategoricalDistribution([0, 1, 2, 3, 4]) for k in ("a", "b", "c")}
    every = [dict(zip("abc", v, strict=True)) for v in itertools.product(range(5), repeat=3)]

    def lat(p) -> float:
        return 1.0 + p["a"] + 2.0 * p["b"] + 1.5 * p["c"]

    def macs(p) -> float:
        return 1e6 * (1 + p["a"]) * (1 + 3 * p["b"])

    def draw_abc(trial) -> dict:
        return {k: trial.suggest_categorical(k, [0, 1, 2, 3, 4]) for k in "abc"}

    sampler = KnownLatencyEHVI(
        lat, seed=0, n_startup_trials=6, pool=2000, distributions=space,
        costs=lambda p: {"macs": macs(p), "params": 1.0}, cost_features=("macs",), startup="cost",
    )  # fmt: skip
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    proposed = []
    for _ in range(6):
        trial = study.ask()
        p = draw_abc(trial)
        proposed.append(p)
        study.tell(trial, [0.5, lat(p)])
    for k, p in enumerate(proposed):  # each on the (MACs up, latency down) front of the points left
        left = [q for q in every if q not in proposed[:k]]
        assert not any(macs(q) >= macs(p) and lat(q) <= lat(p) and (macs(q), lat(q)) != (macs(p), lat(p))
                       for q in left), (k, p)  # fmt: skip
    spread = sorted(lat(p) for p in proposed)
    assert spread[0] <= 3.0 and spread[-1] >= 9.0  # spread over the latency axis, not clustered


def test_known_costs_are_model_inputs_whose_trend_extrapolates():
    from nas.search.mixed import posterior

    X, cat = np.zeros((4, 1)), np.array([True])  # one categorical parameter, the same for every point
    f = np.array([1.0, 2.0, 4.0, 8.0])  # a known cost (e.g. MACs); log-error falls with its log
    y = -0.5 * np.log(f)
    at, fc = np.zeros((2, 1)), np.array([2.0, 64.0])
    flat, _ = posterior(X, y, at, cat, 10, f, fc)
    trend, sd = posterior(X, y, at, cat, 10, f, fc, trend=True)
    assert trend[0] == pytest.approx(-0.5 * np.log(2.0), abs=0.05)
    assert trend[1] < y.min() - 0.5 < flat[1]  # past the data the trend goes on; without it the mean returns
    assert np.all(np.isfinite(sd)) and sd[1] > sd[0]


def test_the_cost_oracle_counts_a_candidate_as_the_trial_does_once_with_the_latency(search_cfg):
    from nas.search.evaluator import Evaluator
    from nas.search.study import bind_latency, make_sampler
    from nas.search.trial import candidate_render, cost_oracle, latency_oracle

    class Counted(Evaluator):
        calls = 0

        def evaluate(self, trial, candidate, rung):
            raise AssertionError("the oracles evaluate nothing")

        def cost(self, plan, spec):
            Counted.calls += 1
            return super().cost(plan, spec)

        def latency(self, deployed, cfg, *, costs=None):
            return 1.5, {}

    plan = SearchPlan.from_cfg(search_cfg("sampler=ehvi"))
    evaluator = Counted()
    render = candidate_render(plan, evaluator)
    known, costs = latency_oracle(plan, evaluator, render=render), cost_oracle(plan, evaluator, render=render)
    point = {"act": "relu", "width_0": 4, "width_1": 8, "pool": "avg"}
    spec = plan.space.sample(optuna.trial.FixedTrial(point)).spec
    assert costs(point) == {k: float(v) for k, v in plan.cost(spec)[2].items() if k in ("params", "macs")}
    assert known(point) == 1.5 and Counted.calls == 1  # rendered and counted once for both
    assert costs({k: v for k, v in point.items() if k != "pool"}) is None  # no point of the space
    sampler = make_sampler(plan.sampler, seed=0)
    bind_latency(sampler, known, costs)
    assert sampler.known is known and sampler.costs is costs
    assert sampler.cost_features == ("macs", "params") and sampler.startup == "cost"  # conf/sampler/ehvi.yaml
    with pytest.raises(ValueError, match="cost_features is a list of macs, params"):
        make_sampler({"name": "ehvi", "cost_features": "macs"}, seed=0)
