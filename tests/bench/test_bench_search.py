"""The search benchmark's scoring: the two reference boxes and the normalised hypervolume."""

from __future__ import annotations

import pytest

from experiments.bench.search import normalised_hv, parse, reference_boxes


def rec(acc: float, lat: float) -> dict:
    return {"accuracy": acc, "latency": lat}


TRIALS = [rec(0.5, 1.0), rec(0.7, 2.0), rec(0.8, 4.0), rec(0.6, 3.0), rec(0.2, 10.0)]
UNION = [rec(0.5, 1.0), rec(0.7, 2.0), rec(0.8, 4.0)]


def test_wide_box_spans_accuracy_0_to_1_and_the_slowest_trial_plus_10_percent():
    box = reference_boxes(TRIALS, UNION)["wide"]
    assert box == {"acc": 0.0, "lat": pytest.approx(11.0), "acc_best": 1.0, "lat_best": 0.0}
    # one point: accuracy x the share of the latency range it beats
    assert normalised_hv([rec(0.5, 1.0)], box) == pytest.approx(0.5 * 10.0 / 11.0)


def test_nadir_box_is_the_union_fronts_range_pushed_out_by_a_tenth():
    box = reference_boxes(TRIALS, UNION)["nadir"]
    assert box["acc"] == pytest.approx(0.5 - 0.03) and box["lat"] == pytest.approx(4.0 + 0.3)
    assert (box["acc_best"], box["lat_best"]) == (0.8, 1.0)
    full = normalised_hv(UNION, box)
    part = normalised_hv(UNION[:2], box)
    assert 0 < part < full < 1
    # the union's extreme points still count (the margin), a point outside the box does not
    assert normalised_hv([rec(0.5, 1.0)], box) > 0
    assert normalised_hv([rec(0.4, 0.5)], box) == 0


def test_a_one_point_union_has_nothing_contested():
    boxes = reference_boxes([rec(0.5, 1.0)], [rec(0.5, 1.0)])
    assert normalised_hv([rec(0.5, 1.0)], boxes["nadir"]) == 0.0


def test_bad_budget_is_refused_before_any_training():
    with pytest.raises(SystemExit):
        parse(["--trials", "1"])


def test_trade_off_counts_each_architecture_once():
    from experiments.bench.search import trade_off

    recs = [
        {"spec": {"w": w}, "accuracy": acc, "latency": lat}
        for w, acc, lat in [(1, 0.5, 1.0), (2, 0.6, 2.0), (3, 0.7, 3.0), (3, 0.7, 3.0), (3, 0.7, 3.0)]
    ]
    assert trade_off(recs) == {"n": 3, "rho": pytest.approx(1.0)}
    recs[0]["accuracy"] = 0.9  # the fastest is now the most accurate: no trade-off
    assert trade_off(recs)["rho"] == pytest.approx(-0.5)
