"""baselines.max_share: reference networks take at most a share of the search's training time, cheapest
first, estimated from the trials' own times before any of them trains."""

from __future__ import annotations

import math

import optuna
import pytest

import nas.fit
from nas.search.followups import estimate_seconds, run_baselines
from nas.search.plan import SearchPlan


def test_the_estimate_follows_the_trials_power_law_within_bounds():
    # seconds = 2 * (MACs / 1e6) ** 0.5 over four sizes: the fit recovers it
    trials = [(m * 1e6, 2 * m**0.5) for m in (1, 4, 9, 16)]
    assert estimate_seconds(trials, 100e6) == pytest.approx(20.0)
    # an exponent above 1 (noise) is capped: never worse than linear in MACs
    steep = [(m * 1e6, m**2) for m in (1, 2, 3, 4)]
    linear = (
        math.exp(sum(math.log(s) for _, s in steep) / 4)
        * 10
        / math.exp(sum(math.log(m) for m, _ in steep) / 4 - math.log(1e6))
    )
    assert estimate_seconds(steep, 10e6) == pytest.approx(linear)
    # fewer than four sizes: proportional to MACs from the median trial, never below its time
    assert estimate_seconds([(1e6, 3.0), (2e6, 5.0)], 20e6) == pytest.approx(50.0)
    assert estimate_seconds([(1e6, 3.0), (2e6, 5.0)], 1e3) == pytest.approx(5.0)
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
