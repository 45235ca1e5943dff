"""The surrogate's true front: the screen's rule, mutations that stay in the space, and on a space small enough to
count every network, the approximation equals the exact front."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest

from nas.pareto import ACCURACY_LATENCY, front_mask
from nas.search.plan import SearchPlan
from nas.surrogate import front
from nas.surrogate.__main__ import main
from nas.surrogate.build import architectures
from nas.surrogate.model import Surrogate
from tests.search.conftest import compose_search
from tests.surrogate import synthetic


def plan_of(raw: dict, *overrides: str) -> SearchPlan:
    cfg = compose_search("latency.mode=macs", *overrides)
    cfg["space"] = copy.deepcopy(raw)
    return SearchPlan.from_cfg(cfg)


def counted_doc(plan: SearchPlan, n: int) -> dict:
    """Data of `n` networks with their real counts (what the screen learns costs from), synthetic accuracies."""
    doc = synthetic.doc(1, raw=plan.space.raw)
    doc["archs"] = architectures(plan, n)
    rng = np.random.default_rng(0)
    doc["runs"] = {f"r{i}-{s}": {"arch": i, "seed": s, "accuracy": synthetic.truth(a["params"]) + 0.003 * rng.standard_normal()}
                   for i, a in enumerate(doc["archs"]) for s in ((0, 1) if i < 8 else (0,))}  # fmt: skip
    return doc


def test_a_draw_is_ruled_out_only_when_dominated_with_every_error_against_it():
    accuracy = np.array([0.90, 0.89, 0.80, 0.70, 0.95])
    latency = np.array([10.0, 30.0, 12.0, 100.0, 50.0])
    sure = np.array([True, True, True, True, False])
    # errors: 0.01 accuracy (margin 2 x 3 x 0.01 = 0.06), none in latency
    kept = front.screened(accuracy, latency, lat_sd=0.0, acc_sd=0.01, sure=sure)
    # 1 (0.89 at 30) is within the margin of 0 (0.90 at 10): kept; 3 (0.70 at 100) is not: ruled out; 4 is
    # the most accurate; 2 (0.80 at 12) is 0.10 below 0 and slower: ruled out
    assert sorted(kept.tolist()) == [0, 1, 4]
    assert kept[0] == 4  # the clearest front member first
    # an error in latency: 0 is no longer surely faster than 2 (10 x 10^(2 x 3 x 0.1) > 12)
    assert 2 in front.screened(accuracy, latency, lat_sd=0.1, acc_sd=0.01, sure=sure).tolist()
    # only surely valid draws rule others out
    assert 3 in front.screened(accuracy, latency, 0.0, 0.01, sure=np.zeros(5, bool)).tolist()


def test_a_mutation_changes_one_or_two_parameters_and_stays_in_the_space():
    space, rng = synthetic.space(), random.Random(0)
    parent = {"n_stages": 1, "act": "relu", "pool": "max", "drop": 0.2, "width_0": 16}
    children = [c for c in (front.mutate(space, parent, rng) for _ in range(300)) if c is not None]
    assert len(children) == 300
    for child in children:
        space.compile(child)  # renders
        changed = {k for k in set(child) | set(parent) if child.get(k) != parent.get(k)}
        assert 1 <= len(changed) <= 4  # two changed, plus parameters that appear or vanish with them
    assert any(c["n_stages"] == 2 and 4 <= c["width_1"] <= 64 for c in children)  # a new stage, drawn
    assert any("drop" not in c for c in children)  # pool avg: dropout inactive
    widths = {c["width_0"] for c in children if c["width_0"] != 16}
    assert widths and max(widths) <= 40  # a number moves a little on its log scale


def test_on_a_small_space_the_approximation_is_the_exact_front(tmp_path):
    plan = plan_of(synthetic.SMALL)
    doc = counted_doc(plan, 16)
    surrogate = Surrogate.fit(plan.space, doc, "gp")
    everything = sorted({json.dumps(plan.space.sample_random(s).params, sort_keys=True) for s in range(400)})
    assert len(everything) == 24
    exact = front.Exact(plan, surrogate, "macs")
    points = [p for p in exact([json.loads(k) for k in everything]) if p is not None]
    truth = sorted(json.dumps(p.params, sort_keys=True) for p in front.front_of(points))

    out = front.run(plan, surrogate, doc["archs"], mode="macs", seeds=[0, 1], draws=100, max_exact=24,
                    generations=2, children=5, echo=lambda s: None)  # fmt: skip
    assert sorted(json.dumps(p["params"], sort_keys=True) for p in out["front"]) == truth
    assert [r["hypervolume_vs_union"] for r in out["runs"]] == [pytest.approx(1.0)] * 2
    for p in out["front"]:
        assert p["latency"] == p["macs"]
        assert p["accuracy"] == pytest.approx(
            float(surrogate.predict([(p["params"], p["macs"], p["n_params"])])[0])
        )
    mask = front_mask([(p["accuracy"], p["latency"]) for p in out["front"]], ACCURACY_LATENCY)
    assert mask.all() and out["model"] == surrogate.hash and out["latency"] == "macs"


def test_constraints_keep_broken_networks_off_the_front():
    plan = plan_of({**synthetic.SMALL, "constraints": {"params": {"max": 800}}})
    doc = counted_doc(plan, 12)
    surrogate = Surrogate.fit(plan.space, doc, "gp")
    out = front.run(plan, surrogate, doc["archs"], mode="params", seeds=[0], draws=60, max_exact=24,
                    generations=1, children=5, echo=lambda s: None)  # fmt: skip
    assert out["front"] and all(p["n_params"] <= 800 and p["latency"] == p["n_params"] for p in out["front"])
    assert out["reference"][1] == 800  # the hypervolume's latency bound is the constraint


def test_a_latency_that_cannot_be_counted_is_refused():
    plan = plan_of(synthetic.SMALL)
    with pytest.raises(ValueError, match="latency 'predicted' is not one it can count exactly; valid: macs"):
        front.run(
            plan, None, [], mode="predicted", seeds=[0], draws=1, max_exact=1, generations=0, children=0
        )


def test_the_front_command_says_what_to_run_first(tmp_path, capsys):
    assert main(["front", "--file", str(tmp_path / "resnet_like-x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no fitted surrogate at") and "nas.surrogate fit --space resnet_like" in err
