"""baselines.max_share: reference networks take at most a share of the search's training time, cheapest
first, estimated from the trials' own times before any of them trains."""

from __future__ import annotations

import optuna
import pytest

import nas.fit
from nas.search.followups import estimate_seconds, reference_models, run_baselines, timed_estimate
from nas.search.plan import SearchPlan
from nas.search.starts import Starts
from nas.search.starts import resolve as resolve_starts
from nas.space import load_space


def test_the_estimate_is_a_fixed_cost_plus_a_cost_per_mac_fitted_to_the_trials():
    # seconds = 5 + 0.3 per million MACs over four sizes: the fit recovers it, and extrapolates linearly
    trials = [(m * 1e6, 5 + 0.3 * m) for m in (1, 4, 9, 16)]
    assert estimate_seconds(trials, 100e6) == pytest.approx(35.0)
    # the quick start's trials (2-49 M MACs, 5-22 s) put ResNet-18 (456 M MACs) near its real ~2 minutes,
    # not at the 31 s a power law fitted to them gave
    quick = [(2.3e6, 9), (3.9e6, 7), (15.7e6, 14), (2.1e6, 9), (29.5e6, 12), (10.9e6, 8), (3.0e6, 5),
             (32.3e6, 15), (5.5e6, 6), (49.4e6, 22)]  # fmt: skip
    assert 90 < estimate_seconds(quick, 456e6) < 200
    # bigger trials that happened to be faster (noise): no negative cost per MAC, the mean time
    assert estimate_seconds([(1e6, 4.0), (2e6, 2.0)], 50e6) == pytest.approx(3.0)
    # one size only: proportional to MACs from the median trial, never below its time
    assert estimate_seconds([(1e6, 3.0)], 20e6) == pytest.approx(60.0)
    assert estimate_seconds([(1e6, 3.0), (1e6, 5.0)], 1e3) == pytest.approx(5.0)
    assert estimate_seconds([], 1e6) is None


def _study_with_trials(seconds: float, scale: float) -> optuna.Study:
    """Four trials of scale x (1, 5, 20, 80) MACs taking seconds x (1, 2, 3, 4)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, m in enumerate((scale, 5 * scale, 20 * scale, 80 * scale)):
        trial = optuna.trial.create_trial(
            values=[0.5, 1.0], user_attrs={"macs": m, "train_time_s": seconds * (i + 1), "accuracy": 0.5}
        )
        study.add_trial(trial)
    return study


# The baselines have 0.6 M (lenet5) and 7.5 M MACs (simple_cnn) at 32 px: trials 1,000x smaller leave them
# no room in a third of the search's time; trials of their size taking 1,000 s each leave room for both.
@pytest.mark.parametrize(
    ("scale", "trained"), [(1e2, []), (1e5, ["lenet5", "simple_cnn"])], ids=["tiny trials", "big trials"]
)
def test_baselines_that_would_not_fit_the_share_are_skipped_before_training(
    search_cfg, tmp_path, monkeypatch, scale, trained
):
    fits: list[str] = []
    real = nas.fit.fit
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]) or real(cfg, **kw))
    plan = SearchPlan.from_cfg(
        search_cfg(
            "baselines.enabled=true",
            "baselines.models=[simple_cnn,lenet5]",
            "baselines.max_share=0.33",
            "data.image_size=32",
        )  # fmt: skip
    )
    recs = run_baselines(plan, _study_with_trials(1000.0, scale), tmp_path, notify=lambda _: None)
    by_name = {r["name"]: r for r in recs}
    assert set(by_name) == {"simple_cnn", "lenet5"}
    assert sorted(n for n, r in by_name.items() if "skipped" not in r) == trained
    assert len(fits) == len(trained)
    for r in recs:
        if "skipped" in r:
            assert "baselines.max_share 0.33" in r["skipped"] and "s to train" in r["skipped"]
    # cheapest first
    macs = [r["macs"] for r in recs]
    assert macs == sorted(macs)


def test_a_share_outside_0_1_is_refused_before_compute(search_cfg):
    for bad in ("1.5", "0", "abc"):
        with pytest.raises(ValueError, match="baselines.max_share"):
            SearchPlan.from_cfg(search_cfg(f"baselines.max_share={bad}"))


@pytest.mark.parametrize(
    ("space", "baselines", "trials"),
    [
        ("inception_like", {"googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"}, set()),
        (
            "resnet_like",
            {"resnet18", "resnet34", "resnet50", "preact_resnet18"},
            {"resnet8", "resnet14", "resnet20"},
        ),
        (
            "separable_like",
            {"mobilenet_v1", "mobilenet_v2", "xception"},
            {"mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v2_035", "mobilenet_v2_050"},
        ),
    ],
)
def test_each_space_is_compared_with_the_reference_networks_of_its_family(space, baselines, trials):
    # A space's `family` list picks its baselines from conf/model/ by each model's `family` field: a new
    # reference network (Inception v4, Inception-ResNet v2) joins its family's searches without a list. The
    # family's networks the space holds start a new study as trials instead (nas.search.starts), and
    # run_baselines leaves out whatever the study started from.
    sp = load_space(space)
    family = {name for name, _ in reference_models(list(sp.family))}
    started = {name for name, _ in resolve_starts(Starts(), sp)}
    assert started == trials and trials <= family
    assert baselines <= family - started, sorted(family - started)


def test_the_timed_estimate_scales_the_median_trial_by_the_ratio_of_timed_training_steps(search_cfg):
    # The MAC-based fit read preact_resnet18's 150 s as 43 s; one timed step of each network does not
    # extrapolate: the same network as the median trial is estimated at about its time, a 20x wider one above.
    plan = SearchPlan.from_cfg(search_cfg("data.batch_size=64"))
    small = plan.space.compile({"act": "relu", "width_0": 4, "width_1": 4, "pool": "avg"})
    big = {**small, "stages": [{**st, "channels": 160} for st in small["stages"]]}
    study = optuna.create_study(directions=["maximize", "minimize"])
    for seconds in (5.0, 10.0, 100.0):
        study.add_trial(optuna.trial.create_trial(
            values=[0.5, 1.0], user_attrs={"macs": 1, "train_time_s": seconds, "spec": small}))  # fmt: skip
    assert 10.0 / 2 < timed_estimate(plan, study, small) < 10.0 * 2
    assert timed_estimate(plan, study, big) > 10.0 * 3
    assert timed_estimate(plan, optuna.create_study(directions=["maximize", "minimize"]), small) is None
