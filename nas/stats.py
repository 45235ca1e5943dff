"""Statistics of the platform's comparisons: rank correlation with a bootstrap interval, the mean of a few seeds
with its t-interval, paired tests and the false-discovery-rate control of a table of them.

scipy does the statistics (`spearmanr`, `bootstrap` with BCa intervals, `t`, `ttest_rel`,
`false_discovery_control`); by hand is only what it lacks, each said where it is: resamples on which a rank
correlation is undefined, a bootstrap distribution of one value, and small samples with no spread.

Rank correlation. Spearman's rho judges whether a cheap measurement ranks architectures as an expensive one
does (a fidelity against a reference training, a latency predictor against measured latency). Its interval
resamples the architectures (pairs) with replacement and is bias-corrected and accelerated (BCa): it adjusts for
the bias and skew of a correlation's bootstrap distribution (large near +-1), which a percentile interval keeps.

Small samples. With 3-5 seeds per arm the normal approximation is badly optimistic (z = 1.96 vs t = 4.30 at
2 degrees of freedom), so every interval of a mean uses Student's t. Arms are compared *paired* by seed: seed
k gives both arms the same initial randomness and data order, so the per-seed differences cancel much of the
seed-to-seed variance that an unpaired comparison would carry.

No spread is not certainty. Accuracies lie on a grid (1/10,000 for a 10,000-image test set), so two or three
seeds can give exactly equal values, or exactly equal paired differences, by chance. The sample variance is
then 0, which would make a zero-width interval, t = inf and p = 0: a "significant" result from one number
repeated. Such a case is reported as undefined (no interval, no t, no p-value) with a note saying why.

Many rows, many chances. A suite of 71 comparisons at p < 0.05 expects about 3.5 "significant" rows from noise
alone, so a table's p-values are adjusted together (Benjamini-Hochberg: the expected share of false discoveries
among the rows called significant stays below the level) and a row is significant when its q-value is below
1 - confidence.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

# Values this close count as equal: a - b of two grid values is exact only up to float rounding
# (0.84 - 0.81 != 0.83 - 0.80 in binary), so an exact test for "no spread" would miss most real cases.
EQUAL_RTOL = 1e-9


# ------------------------------------------------------------------------------------ rank correlation


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's on mid-ranks), by `scipy.stats.spearmanr`; NaN when either side
    is constant (it ranks nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _st.ConstantInputWarning)  # the NaN says it
        return float(_st.spearmanr(a, b).statistic)


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (the share of concordant minus discordant pairs, ties corrected), by
    `scipy.stats.kendalltau`; NaN when either side is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant side: the NaN says it
        return float(_st.kendalltau(a, b).statistic)


def bootstrap_ci(
    statistic: Callable[..., float],
    *samples: Sequence[float],
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """BCa bootstrap interval of `statistic(*samples)`, resampling the samples' rows together (paired: the
    architectures of a rank correlation), by `scipy.stats.bootstrap`.

    By hand, what scipy lacks: resamples on which the statistic is undefined (NaN: Spearman's rho of a resample
    whose one side is constant, likely with few rows) are left out of the distribution instead of making the
    interval NaN, and a distribution of one value (every resample ranks alike) is that value, where BCa divides
    by zero. Where BCa is still undefined (its acceleration needs the statistic of every leave-one-out sample:
    a few rows with ties, e.g. networks at chance, may have none) the interval is the percentile interval of the
    same resamples. NaN when no resample is defined.
    """
    data = tuple(np.asarray(s, dtype=float) for s in samples)
    kw: dict[str, Any] = {"paired": True, "vectorized": False, "confidence_level": confidence}
    with warnings.catch_warnings():
        # This pass only draws the distribution; its interval, NaN with an undefined resample, is not used.
        warnings.simplefilter("ignore")
        # random_state, not rng: scipy 1.11 (the floor) has no rng
        first = _st.bootstrap(
            data, statistic, n_resamples=n_resamples, method="percentile",
            random_state=np.random.default_rng(seed), **kw,
        )  # fmt: skip
    dist = first.bootstrap_distribution
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return math.nan, math.nan
    if np.ptp(dist) == 0:
        return float(dist[0]), float(dist[0])
    first.bootstrap_distribution = dist
    for method in ("BCa", "percentile"):
        # the interval of the defined resamples: scipy's documented way to reuse a distribution (no new draws)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _st.DegenerateDataWarning)  # an undefined BCa: the percentile one
            warnings.simplefilter("ignore", RuntimeWarning)  # its 0 / 0 on the way
            ci = _st.bootstrap(
                data, statistic, n_resamples=0, method=method, bootstrap_result=first, **kw
            ).confidence_interval
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            break
    return float(ci.low), float(ci.high)


# ----------------------------------------------------------------------- small samples: means and pairs


@dataclass(frozen=True)
class Summary:
    """Mean of `n` values with the half-width of its t confidence interval (`low`, `high` = mean -+ half)."""

    n: int
    mean: float
    sd: float  # sample standard deviation (ddof 1); nan for n < 2
    half: float  # CI half-width; nan for n < 2 and when every value is the same (no spread)
    confidence: float
    note: str = ""  # why the interval is undefined, when it is

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Paired:
    """Paired comparison variant - baseline over the `n` seeds both arms have."""

    n: int
    delta: Summary  # mean difference and its t-interval
    t: float  # t statistic (nan for n < 2 and when every difference is the same: no spread)
    p: float  # two-sided p-value of the paired t-test (nan whenever t is)
    seeds: tuple[int, ...]
    note: str = ""  # why t and p are undefined, when they are

    @property
    def significant(self) -> bool:
        """Whether the interval of the mean difference excludes 0 (never when it is undefined). One comparison
        alone: a table of several judges its rows by their FDR-adjusted q-values (`fdr_q_values`)."""
        low, high = self.delta.low, self.delta.high
        return math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "delta": self.delta.to_dict(),
            "t": self.t,
            "p": self.p,
            "seeds": list(self.seeds),
            "note": self.note,
        }


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided critical value of Student's t: P(|T_df| <= q) = confidence."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if df < 1:
        raise ValueError(f"a t quantile needs at least 1 degree of freedom (2 values), got {df}")
    return float(_st.t.ppf(0.5 + confidence / 2, df))


def no_spread(values: Sequence[float]) -> bool:
    """Whether all `values` are equal up to float rounding (relative tolerance EQUAL_RTOL)."""
    return max(values) - min(values) <= EQUAL_RTOL * max(1.0, max(abs(v) for v in values))


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample SD and t confidence interval of `values` (NaN interval for fewer than 2, or no spread)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, confidence)
    mean = math.fsum(xs) / n
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, confidence)
    if no_spread(xs):
        note = f"all {n} values are equal: no spread, so no confidence interval (run more seeds)"
        return Summary(n, mean, 0.0, math.nan, confidence, note)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, half, confidence)


def paired(baseline: Mapping[int, float], variant: Mapping[int, float], confidence: float = 0.95) -> Paired:
    """Paired t comparison of two arms given as {seed: value}; only seeds present in both arms count.

    The test is `scipy.stats.ttest_rel` (variant against baseline, n - 1 degrees of freedom). By hand: identical
    differences (sd 0, all zero or not) leave t, p and the interval undefined, with a note.
    """
    seeds = tuple(sorted(set(baseline) & set(variant)))
    diffs = [float(variant[s]) - float(baseline[s]) for s in seeds]
    delta = summarize(diffs, confidence)
    n = len(diffs)
    if n < 2:
        return Paired(n, delta, math.nan, math.nan, seeds)
    if delta.note:  # no spread in the differences
        note = (
            f"all {n} paired differences are equal ({100 * delta.mean:+.2f} pp): with zero sample variance the "
            "t-test is undefined (no p-value, no interval), not certain; run more seeds"
        )
        return Paired(n, delta, math.nan, math.nan, seeds, note)
    test = _st.ttest_rel([float(variant[s]) for s in seeds], [float(baseline[s]) for s in seeds])
    return Paired(n, delta, float(test.statistic), float(test.pvalue), seeds)


def fdr_q_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values (FDR-adjusted p-values) of one family of tests, by scipy's
    `false_discovery_control`. An undefined p-value (NaN: no spread, too few seeds) stays NaN and is not a
    member of the family: it is no test."""
    ps = [float(p) for p in p_values]
    tested = [i for i, p in enumerate(ps) if math.isfinite(p)]
    out = [math.nan] * len(ps)
    if tested:
        qs = _st.false_discovery_control([ps[i] for i in tested], method="bh")
        for i, q in zip(tested, qs, strict=True):
            out[i] = float(q)
    return out
