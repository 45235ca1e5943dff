"""The statistics against hand-computed values (closed forms for 2 degrees of freedom)."""

import math

import pytest
from scipy import stats as st

from experiments.stats import paired, summarize, t_quantile

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
    assert same.p == 1.0 and same.delta.mean == 0.0 and same.delta.half == 0.0
    shift = paired({0: 0.25, 1: 0.5}, {0: 0.5, 1: 0.75})  # every difference exactly +0.25 (binary-exact)
    assert shift.p == 0.0 and shift.delta.mean == 0.25 and shift.t == math.inf


def test_bad_confidence_is_a_clear_error():
    with pytest.raises(ValueError, match="confidence"):
        t_quantile(95, 3)
    with pytest.raises(ValueError, match="degree"):
        t_quantile(0.95, 0)
