"""Measured inference latency: eval + inference mode, fixed threads, warm-up, repeats until stable."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from nas.latency.config import LatencyConfig
from nas.latency.fingerprint import Fingerprint, device_fingerprint
from nas.latency.runtimes import prepare
from nas.timing_lock import quiet_machine


@dataclass(frozen=True)
class LatencyResult:
    """One latency figure (milliseconds per call of `batch_size` images) and how it was obtained."""

    median_ms: float
    iqr_ms: float
    repeats: int  # timed samples (each `number` calls)
    batch_size: int
    fingerprint: str  # Fingerprint.key of the device
    device: dict[str, Any]  # Fingerprint.info
    mode: str = "measured"  # "measured" or "predicted"
    rel_ci: float = float("nan")  # half-width of the 95 % CI of the median / median
    stable: bool = False  # whether rel_ci reached the target before a cap
    number: int = 1  # calls per sample
    samples_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def per_image_ms(self) -> float:
        return self.median_ms / self.batch_size

    def record(self) -> dict[str, Any]:
        """Plain, JSON-friendly fields for logs and trial attributes (no raw samples)."""
        out = asdict(self)
        out.pop("samples_ms")
        return out


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, restoring the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_ci(sorted_samples: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the median and its exact distribution-free CI from order statistics.

    [x(k), x(n+1-k)] covers the median with probability 1 - 2 P(B <= k - 1), B ~ Binomial(n, 1/2); k is
    the largest rank whose coverage is still >= `level`. Below 6 samples no pair of order statistics
    covers 95 % (n = 5: [x(1), x(5)] covers 93.75 %), and the interval is (-inf, inf), so a stopping rule
    on its width cannot fire that early: e.g. [x(2), x(9)] for n = 10 (97.9 %).
    """
    n = len(sorted_samples)
    med = _quantile(sorted_samples, 0.5)
    k = _ci_rank(n, level)
    if k == 0:
        return med, -math.inf, math.inf
    return med, sorted_samples[k - 1], sorted_samples[n - k]


@functools.lru_cache(maxsize=1024)
def _ci_rank(n: int, level: float) -> int:
    """The largest 1-based rank k <= n / 2 with P(x(k) <= median <= x(n+1-k)) >= level; 0 if none."""
    best, tail = 0, 0.0  # tail = P(B <= k - 1)
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n
        if 1 - 2 * tail < level:
            break
        best = k
    return best


def ci_coverage(n: int, level: float = 0.95) -> float:
    """The exact coverage of `median_ci`'s interval for n samples (1.0 for the infinite interval)."""
    k = _ci_rank(n, level)
    return 1.0 if k == 0 else 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def _quantile(sorted_samples: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_samples) - 1)
    i = math.floor(pos)
    j = min(i + 1, len(sorted_samples) - 1)
    return sorted_samples[i] + (sorted_samples[j] - sorted_samples[i]) * (pos - i)


def _timer(device: torch.device) -> Callable[[Callable[[], Any], int], float]:
    """A function timing `number` back-to-back calls, returning milliseconds per call."""
    if device.type == "cuda":

        def time_cuda(fn: Callable[[], Any], number: int) -> float:
            # Events time the GPU work; synchronising first keeps earlier work out of the sample.
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / number

        return time_cuda

    def time_cpu(fn: Callable[[], Any], number: int) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        return (time.perf_counter_ns() - t0) / 1e6 / number

    return time_cpu


def _chain_timer(
    modules: Sequence[Callable[[Any], Any]], x: Any, device: torch.device
) -> Callable[[], list[float]]:
    """A function running `modules` (prepared calls) in sequence on `x` once, returning each one's ms."""
    if device.type == "cuda":
        events = [torch.cuda.Event(enable_timing=True) for _ in range(len(modules) + 1)]

        def pass_cuda() -> list[float]:
            torch.cuda.synchronize(device)
            y = x
            events[0].record()
            for m, ev in zip(modules, events[1:], strict=True):
                y = m(y)
                ev.record()
            events[-1].synchronize()
            return [a.elapsed_time(b) for a, b in zip(events, events[1:], strict=False)]

        return pass_cuda

    def pass_cpu() -> list[float]:
        out = []
        y = x
        for m in modules:
            t0 = time.perf_counter_ns()
            y = m(y)
            out.append((time.perf_counter_ns() - t0) / 1e6)
        return out

    return pass_cpu


def _warm_up(call: Callable[[], Any], cfg: LatencyConfig) -> Any:
    """At least one untimed call, `warmup` calls and `warmup_s` seconds of them; returns the last result."""
    t_end = time.perf_counter() + cfg.warmup_s
    last, calls = call(), 1
    while calls < cfg.warmup or time.perf_counter() < t_end:
        last, calls = call(), calls + 1
    return last


def sample_until_stable(
    sample: Callable[[], list[float]], cfg: LatencyConfig
) -> tuple[list[list[float]], float, bool]:
    """Take samples (each a list of part times, ms) until the median of their totals is stable or a cap hits.

    Returns (samples, relative half-width of the median's 95 % CI, whether it reached `cfg.rel_ci`).
    """
    samples: list[list[float]] = []
    deadline = time.perf_counter() + cfg.max_time_s
    rel, stable = float("inf"), False
    while len(samples) < cfg.max_repeats:
        samples.append(sample())
        if len(samples) >= cfg.min_repeats:
            med, lo, hi = median_ci(sorted(sum(s) for s in samples))
            rel = (hi - lo) / (2 * med) if med > 0 else (0.0 if hi == lo else math.inf)
            if rel <= cfg.rel_ci:
                stable = True
                break
            if time.perf_counter() >= deadline:
                break
    return samples, rel, stable


def time_call(fn: Callable[[], Any], cfg: LatencyConfig) -> tuple[list[float], int, float, bool]:
    """Time `fn` per `cfg`'s stopping rule; returns (samples in ms, calls per sample, rel CI, stable)."""
    timer = _timer(cfg.torch_device)
    with quiet_machine():  # no other worker of this search trains meanwhile (nas.timing_lock)
        last = _warm_up(lambda: timer(fn, 1), cfg)
        number = math.ceil(cfg.min_sample_ms / max(last, 1e-6)) if last < cfg.min_sample_ms else 1
        samples, rel, stable = sample_until_stable(lambda: [timer(fn, number)], cfg)
    return [s[0] for s in samples], number, rel, stable


def _as_model(model_or_spec: nn.Module | Mapping[str, Any]) -> nn.Module:
    if isinstance(model_or_spec, nn.Module):
        return model_or_spec
    if isinstance(model_or_spec, Mapping):
        from blocks import build_model

        return build_model(dict(model_or_spec))
    raise ValueError(
        f"measure_latency takes an nn.Module or a model spec dict, got {type(model_or_spec).__name__}"
    )


def input_shape_of(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """(channels, height, width) of a spec's input."""
    size = int(spec.get("input_size", 32))
    return int(spec.get("in_channels", 3)), size, size


def measure_latency(
    model_or_spec: nn.Module | Mapping[str, Any],
    input_shape: Sequence[int] | None = None,
    device_cfg: Mapping[str, Any] | LatencyConfig | None = None,
) -> LatencyResult:
    """Measure the inference latency of a model (or a spec, built here) on `device_cfg`'s device.

    `input_shape` is (channels, height, width) of one image; for a spec it defaults to the spec's input.
    The batch holds `device_cfg.batch_size` images. The model runs in eval mode in the configured runtime
    (`nas.latency.runtimes`; eager under `torch.inference_mode`) with the configured thread count; its
    training flag, device and the process' thread count are restored afterwards. A network the runtime
    cannot export raises `ExportError` naming the layer.
    """
    cfg = LatencyConfig.from_cfg(device_cfg)
    if input_shape is None:
        if not isinstance(model_or_spec, Mapping):
            raise ValueError("measure_latency needs input_shape=(channels, height, width) for an nn.Module")
        input_shape = input_shape_of(model_or_spec)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
    fp = device_fingerprint(cfg)
    model = _as_model(model_or_spec)
    was_training = model.training
    param = next(iter(model.parameters()), None)
    home = param.device if param is not None else torch.device("cpu")
    device = cfg.torch_device
    try:
        model.eval().to(device)  # outside inference mode: parameters must stay usable for training
        with fixed_threads(cfg.threads):
            x = torch.randn(cfg.batch_size, *map(int, input_shape), device=device)
            # Prepared outside inference mode: tracing and export need ordinary tensors.
            prepared = prepare(model, x, cfg.runtime, cfg.threads)
            native = prepared.to_native(x)
            with torch.inference_mode():
                samples, number, rel, stable = time_call(lambda: prepared.fn(native), cfg)
    finally:
        model.train(was_training)
        if device != home:
            model.to(home)
    return _result(samples, cfg, fp, rel, stable, number)


def _result(
    samples: list[float], cfg: LatencyConfig, fp: Fingerprint, rel: float, stable: bool, number: int
) -> LatencyResult:
    ordered = sorted(samples)
    return LatencyResult(
        median_ms=_quantile(ordered, 0.5),
        iqr_ms=_quantile(ordered, 0.75) - _quantile(ordered, 0.25),
        repeats=len(samples),
        batch_size=cfg.batch_size,
        fingerprint=fp.key,
        device=fp.info,
        rel_ci=rel,
        stable=stable,
        number=number,
        samples_ms=tuple(samples),
    )


def measure_layers(
    modules: Sequence[nn.Module],
    input_shape: Sequence[int],
    device_cfg: Mapping[str, Any] | LatencyConfig | None = None,
) -> list[LatencyResult]:
    """Latency of each module of a chain, timed in place while the chain runs (`y = m(y)` in turn).

    Timing a layer inside its network, rather than alone in a loop, keeps it from running with its own
    weights and code hot in the caches from the previous call; on the build machine the sum of isolated
    timings of a small conv net came out 10 % under the whole network, the in-place sum within 2 %. Each
    module is prepared alone in the configured runtime (one ONNX graph / frozen TorchScript module per
    layer: the fusions inside a layer, conv + BN + activation, happen as in the network). The stopping
    rule applies to the total of a pass. Settings and restoring as in `measure_latency`; the modules are
    moved to the device for the timing and back afterwards.
    """
    cfg = LatencyConfig.from_cfg(device_cfg)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
    fp = device_fingerprint(cfg)
    chain = nn.Sequential(*modules)  # a container to switch modes and move devices; not called itself
    states = [m.training for m in modules]
    param = next(iter(chain.parameters()), None)
    home = param.device if param is not None else torch.device("cpu")
    device = cfg.torch_device
    try:
        chain.eval().to(device)  # outside inference mode: parameters must stay usable for training
        with fixed_threads(cfg.threads):
            x = torch.randn(cfg.batch_size, *map(int, input_shape), device=device)
            prepared, y = [], x
            for m in modules:  # each layer prepared on the input it sees inside the chain
                prepared.append(prepare(m, y, cfg.runtime, cfg.threads))
                with torch.no_grad():
                    y = m(y)
            calls = [p.fn for p in prepared]
            native = prepared[0].to_native(x) if prepared else x
            with torch.inference_mode():
                run = _chain_timer(calls, native, device)
                with quiet_machine():
                    _warm_up(run, cfg)
                    samples, rel, stable = sample_until_stable(run, cfg)
    finally:
        for m, was in zip(modules, states, strict=True):
            m.train(was)
        if device != home:
            chain.to(home)
    return [_result([s[i] for s in samples], cfg, fp, rel, stable, 1) for i in range(len(modules))]
