"""`python -m experiments.bench latency`: per runtime, predicted vs measured latency and the cost model.

For `--count` random specs and each runtime of `--runtimes` (the same specs for all): the per-layer
table's prediction (`nas.latency.LatencyPredictor`, filling a fresh table unless `--cache` names one) and
a direct measurement of the whole network (`nas.latency.measure_latency`); then the Spearman rank
correlation and the median absolute percentage error between them (targets: Spearman >= 0.95, median
APE <= 10 %), and a least-squares fit of measured latency against MACs: the fixed cost (intercept, ms),
the slope (ms per million MACs) and R^2. Repeatability: the coefficient of variation of `--repeats`
independent measurements (each a full warm-up + stopping-rule run) of one mid-sized spec (target <= 5 %).

On a machine loaded by other processes a whole-network call that is longer than the scheduler's time
slice is preempted in most calls, so its median is inflated far more than those of the short layer
timings: the same figures are also given against the whole network's fastest decile (`p10`), a
load-robust estimate of its unloaded latency. Quote the median figures from a quiet machine.

Specs come from `--space`: `plain` (conv stacks), `residual` (ResNet basic blocks), `mixed` (both, the
default) — small generators here — or the name of a search space in conf/space/ (uniformly random
configurations of it, e.g. `--space resnet_like`).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.latency import LatencyConfig, LatencyPredictor, measure_latency, spec_costs
from nas.latency.runtimes import RUNTIMES
from nas.stats import spearman

TARGETS = {"spearman": 0.95, "median_ape_pct": 10.0, "cv_pct": 5.0}
CPU_RUNTIMES = ("eager", "torchscript", "onnxruntime")
BUILTIN_SOURCES = ("plain", "residual", "mixed")
WIDTHS = (8, 16, 24, 32, 48, 64, 96, 128)


def random_conv_spec(
    rng: random.Random,
    *,
    kind: str = "mixed",
    input_size: int = 32,
    in_channels: int = 3,
    num_classes: int = 10,
) -> dict[str, Any]:
    """A random plain or residual conv net: stem conv, 2-4 stages of varied depth, width, stride, kernel."""
    import blocks.families  # noqa: F401  (registers the blocks)
    from blocks.registry import BLOCKS

    if kind not in BUILTIN_SOURCES:
        raise ValueError(f"unknown spec kind {kind!r}; valid: {', '.join(BUILTIN_SOURCES)}")
    residual = "basic" in BLOCKS and (kind == "residual" or (kind == "mixed" and rng.random() < 0.5))
    width = rng.choice(WIDTHS[:5])
    stages = []
    size = input_size
    for s in range(rng.randint(2, 4)):
        width = min(WIDTHS[-1] * 2, int(width * rng.choice((1, 1.5, 2))))
        stride = 2 if s > 0 and size >= 8 and rng.random() < 0.7 else 1
        size //= stride
        entry: dict[str, Any] = {"channels": width, "stride": stride, "repeat": rng.randint(1, 3)}
        if residual:
            entry["block"] = "basic"
        else:
            entry.update(block="conv", kernel=rng.choice((1, 3, 3, 3, 5)))
        stages.append(entry)
    return {
        "name": f"{'residual' if residual else 'plain'}_{len(stages)}x{width}",
        "in_channels": in_channels,
        "num_classes": num_classes,
        "input_size": input_size,
        "act": rng.choice(("relu", "relu", "silu", "leaky_relu")),
        "norm": "batchnorm",
        "stem": [{"block": "conv", "channels": stages[0]["channels"], "kernel": 3, "stride": 2}],
        "small_stem": [{"block": "conv", "channels": rng.choice(WIDTHS[:4]), "kernel": 3, "stride": 1}],
        "stages": stages,
        "head": {"type": "linear", "pool": "avg"},
    }


def spec_sampler(space: str, **shape: Any) -> Callable[[random.Random], dict[str, Any]]:
    """A function rng -> spec: a built-in generator, or random configurations of a search space.

    `shape` (input_size, in_channels, num_classes) is set on every spec, as the engine does from the data.
    """
    if space in BUILTIN_SOURCES:
        return lambda rng: random_conv_spec(rng, kind=space, **shape)
    from nas.space import SpecRejected, list_spaces, load_space

    if space not in {name for name, _ in list_spaces()}:
        valid = [*BUILTIN_SOURCES, *(name for name, _ in list_spaces())]
        raise KeyError(f"unknown spec source {space!r}; valid: {', '.join(valid)}")
    loaded = load_space(space)

    def draw(rng: random.Random) -> dict[str, Any]:
        for _ in range(100):  # a derivation may reject a draw (e.g. RegNet widths that quantise to nothing)
            try:
                spec = loaded.sample_random(rng.randrange(2**31)).spec
            except SpecRejected:
                continue
            return {**spec, **shape}
        raise ValueError(f"space {space!r} rejected 100 random draws in a row")

    return draw


def macs_fit(macs: list[float], ms: list[float]) -> dict[str, float]:
    """Least-squares ms = fixed_ms + slope * MMACs over the specs: fixed cost, slope per MMAC and R^2."""
    import numpy as np

    x, y = np.asarray(macs, float) / 1e6, np.asarray(ms, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"fixed_ms": math.nan, "ms_per_mmac": math.nan, "r2": math.nan}
    slope, intercept = np.polyfit(x, y, 1)
    ss_res, ss_tot = float(((y - (slope * x + intercept)) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {
        "fixed_ms": float(intercept),
        "ms_per_mmac": float(slope),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else math.nan,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; returns {"rows": [...], "figures": {runtime: {...}}} (also printed by `main`)."""
    cache = args.cache or str(Path(tempfile.mkdtemp(prefix="latency-bench-")) / "table.sqlite")
    sample = spec_sampler(
        args.space, input_size=args.input_size, in_channels=args.in_channels, num_classes=args.num_classes
    )
    rng = random.Random(args.seed)
    specs = [sample(rng) for _ in range(args.count)]
    costs = [spec_costs(s) for s in specs]
    rep_rng = random.Random(args.seed + 1)
    pool = [sample(rep_rng) for _ in range(9)]
    ref = sorted(pool, key=lambda s: spec_costs(s)["macs"])[len(pool) // 2]  # a mid-sized model
    rows: list[dict[str, Any]] = []
    figures: dict[str, dict[str, Any]] = {}
    for runtime in args.runtimes:
        cfg = LatencyConfig.from_cfg(
            device=args.device,
            runtime=runtime,
            threads=args.threads,
            batch_size=args.batch,
            max_time_s=args.max_time,
            cache=cache,
        )
        predictor = LatencyPredictor(cfg)
        print(f"\n== {runtime}: {predictor.fp.label()} [{predictor.fp.key}]  batch {cfg.batch_size}")
        header = (
            f"{'#':>3} {'spec':<22} {'layers':>6} {'params':>9} {'MMACs':>8} {'pred ms':>9} "
            f"{'meas ms':>9} {'APE %':>6}"
        )
        print(header)
        print("-" * len(header))
        t0 = time.perf_counter()
        mine = []
        for i, (spec, cost) in enumerate(zip(specs, costs, strict=True)):
            pred = predictor.predict(spec)
            meas = measure_latency(spec, None, cfg)
            ape = abs(pred.median_ms - meas.median_ms) / meas.median_ms * 100
            row = {
                "runtime": runtime,
                "index": i,
                "spec": spec["name"],
                "layers": len(pred.layers),
                "params": cost["params"],
                "macs": cost["macs"],
                "predicted_ms": pred.median_ms,
                "measured_ms": meas.median_ms,
                "measured_iqr_ms": meas.iqr_ms,
                "measured_p10_ms": statistics.quantiles(meas.samples_ms, n=10)[0]
                if len(meas.samples_ms) > 1
                else meas.median_ms,
                "ape_pct": ape,
                "new_layers": pred.new_layers,
            }
            mine.append(row)
            print(
                f"{i:>3} {row['spec'][:22]:<22} {row['layers']:>6} {row['params']:>9,} "
                f"{row['macs'] / 1e6:>8.1f} {row['predicted_ms']:>9.3f} {row['measured_ms']:>9.3f} "
                f"{ape:>6.1f}"
            )
        elapsed = time.perf_counter() - t0
        repeats = [measure_latency(ref, None, cfg).median_ms for _ in range(args.repeats)]
        pred_ms = [r["predicted_ms"] for r in mine]
        meas_ms = [r["measured_ms"] for r in mine]
        p10_ms = [r["measured_p10_ms"] for r in mine]
        fit_p10 = macs_fit([r["macs"] for r in mine], p10_ms)
        figures[runtime] = {
            "count": len(mine),
            "spearman": spearman(pred_ms, meas_ms) if len(mine) > 2 else math.nan,
            "median_ape_pct": statistics.median(r["ape_pct"] for r in mine),
            **macs_fit([r["macs"] for r in mine], meas_ms),
            "p10_spearman": spearman(pred_ms, p10_ms) if len(mine) > 2 else math.nan,
            "p10_median_ape_pct": statistics.median(
                abs(p - m) / m * 100 for p, m in zip(pred_ms, p10_ms, strict=True)
            ),
            **{f"p10_{k}": v for k, v in fit_p10.items()},
            "smallest_ms": min(meas_ms),
            "cv_pct": statistics.stdev(repeats) / statistics.mean(repeats) * 100,
            "cv_model": ref["name"],
            "cv_mean_ms": statistics.mean(repeats),
            "table_layers_measured": sum(r["new_layers"] for r in mine),
            "seconds": elapsed,
            "device": predictor.fp.info,
            "fingerprint": predictor.fp.key,
        }
        rows += mine
    return {"rows": rows, "figures": figures}


def _runtimes(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNTIMES]
    if not names or unknown:
        raise ValueError(f"unknown runtimes {unknown or [text]}; valid runtimes: {', '.join(RUNTIMES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--count", type=int, default=50, help="random specs to compare (default 50)")
    p.add_argument(
        "--space", default="mixed", help=f"spec source: {', '.join(BUILTIN_SOURCES)} or a search space"
    )
    p.add_argument(
        "--runtimes",
        default=",".join(CPU_RUNTIMES),
        help=f"comma-separated runtimes to compare (default {','.join(CPU_RUNTIMES)}; valid: "
        f"{', '.join(RUNTIMES)})",
    )
    p.add_argument("--threads", type=int, default=1, help="intra-op threads while timing")
    p.add_argument("--batch", type=int, default=1, help="images per call")
    p.add_argument("--input-size", type=int, default=32, help="input side in pixels")
    p.add_argument("--in-channels", type=int, default=3, help="input image channels")
    p.add_argument("--num-classes", type=int, default=10, help="classifier outputs")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=10, help="repeated measurements for the CV (>= 2)")
    p.add_argument("--max-time", type=float, default=2.0, help="timing cap per measurement, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="per-layer SQLite table to use (default: a fresh one)")
    p.add_argument("--csv", default=None, help="also write the per-spec rows to this CSV file")
    args = p.parse_args(argv)
    if args.count < 1 or args.repeats < 2:
        p.error("--count must be >= 1 and --repeats >= 2")
    try:  # bad names and settings: one line, before any timing
        args.runtimes = _runtimes(args.runtimes)
        spec_sampler(args.space, input_size=args.input_size)
        for runtime in args.runtimes:
            LatencyConfig.from_cfg(
                device=args.device, runtime=runtime, threads=args.threads, batch_size=args.batch
            )
    except (KeyError, ValueError) as e:
        p.error(e.args[0] if e.args else str(e))
    result = run(args)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(result["rows"][0]))
            writer.writeheader()
            writer.writerows(result["rows"])
    print()
    print(
        f"specs: {args.count} ({args.space}, {args.input_size} px, batch {args.batch}, "
        f"{args.threads} thread(s)); targets: Spearman >= {TARGETS['spearman']}, median APE <= "
        f"{TARGETS['median_ape_pct']:.0f} %, CV <= {TARGETS['cv_pct']:.0f} %"
    )
    header = (
        f"{'runtime':<12} {'Spearman':>8} {'med APE %':>9} {'fixed ms':>9} {'ms/MMAC':>8} {'R^2':>5} "
        f"{'min ms':>7} {'CV %':>5} {'s':>5}  verdict"
    )
    print(header)
    print("-" * len(header))
    for runtime, f in result["figures"].items():
        missed = [
            name
            for name, bad in (
                ("spearman", f["spearman"] < TARGETS["spearman"]),
                ("APE", f["median_ape_pct"] > TARGETS["median_ape_pct"]),
                ("CV", f["cv_pct"] > TARGETS["cv_pct"]),
            )
            if bad
        ]
        print(
            f"{runtime:<12} {f['spearman']:>8.3f} {f['median_ape_pct']:>9.1f} {f['fixed_ms']:>9.3f} "
            f"{f['ms_per_mmac']:>8.4f} {f['r2']:>5.2f} {f['smallest_ms']:>7.3f} {f['cv_pct']:>5.1f} "
            f"{f['seconds']:>5.0f}  {'ok' if not missed else 'MISSED ' + ', '.join(missed)}"
        )
    print("against the whole network's fastest decile (load-robust):")
    for runtime, f in result["figures"].items():
        print(
            f"{runtime + ' p10':<12} {f['p10_spearman']:>8.3f} {f['p10_median_ape_pct']:>9.1f} "
            f"{f['p10_fixed_ms']:>9.3f} {f['p10_ms_per_mmac']:>8.4f} {f['p10_r2']:>5.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
