"""`python -m experiments.profile`: parameters, MACs, latency and throughput of the reference networks.

The practical analysis of Canziani, Paszke and Culurciello ("An analysis of deep neural network models for
practical applications") on this machine: for each network in conf/model/ (or `--models`), its parameters,
MACs per image, and measured latency at batch sizes 1, 2, 4, ..., 64 (per call, per image, images/s).
Writes `profile.csv`, `profile.json` (the device, settings, per-network summaries, the fit and the wall
time, for `python -m experiments.reproduce`) and two plots into `--out`: MACs vs batch-1 latency with a least-squares line over the
dense-convolution networks, and per-image latency vs batch size. The summary says how far the
depthwise-separable networks (MobileNet, Xception: the YAML `family` field) fall from that line.

Each network gets `--budget` seconds: a batch size whose expected timing cost would overrun it is skipped
(with every larger one), and the report lists which networks were capped where.

`--runtimes eager,torchscript,onnxruntime` repeats the analysis in each runtime (into `--out`/<runtime>/)
and ends with one line per runtime: the dense networks' R^2 and the depthwise networks' excess per
operation over the dense median. Without it the device's deployment runtime is used (ONNX Runtime on CPU).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from experiments.profile.run import DEFAULT_BATCHES, ProfileReport, load_models, run_profile, runtime_line
from nas.cli import parse_args, user_errors
from nas.latency import LatencyConfig


@user_errors("profile")
def main(argv: list[str] | None = None) -> list[ProfileReport]:
    p = argparse.ArgumentParser(
        prog="python -m experiments.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", default=None, help="comma-separated conf/model/ names (default: all)")
    p.add_argument(
        "--input-size", type=int, default=None, help="input side in pixels (default: each net's own)"
    )
    p.add_argument(
        "--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="comma-separated batch sizes"
    )
    p.add_argument("--budget", type=float, default=30.0, help="timing budget per network, seconds")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads while timing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--runtimes",
        default=None,
        help="comma-separated runtimes, each profiled in turn (default: the device's deployment runtime)",
    )
    p.add_argument("--out", default="outputs/profile", help="output folder for the CSV and the plots")
    p.add_argument("--no-log", action="store_true", help="do not hand the report to experiment tracking")
    args = parse_args(p, argv, "nas-profile")
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()] if args.runtimes else [None]
    try:  # bad names and settings: one line, before any timing
        models = load_models(names)
        for runtime in runtimes:
            LatencyConfig.from_cfg(threads=args.threads, device=args.device, runtime=runtime)
    except (KeyError, ValueError) as e:
        p.error(e.args[0] if e.args else str(e))
    reports = []
    for runtime in runtimes:
        out = Path(args.out) / runtime if len(runtimes) > 1 else Path(args.out)
        print(f"== runtime {runtime or 'default'} -> {out}")
        report = run_profile(
            models,
            out=out,
            batches=batches,
            input_size=args.input_size,
            budget_s=args.budget,
            latency={"threads": args.threads, "device": args.device, "runtime": runtime},
            log=not args.no_log,
            command=shlex.join(
                ["python", "-m", "experiments.profile", *(sys.argv[1:] if argv is None else argv)]
            ),
        )
        print()
        print(f"device: {report.device}")
        print(report.summary)
        print(f"wrote {report.csv} and {', '.join(str(p) for p in report.figures.values())}")
        reports.append(report)
    print()
    print(
        f"{'runtime':<12} {'dense R^2':>9} {'n':>3} {'ms/GMAC':>8} {'fixed ms':>8} {'dw excess/op':>12} {'n':>3}"
    )
    for report in reports:
        r = runtime_line(report)
        print(
            f"{r['runtime']:<12} {r['dense_r2']:>9.3f} {r['dense_n']:>3} {r['slope_ms_per_gmac']:>8.2f} "
            f"{r['intercept_ms']:>8.2f} {r['separable_excess_per_op']:>11.2f}x {r['separable_n']:>3}"
        )
    return reports


def cli() -> int:
    """The console script's entry point: main() returns its report, which is not an exit status."""
    main()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
