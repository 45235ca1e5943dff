"""nas.stats against hand-computed values (closed forms for 2 degrees of freedom) and against scipy; no spread
(equal values or equal paired differences) is undefined, never significant."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from nas.stats import bootstrap_ci, fdr_q_values, kendall, paired, spearman, summarize, t_quantile

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


# ------------------------------------------------------------------ false-discovery-rate control

P = [0.01, 0.04, 0.03, 0.005, 0.2]
# By hand: sorted 0.005, 0.01, 0.03, 0.04, 0.2; p * 5 / rank = 0.025, 0.025, 0.05, 0.05, 0.2, then the running
# minimum from the largest down; back in input order:
Q = [0.025, 0.05, 0.05, 0.025, 0.2]


def test_q_values_match_scipy_and_the_hand_computed_adjustment():
    assert fdr_q_values(P) == pytest.approx(Q)
    assert fdr_q_values(P) == pytest.approx(list(st.false_discovery_control(P, method="bh")))


def test_an_undefined_p_value_is_no_test_and_stays_undefined():
    q = fdr_q_values([0.01, math.nan, 0.04])
    assert math.isnan(q[1])
    assert [q[0], q[2]] == pytest.approx(list(st.false_discovery_control([0.01, 0.04])))  # a family of 2
    assert fdr_q_values([]) == [] and all(math.isnan(v) for v in fdr_q_values([math.nan]))


# ---------------------------------------------------------- rank correlation and its bootstrap interval


def test_spearman_uses_mid_ranks_for_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # mid-ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson's r of the ranks
    assert spearman([0, 1, 1, 2], [0, 1, 2, 3]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_kendall_counts_concordant_pairs_with_ties_corrected():
    assert kendall([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx((5 - 1) / 6)  # one discordant pair of 6
    # tau-b: (concordant - discordant) / sqrt((pairs - tied in a) (pairs - tied in b)) = 5 / sqrt(5 * 6)
    assert kendall([0, 1, 1, 2], [0, 1, 2, 3]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))


def test_the_bootstrap_interval_brackets_rho_and_narrows_with_more_architectures():
    a = [0.1, 0.3, 0.2, 0.5, 0.4, 0.7, 0.6, 0.9, 0.8, 1.0]
    b = list(range(10))
    lo, hi = bootstrap_ci(spearman, a, b, n_resamples=500)
    assert lo <= spearman(a, b) <= hi <= 1.0 and lo > 0.5
    wide = bootstrap_ci(spearman, a[:5], b[:5], n_resamples=500)
    assert wide[1] - wide[0] > hi - lo
    assert bootstrap_ci(spearman, [1, 2, 3, 4], [4, 3, 2, 1], n_resamples=200) == (-1.0, -1.0)
    assert bootstrap_ci(spearman, a, b, n_resamples=200, seed=3) == bootstrap_ci(
        spearman, a, b, n_resamples=200, seed=3
    )


def test_the_bootstrap_interval_is_scipys_bca_interval():
    rng = np.random.default_rng(0)
    a = np.round(rng.uniform(0.8, 0.92, 12), 4)  # twelve architectures, test accuracies on the 1/10,000 grid
    b = np.round(a + rng.normal(0, 0.01, 12), 4)
    ref = st.bootstrap(
        (a, b), spearman, paired=True, vectorized=False, n_resamples=1000, method="BCa",
        random_state=np.random.default_rng(7),
    ).confidence_interval  # fmt: skip
    assert bootstrap_ci(spearman, a, b, n_resamples=1000, seed=7) == pytest.approx(
        (ref.low, ref.high), rel=1e-12
    )


def test_resamples_where_rho_is_undefined_are_left_out_not_the_whole_interval():
    # Four architectures: about one resample in 64 draws a single one four times (rho undefined), which makes
    # scipy's own BCa interval NaN.
    a, b = [0.81, 0.84, 0.83, 0.88], [0.85, 0.86, 0.88, 0.9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy >= 1.12 warns (DegenerateDataWarning); 1.11, the floor, does not
        ref = st.bootstrap((a, b), spearman, paired=True, vectorized=False, n_resamples=500, method="BCa",
                           random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
    assert math.isnan(ref.low)
    lo, hi = bootstrap_ci(spearman, a, b, n_resamples=500)
    assert -1.0 <= lo < spearman(a, b) <= hi <= 1.0


def test_where_bca_is_undefined_the_interval_is_the_percentile_one():
    # Three networks at chance tie: leaving out the fourth leaves one side constant, so BCa's acceleration
    # (from the leave-one-out values) is undefined; the percentile interval of the same resamples stands.
    a, b = [0.1, 0.1, 0.1, 0.5], [0.2, 0.3, 0.1, 0.9]
    lo, hi = bootstrap_ci(spearman, a, b, n_resamples=300)
    assert math.isfinite(lo) and lo <= spearman(a, b) <= hi <= 1.0
