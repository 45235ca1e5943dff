"""The statistics against hand-computed values (closed forms for 2 degrees of freedom) and against scipy;
no spread (equal values or equal paired differences) is undefined, never significant."""

import math

import numpy as np
import pytest
from scipy import stats as st

from experiments.ablation.report import markdown, table_rows
from experiments.ablation.stats import paired, summarize, t_quantile
from experiments.ablation.suite import sign_agreement, suite_markdown, suite_rows

BASE = {0: 0.80, 1: 0.82, 2: 0.81}
VAR = {0: 0.83, 1: 0.84, 2: 0.82}


def test_t_quantile_matches_closed_form_for_two_degrees_of_freedom():
    # For df = 2 the t quantile has a closed form: t_u = (2u - 1) / sqrt(2 u (1 - u)); u = 0.975 -> 4.302653
    u = 0.975
    assert t_quantile(0.95, 2) == pytest.approx((2 * u - 1) / math.sqrt(2 * u * (1 - u)), rel=1e-9)
    assert t_quantile(0.95, 2) == pytest.approx(4.302653, abs=1e-6)
    assert t_quantile(0.95, 1000) == pytest.approx(1.962, abs=1e-3)  # tends to z


def test_summary_mean_sd_and_t_interval_by_hand():
    s = summarize([0.80, 0.82, 0.81])
    # mean 0.81; deviations -0.01, 0.01, 0 -> sd = sqrt(0.0002 / 2) = 0.01; half = 4.302653 * 0.01 / sqrt(3)
    assert s.n == 3
    assert s.mean == pytest.approx(0.81)
    assert s.sd == pytest.approx(0.01)
    assert s.half == pytest.approx(0.0248414, abs=1e-6)
    assert (s.low, s.high) == pytest.approx((0.81 - 0.0248414, 0.81 + 0.0248414), abs=1e-6)


def test_paired_t_test_worked_example():
    r = paired(BASE, VAR)
    # d = (0.03, 0.02, 0.01): mean 0.02, sd 0.01, se 0.01/sqrt(3), t = 2 sqrt(3) = 3.4641016
    assert r.n == 3 and r.seeds == (0, 1, 2)
    assert r.delta.mean == pytest.approx(0.02)
    assert r.t == pytest.approx(2 * math.sqrt(3))
    # df = 2: two-sided p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12/14) = 0.0741799
    assert r.p == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-9)
    assert r.p == pytest.approx(0.0741799, abs=1e-7)
    assert r.delta.half == pytest.approx(0.0248414, abs=1e-6)
    # and it is the textbook paired test
    ref = st.ttest_rel([VAR[k] for k in range(3)], [BASE[k] for k in range(3)])
    assert r.p == pytest.approx(ref.pvalue) and r.t == pytest.approx(ref.statistic)


def test_paired_uses_only_seeds_both_arms_have():
    r = paired({0: 0.5, 1: 0.6, 2: 0.7, 5: 0.1}, {1: 0.65, 2: 0.72, 0: 0.5, 7: 0.9})
    assert r.seeds == (0, 1, 2)
    assert r.delta.mean == pytest.approx((0.0 + 0.05 + 0.02) / 3)


def test_degenerate_cases():
    one = summarize([0.9])
    assert one.n == 1 and one.mean == 0.9 and math.isnan(one.half)
    assert math.isnan(summarize([]).mean)
    single = paired({0: 0.5}, {0: 0.6})
    assert single.n == 1 and math.isnan(single.p)
    same = paired({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})
    assert same.delta.mean == 0.0 and math.isnan(same.p) and math.isnan(same.delta.half) and same.note


def test_bad_confidence_is_a_clear_error():
    with pytest.raises(ValueError, match="confidence"):
        t_quantile(95, 3)
    with pytest.raises(ValueError, match="degree"):
        t_quantile(0.95, 0)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_paired_test_and_intervals_match_scipy(n, confidence):
    rng = np.random.default_rng(100 * n + int(100 * confidence))
    base = np.round(rng.uniform(0.7, 0.9, n), 4)  # on the 1/10,000 grid, like test accuracies
    var = np.round(base + rng.normal(0.005, 0.01, n), 4)
    r = paired(dict(enumerate(base)), dict(enumerate(var)), confidence)
    ref = st.ttest_rel(var, base)
    assert r.t == pytest.approx(ref.statistic, rel=1e-9) and r.p == pytest.approx(ref.pvalue, rel=1e-9)
    d = var - base
    low, high = st.t.interval(confidence, n - 1, loc=d.mean(), scale=st.sem(d))
    assert (r.delta.low, r.delta.high) == pytest.approx((low, high), rel=1e-9)
    s = summarize(list(var), confidence)
    assert (s.low, s.high) == pytest.approx(
        st.t.interval(confidence, n - 1, loc=var.mean(), scale=st.sem(var))
    )
    assert s.sd == pytest.approx(np.std(var, ddof=1))


@pytest.mark.parametrize(
    ("base", "var"),
    [
        ({0: 0.8000, 1: 0.8100}, {0: 0.8300, 1: 0.8400}),  # +0.03 twice (not bit-equal in binary)
        ({0: 0.8123, 1: 0.7977, 2: 0.8051}, {0: 0.8124, 1: 0.7978, 2: 0.8052}),  # +1/10,000 three times
        ({0: 0.25, 1: 0.5}, {0: 0.5, 1: 0.75}),  # bit-exact equal differences
        ({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}),  # no difference at all
    ],
)
def test_equal_paired_differences_are_undefined_not_certain(base, var):
    r = paired(base, var)
    assert math.isnan(r.t) and math.isnan(r.p), (r.t, r.p)
    assert math.isnan(r.delta.low) and math.isnan(r.delta.high)
    assert not r.significant and "undefined" in r.note
    assert r.delta.mean == pytest.approx(next(iter(var.values())) - next(iter(base.values())))


def test_equal_arm_values_give_no_interval():
    s = summarize([0.8123, 0.8123, 0.8123])
    assert s.mean == pytest.approx(0.8123) and math.isnan(s.half) and "no spread" in s.note


def arm(label, values, key):
    return {"label": label, "key": key, "overrides": [label], "values": list(values.items()),
            "params": 1, "macs": 1, "meta": {"paper_delta": 0.01, "paper_axis": "a", "paper_variant": label}}  # fmt: skip


def test_a_row_with_equal_differences_is_never_significant_and_says_why():
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.80, 1: 0.81}, "k0"),
        "variants": [arm("baseline", {0: 0.80, 1: 0.81}, "k0"), arm("v", {0: 0.83, 1: 0.84}, "k1")],
    }  # fmt: skip
    (row,) = [r for r in table_rows(result) if r["arm"] == "v"]
    assert math.isnan(row["p_value"]) and math.isnan(row["delta_ci_low"]) and "undefined" in row["note"]
    assert row["delta"] == pytest.approx(0.03)
    (srow,) = [r for r in suite_rows(result) if r["arm"] == "v"]
    assert srow["significant"] is False and srow["signs_agree"] == "yes"
    text = markdown(table_rows(result), metric="test/acc", confidence=0.95)
    assert "- v: all 2 paired differences are equal (+3.00 pp)" in text


def test_a_delta_of_exactly_zero_is_neither_agreement_nor_disagreement():
    assert sign_agreement(0.01, 0.0) == sign_agreement(-0.01, 0.0) == "ours 0"
    assert sign_agreement(0.0, 0.01) == "paper 0" and sign_agreement(0.01, 0.02) == "yes"
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.80, 1: 0.81}, "k0"),
        "variants": [
            arm("up", {0: 0.82, 1: 0.84}, "k1"),  # paper +1 pp, ours +2.5 pp: agree
            arm("flat", {0: 0.81, 1: 0.80}, "k2"),  # ours exactly 0 (mean of +1 and -1 pp)
        ],
    }  # fmt: skip
    rows = suite_rows(result)
    assert [r["signs_agree"] for r in rows] == ["yes", "ours 0"]
    assert "Signs agree in **1 of 1** rows where both deltas are non-zero" in suite_markdown(rows, result)


def test_a_delta_that_cancels_up_to_float_rounding_counts_as_zero():
    # +1 and -1 pp on the 1/10,000 accuracy grid: the mean of the paired differences is -5.6e-17, not 0.
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.81, 1: 0.81}, "k0"),
        "variants": [arm("flat", {0: 0.82, 1: 0.80}, "k1")],
    }  # fmt: skip
    rows = suite_rows(result)
    assert rows[0]["delta"] != 0 and abs(rows[0]["delta"]) < 1e-15  # the premise: float rounding
    assert [r["signs_agree"] for r in rows] == ["ours 0"]
