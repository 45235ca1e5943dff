"""A search config is checked before any compute, and the plan applies the fidelity."""

from __future__ import annotations

import pytest

from nas.search.plan import SearchPlan


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"objectives": ["accuracy", "speed"]}, "objectives must be"),
        ({"objectives": ["latency"]}, "must include accuracy"),
        ({"fidelity": {"epochs": 1, "fraction": 0.0}}, "fidelity.fraction"),
        ({"fidelity": {"epochs": 0}}, "fidelity.epochs"),
        ({"fidelity": {"epochs": 1, "frac": 0.5}}, "unknown fidelity keys"),
        ({"n_trials": 0}, "n_trials"),
        ({"latency_budget_ms": -1}, "latency_budget_ms"),
        ({"study_name": "a/b"}, "study_name"),
        ({"baselines": {"enabled": True, "modles": ["x"]}}, "unknown baselines keys"),
        ({"sampler": {"name": "cmaes"}}, "unknown sampler 'cmaes'"),
        ({"space": None}, "no search space: add space=<name>; valid spaces: .*resnet_like"),
    ],
)
def test_bad_search_config_is_refused_before_compute(search_cfg, override, message):
    cfg = {**search_cfg(), **override}
    with pytest.raises(ValueError, match=message):
        SearchPlan.from_cfg(cfg)


def test_latency_budget_needs_a_timed_latency_mode(search_cfg):
    cfg = search_cfg("latency.mode=macs", "latency_budget_ms=5")
    with pytest.raises(ValueError, match="measured or predicted"):
        SearchPlan.from_cfg(cfg)


def test_plan_applies_the_fidelity(search_cfg):
    plan = SearchPlan.from_cfg(
        search_cfg("fidelity.epochs=2", "fidelity.fraction=0.5", "fidelity.image_size=12")
    )
    run = plan.run_config({"name": "x"}, output_dir="o", name="x")
    assert run["trainer"]["max_epochs"] == 2
    assert run["data"]["fraction"] == 0.5 and run["data"]["image_size"] == 12
    assert run["test"] is False and run["checkpoint"] is False
    full = plan.run_config({"name": "x"}, output_dir="o", name="x", full=True)
    assert full["data"]["fraction"] == 1.0 and full["test"] is True
