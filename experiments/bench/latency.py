"""`python -m experiments.bench latency`: predicted vs measured latency on random specs, and repeatability.

For `--count` random specs: the per-layer table's prediction (`nas.latency.LatencyPredictor`, filling a
fresh table unless `--cache` names one) and a direct measurement of the whole network
(`nas.latency.measure_latency`); then the Spearman rank correlation and the median absolute percentage
error between them. Repeatability: the coefficient of variation of `--repeats` independent measurements
(each a full warm-up + stopping-rule run) of one mid-sized spec. Targets on the 2-core build machine:
Spearman >= 0.9, median APE <= 15 %, CV <= 5 %.

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

TARGETS = {"spearman": 0.9, "median_ape_pct": 15.0, "cv_pct": 5.0}
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


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; returns {"rows": [...], "figures": {...}} (also printed by `main`)."""
    cache = args.cache or str(Path(tempfile.mkdtemp(prefix="latency-bench-")) / "table.sqlite")
    cfg = LatencyConfig.from_cfg(
        device=args.device,
        threads=args.threads,
        batch_size=args.batch,
        max_time_s=args.max_time,
        cache=cache,
    )
    predictor = LatencyPredictor(cfg)
    print(f"device: {predictor.fp.label()} [{predictor.fp.key}]  batch {cfg.batch_size}  table: {cache}")
    sample = spec_sampler(
        args.space, input_size=args.input_size, in_channels=args.in_channels, num_classes=args.num_classes
    )
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    header = (
        f"{'#':>3} {'spec':<16} {'layers':>6} {'params':>9} {'MMACs':>8} {'pred ms':>9} {'meas ms':>9} "
        f"{'APE %':>6}"
    )
    print(header)
    print("-" * len(header))
    t0 = time.perf_counter()
    for i in range(args.count):
        spec = sample(rng)
        pred = predictor.predict(spec)
        meas = measure_latency(spec, None, cfg)
        cost = spec_costs(spec)
        ape = abs(pred.median_ms - meas.median_ms) / meas.median_ms * 100
        row = {
            "index": i,
            "spec": spec["name"],
            "layers": len(pred.layers),
            "params": cost["params"],
            "macs": cost["macs"],
            "predicted_ms": pred.median_ms,
            "measured_ms": meas.median_ms,
            "measured_iqr_ms": meas.iqr_ms,
            "ape_pct": ape,
            "new_layers": pred.new_layers,
        }
        rows.append(row)
        print(
            f"{i:>3} {row['spec']:<16} {row['layers']:>6} {row['params']:>9,} {row['macs'] / 1e6:>8.1f} "
            f"{row['predicted_ms']:>9.3f} {row['measured_ms']:>9.3f} {ape:>6.1f}"
        )
    elapsed = time.perf_counter() - t0

    rep_rng = random.Random(args.seed + 1)
    specs = [sample(rep_rng) for _ in range(9)]
    ref = sorted(specs, key=lambda s: spec_costs(s)["macs"])[len(specs) // 2]  # a mid-sized model
    repeats = [measure_latency(ref, None, cfg).median_ms for _ in range(args.repeats)]
    cv = statistics.stdev(repeats) / statistics.mean(repeats) * 100
    pred_ms = [r["predicted_ms"] for r in rows]
    meas_ms = [r["measured_ms"] for r in rows]
    figures = {
        "count": len(rows),
        "spearman": spearman(pred_ms, meas_ms) if len(rows) > 2 else math.nan,
        "median_ape_pct": statistics.median(r["ape_pct"] for r in rows),
        "cv_pct": cv,
        "cv_model": ref["name"],
        "cv_mean_ms": statistics.mean(repeats),
        "table_layers_measured": sum(r["new_layers"] for r in rows),
        "seconds": elapsed,
        "device": predictor.fp.info,
        "fingerprint": predictor.fp.key,
    }
    return {"rows": rows, "figures": figures}


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
        spec_sampler(args.space, input_size=args.input_size)
        LatencyConfig.from_cfg(device=args.device, threads=args.threads, batch_size=args.batch)
    except (KeyError, ValueError) as e:
        p.error(e.args[0] if e.args else str(e))
    result = run(args)
    f = result["figures"]
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(result["rows"][0]))
            writer.writeheader()
            writer.writerows(result["rows"])
    ok = {
        "spearman": f["spearman"] >= TARGETS["spearman"],
        "median_ape_pct": f["median_ape_pct"] <= TARGETS["median_ape_pct"],
        "cv_pct": f["cv_pct"] <= TARGETS["cv_pct"],
    }
    print()
    print(
        f"specs: {f['count']} ({args.space}, {args.input_size} px, batch {args.batch}, "
        f"{args.threads} thread(s)); "
        f"layers measured into the table: {f['table_layers_measured']}; {f['seconds']:.0f} s"
    )
    print(
        f"Spearman rank correlation  {f['spearman']:.3f}   (target >= {TARGETS['spearman']})  "
        f"{'ok' if ok['spearman'] else 'MISSED'}"
    )
    print(
        f"median abs. % error        {f['median_ape_pct']:.1f} %  "
        f"(target <= {TARGETS['median_ape_pct']:.0f} %)  "
        f"{'ok' if ok['median_ape_pct'] else 'MISSED'}"
    )
    print(
        f"repeatability CV           {f['cv_pct']:.1f} %  (target <= {TARGETS['cv_pct']:.0f} %)  "
        f"{'ok' if ok['cv_pct'] else 'MISSED'}  "
        f"[{args.repeats} x {f['cv_model']}, mean {f['cv_mean_ms']:.3f} ms]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
