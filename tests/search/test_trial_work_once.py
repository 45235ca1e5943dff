"""Work done once per trial: the network is built only as often as the trial needs it (issue 16 item 4)."""

from __future__ import annotations

import optuna
import pytest
import torch

import blocks
import nas.module
from nas.latency.costs import spec_costs
from nas.search.evaluator import TrainingEvaluator
from nas.search.guard import InterruptGuard
from nas.search.plan import SearchPlan
from nas.search.scheduler import SingleFidelity
from nas.search.trial import TrialRunner


@pytest.fixture
def builds(monkeypatch):
    """Every `blocks.build_model` call as "meta" (shapes only) or "real" (weights allocated)."""
    calls: list[str] = []
    real = blocks.build_model

    def counting(spec, *args, **kwargs):
        calls.append("meta" if torch.empty(()).device.type == "meta" else "real")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(blocks, "build_model", counting)
    monkeypatch.setattr(nas.module, "build_model", counting)  # imported by name at the module's top
    return calls


@pytest.mark.parametrize("mode", ["measured", "macs"])
def test_a_trained_trial_builds_its_network_once_per_use(search_cfg, tmp_path, builds, mode):
    """A measured trial: one meta build (params / MACs for the constraints), one real network timed, one
    trained (before: 2 meta + 3 real, the latency objective and fit.validate / fit counting again). With
    `latency.mode=macs`: the meta build and the trained network only."""
    plan = SearchPlan.from_cfg(search_cfg(f"latency.mode={mode}", "n_trials=1", "reuse=none"))
    builds.clear()  # the plan checks the config on sample specs once per search, not per trial
    study = optuna.create_study(directions=["maximize", "minimize"])
    evaluator = TrainingEvaluator(plan, tmp_path / "study", InterruptGuard())
    runner = TrialRunner(plan, study, evaluator, SingleFidelity(plan.fidelity))
    outcome = runner.run()
    assert outcome.state == "COMPLETE", outcome.reason
    expected = ["meta", "real", "real"] if mode == "measured" else ["meta", "real"]
    assert builds == expected, builds
    # The costs passed on are the ones fit would have counted itself.
    t = study.trials[0]
    assert {"params": t.user_attrs["n_params"], "macs": t.user_attrs["macs"]} == spec_costs(
        plan.resolved_spec(t.user_attrs["spec"])
    )
    assert t.user_attrs["latency_record"]["macs"] == t.user_attrs["macs"]


def test_a_trial_trained_at_a_smaller_size_counts_each_size_once(search_cfg, tmp_path, builds):
    """`fidelity.image_size` below the data's: one meta build per size (the deployed network judged, the
    trained one checked to run), and fit gets the training size's counts instead of building a third."""
    cfg = search_cfg("latency.mode=macs", "n_trials=1", "reuse=none", "fidelity.image_size=4")
    plan = SearchPlan.from_cfg(cfg)
    builds.clear()
    study = optuna.create_study(directions=["maximize", "minimize"])
    evaluator = TrainingEvaluator(plan, tmp_path / "study", InterruptGuard())
    outcome = TrialRunner(plan, study, evaluator, SingleFidelity(plan.fidelity)).run()
    assert outcome.state == "COMPLETE", outcome.reason
    assert builds == ["meta", "meta", "real"], builds
    t = study.trials[0]
    deployed = plan.deployed_spec(t.user_attrs["spec"])
    trained = plan.resolved_spec(t.user_attrs["spec"])
    assert trained["input_size"] < deployed["input_size"]
    assert {"params": t.user_attrs["n_params"], "macs": t.user_attrs["macs"]} == spec_costs(deployed)
