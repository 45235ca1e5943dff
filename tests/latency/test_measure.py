"""Measurement: inference settings, restored state, stopping rule, and that cost shows up in time."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import conv_spec
from torch import nn

from nas.latency import LatencyConfig, LatencyResult, measure_latency
from nas.latency.measure import ci_coverage, median_ci, sample_until_stable


class Probe(nn.Module):
    """Records the settings it runs under."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.seen: set[tuple] = set()

    def forward(self, x):
        self.seen.add((self.training, torch.is_inference_mode_enabled(), torch.get_num_threads(), x.shape[0]))
        return self.lin(x.mean(dim=(2, 3))[:, :4])


def test_runs_in_eval_inference_mode_with_fixed_threads_and_restores(fast_cfg):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        probe = Probe().train()
        result = measure_latency(probe, (4, 8, 8), {**fast_cfg, "threads": 1, "batch_size": 3})
        assert probe.seen == {(False, True, 1, 3)}
        assert probe.training  # training flag restored
        assert torch.get_num_threads() == 2  # thread count restored
    finally:
        torch.set_num_threads(before)
    assert isinstance(result, LatencyResult)
    assert result.batch_size == 3 and result.mode == "measured"
    assert fast_cfg["min_repeats"] <= result.repeats <= fast_cfg["max_repeats"]
    assert result.median_ms > 0 and result.iqr_ms >= 0
    assert result.device["threads"] == 1 and result.fingerprint
    assert result.per_image_ms == pytest.approx(result.median_ms / 3)
    assert set(result.record()) >= {"median_ms", "iqr_ms", "repeats", "batch_size", "fingerprint", "device"}


def test_spec_is_built_and_measured_at_its_input_shape(fast_cfg):
    result = measure_latency(conv_spec(8, input_size=12), None, fast_cfg)
    assert result.median_ms > 0


def test_module_needs_a_three_dim_input_shape(fast_cfg):
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(nn.Identity(), None, fast_cfg)
    with pytest.raises(ValueError, match=r"\(channels, height, width\)"):
        measure_latency(nn.Identity(), (1, 3, 8, 8), fast_cfg)


def test_time_cap_stops_an_unstable_measurement(fast_cfg):
    class Jittery(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            time.sleep(0.002 if self.calls % 2 else 0.004)  # never within 0.1 % of its median
            return x

    cfg = {**fast_cfg, "rel_ci": 0.001, "max_repeats": 1000, "max_time_s": 0.1, "min_sample_ms": 0.0}
    start = time.perf_counter()
    result = measure_latency(Jittery(), (1, 2, 2), cfg)
    assert time.perf_counter() - start < 1.0
    assert not result.stable
    assert cfg["min_repeats"] <= result.repeats < 100


def test_stopping_rule_stops_once_the_median_is_stable():
    cfg = LatencyConfig.from_cfg({"min_repeats": 6, "max_repeats": 50, "rel_ci": 0.05, "max_time_s": 60})
    steady = iter([1.0, 1.01, 0.99, 1.0, 1.02, 1.0] * 10)
    samples, rel, stable = sample_until_stable(lambda: [next(steady)], cfg)
    assert stable and len(samples) == 6 and rel <= 0.05
    # Parts of a sample (layers of a pass) are judged by their total.
    halves = iter([[0.5, 0.5], [0.1, 0.9]] * 10)
    samples, rel, stable = sample_until_stable(lambda: next(halves), cfg)
    assert stable and len(samples) == 6
    wild = iter([1.0, 3.0] * 100)
    samples, rel, stable = sample_until_stable(lambda: [next(wild)], cfg)
    assert not stable and len(samples) == 50 and rel > 0.05


def test_sub_millisecond_calls_are_timed_in_groups(fast_cfg):
    result = measure_latency(nn.Identity(), (1, 2, 2), {**fast_cfg, "min_sample_ms": 50.0})
    assert result.number > 1 and result.median_ms < 50.0


def test_median_ci_uses_order_statistics():
    med, lo, hi = median_ci([float(i) for i in range(1, 11)])
    assert (med, lo, hi) == (5.5, 2.0, 9.0)  # ranks 2 and 9 of 10: a 97.9 % interval
    med, lo, hi = median_ci([float(i) for i in range(1, 101)])
    assert (lo, hi) == (40.0, 61.0)


@pytest.mark.parametrize("n", range(3, 61))
def test_median_ci_covers_at_least_95_percent(n):
    """The exact coverage of the returned order statistics, 1 - 2 P(B < k), B ~ Binomial(n, 1/2), is >= 95 %
    for every n; below 6 samples no interval does, and it is infinite (the old normal-approximation ranks
    gave [x(1), x(3)] at n = 3: 75 %)."""
    from math import comb

    samples = [float(i) for i in range(1, n + 1)]
    _, lo, hi = median_ci(samples)
    if n < 6:
        assert (lo, hi) == (float("-inf"), float("inf"))
        return
    k = int(lo)  # samples are 1..n, so the value is the rank
    assert hi == n + 1 - k
    assert 1 - 2 * sum(comb(n, i) for i in range(k)) / 2**n >= 0.95
    assert ci_coverage(n) >= 0.95
    # ... and it is the narrowest such interval: one rank further in covers less than 95 %.
    assert 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n < 0.95


def test_stopping_rule_cannot_fire_before_six_samples():
    """Identical samples have a zero-width interval; with min_repeats=3 the old rule stopped after 3."""
    cfg = LatencyConfig.from_cfg({"min_repeats": 3, "max_repeats": 50, "rel_ci": 0.02, "max_time_s": 60})
    samples, rel, stable = sample_until_stable(lambda: [1.0], cfg)
    assert stable and len(samples) == 6 and rel == 0.0


def test_latency_grows_with_width(fast_cfg):
    """Widths 4, 32, 128 (MACs x64 then x16): the minimum over three interleaved rounds (load from other
    processes only ever adds time) must increase, the widest at least 3x the narrowest."""
    widths = (4, 32, 128)
    specs = {w: conv_spec(w, input_size=16) for w in widths}
    best = {w: float("inf") for w in widths}
    for _ in range(3):
        for w in widths:
            best[w] = min(best[w], measure_latency(specs[w], None, fast_cfg).median_ms)
    assert best[4] < best[32] < best[128]
    assert best[128] > 3 * best[4]
