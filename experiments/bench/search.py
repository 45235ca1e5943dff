"""`python -m experiments.bench search`: do TPE and NSGA-II find better fronts than random search?

`--benchmark nb201` answers it on NAS-Bench-201 instead of by training (experiments.bench._search_nb201):
the same search loop, results looked up in the table, regret against the true front; the rest of this
docstring is about the training benchmark.

Runs the same search (space, trial budget, fidelity) once per sampler and seed, each its own study in
`--out` (re-running the benchmark resumes unfinished runs and reuses finished ones), then reports the
hypervolume of every run's (accuracy, latency) front as mean ± std per sampler and as a ratio to random
search, in two boxes common to all runs (see `reference_boxes`): the `wide` one (accuracy 0 and 1.1x the
largest latency seen; the target, >= 1.1x, is on it) and the `nadir` one (only the region the fronts
contest). Beside them, the hypervolume of the union of every run's trials: the most any sampler could have
found among the architectures the benchmark trained. The reference networks (`--baselines`) are trained
once at the same fidelity, and the report says which runs' fronts dominate them.

Defaults (30 trials x 3 samplers x 5 seeds on 5 % of Fashion-MNIST, one epoch at batch 32, predicted
latency, ResNet-18 as the reference) took 45 minutes on the 2-core build machine when it was not shared;
`--trials 10 --seeds 3 --fraction 0.02` takes about 5. Training uses seed 0 in every run and only the
sampler seed varies, so an architecture proposed by two runs has one result, and all runs share one storage
so it is trained once (`reuse=storage`).
Extra Hydra overrides of conf/search.yaml go at the end, e.g. `data.batch_size=64`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import optuna

from experiments.bench import _search_nb201, _search_surrogate
from experiments.bench._common import compose, training_options
from nas.pareto import hypervolume
from nas.search.followups import run_baselines
from nas.search.loop import quiet, run_search
from nas.search.plan import SearchPlan
from nas.search.records import dominated_by, front, records
from nas.search.storage import make_storage
from nas.stats import spearman

SAMPLERS = ("tpe", "nsga2", "random")
TARGET_RATIO = 1.1


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench search", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--benchmark", default="none", choices=["none", "nb201", "surrogate"],
        help="nb201: look results up in NAS-Bench-201; surrogate: in --space's surrogate (nas.surrogate); "
        "none: train",
    )  # fmt: skip
    p.add_argument(
        "--trials", type=int, default=None, help="trial budget of every run (30; nb201: 200; surrogate: 100)"
    )
    p.add_argument("--seeds", type=int, default=None, help="seeds per sampler (5; nb201 and surrogate: 30)")
    p.add_argument(
        "--samplers",
        default=None,
        help=f"comma-separated; random is the reference ({','.join(SAMPLERS)}; nb201: "
        f"{','.join(_search_nb201.SAMPLERS)}; surrogate: {','.join(_search_surrogate.SAMPLERS)})",
    )
    p.add_argument("--fraction", type=float, default=0.05, help="share of the training split each trial uses")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per trial")
    training_options(p)
    p.add_argument("--startup", type=int, default=6, help="TPE random startup trials / NSGA-II population")
    p.add_argument("--baselines", default="resnet18", help="comma-separated reference networks; '' for none")
    p.add_argument("--out", default=None, help="folder of the studies and the report")
    _search_nb201.options(p)
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    args = p.parse_args(argv)
    trials, seeds, samplers = {"nb201": (200, 30, _search_nb201.SAMPLERS),
                               "surrogate": (100, 30, _search_surrogate.SAMPLERS)}.get(
        args.benchmark, (30, 5, SAMPLERS))  # fmt: skip
    args.trials = args.trials or trials
    args.seeds = args.seeds or seeds
    args.samplers = args.samplers or ",".join(samplers)
    suffix = "" if args.benchmark == "none" else f"_{args.benchmark}"
    args.out = args.out or f"outputs/bench/search{suffix}"
    if args.trials < 2 or args.seeds < 1 or not 0 < args.fraction <= 1 or args.epochs < 1:
        p.error("need --trials >= 2, --seeds >= 1, 0 < --fraction <= 1, --epochs >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv or [])
    if args.benchmark == "nb201":
        return _search_nb201.main(args)
    if args.benchmark == "surrogate":
        return _search_surrogate.main(args)
    samplers = [s for s in args.samplers.split(",") if s]
    out = Path(args.out)
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for sampler in samplers:
            cfg = compose(args, sampler, seed)
            study_dir = out / cfg["study_name"]
            t0 = time.perf_counter()
            print(f"\n=== {sampler}, seed {seed} ===", flush=True)
            result = run_search(cfg, study_dir=study_dir, echo=lambda s: print(s, flush=True))
            if result.interrupted:
                print("interrupted: re-run the same command to continue the benchmark")
                return 130
            runs.append({"sampler": sampler, "seed": seed, "cfg": cfg, "dir": study_dir, "front": result.front,
                         "seconds": time.perf_counter() - t0})  # fmt: skip

    # One reference point for all runs: hypervolumes are comparable only against the same box.
    all_recs = []
    for run in runs:
        storage = make_storage(run["cfg"]["storage"], run["dir"])
        study = optuna.load_study(study_name=run["cfg"]["study_name"], storage=storage)
        run["records"] = records(study.get_trials(deepcopy=False))
        run["study"] = study
        all_recs += [r for r in run["records"] if r["state"] == "COMPLETE" and r.get("latency") is not None]
    union = front(all_recs, ["accuracy", "latency"])
    boxes = reference_boxes(all_recs, union)
    for run in runs:
        run["hv"] = {name: normalised_hv(run["front"], box) for name, box in boxes.items()}
    headroom = {name: normalised_hv(union, box) for name, box in boxes.items()}
    tradeoff = trade_off(all_recs)

    # Baselines once, at the same fidelity, cached in the first run's study.
    baselines = []
    names = [b for b in args.baselines.split(",") if b]
    if names:
        first = runs[0]
        cfg = {**first["cfg"], "baselines": {"enabled": True, "models": names, "max_macs": None}}
        with quiet():
            baselines = run_baselines(SearchPlan.from_cfg(cfg), first["study"], first["dir"])
        for b in baselines:
            if "skipped" not in b:
                b["dominated_in"] = [
                    f"{r['sampler']}-s{r['seed']}"
                    for r in runs
                    if dominated_by(b, r["front"], ["accuracy", "latency"])
                ]

    summary = report(runs, baselines, samplers, args, boxes, headroom, time.perf_counter() - start)
    print(
        f"trade-off: Spearman rho(accuracy, latency) over the {tradeoff['n']} architectures trained = "
        f"{tradeoff['rho']:+.2f} (near 0 or below: slower networks are not more accurate at this fidelity, so "
        "the fronts are mostly noise around the fastest ones; `python -m nas.calibrate` checks "
        "fidelities)"
    )
    summary["trade_off"] = tradeoff
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({**summary, "union_front": union}, indent=2, default=str))
    print(f"\nwritten: {out / 'results.json'}")
    return 0


def trade_off(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Spearman's rho of accuracy with latency over the distinct architectures (specs) among `recs`."""
    by_key = {json.dumps(r.get("spec"), sort_keys=True, default=str): r for r in recs}
    acc = [r["accuracy"] for r in by_key.values()]
    lat = [r["latency"] for r in by_key.values()]
    return {"n": len(by_key), "rho": spearman(acc, lat) if len(by_key) > 2 else float("nan")}


def reference_boxes(recs: list[dict[str, Any]], union: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The two boxes the fronts' hypervolumes are measured in, each (accuracy, latency) from worst to ideal.

    `wide` (the target's): from accuracy 0 and 1.1x the largest latency any trial had to accuracy 1 and
    latency 0. Every front scores in it, but a plateau that every run reaches (here ~0.75 accuracy at ~1 ms)
    makes most of the area, so ratios stay near 1. `nadir`: from the union front's worst point, pushed out by
    10 % of the front's range (Ishibuchi et al. 2018, "How to specify a reference point in hypervolume
    calculation"), to its ideal point: only the contested region counts.
    """
    wide = {"acc": 0.0, "lat": 1.1 * max(r["latency"] for r in recs), "acc_best": 1.0, "lat_best": 0.0}
    acc = [r["accuracy"] for r in union]
    lat = [r["latency"] for r in union]
    span_acc, span_lat = max(acc) - min(acc), max(lat) - min(lat)
    nadir = {
        "acc": min(acc) - 0.1 * span_acc, "lat": max(lat) + 0.1 * span_lat, "acc_best": max(acc),
        "lat_best": min(lat),
    }  # fmt: skip
    return {"wide": wide, "nadir": nadir}


def normalised_hv(front_recs: list[dict[str, Any]], box: dict[str, float]) -> float:
    """Hypervolume of a front's (accuracy, latency) points against `box`'s worst corner, as a share of the box."""
    pts = [[r["accuracy"], r["latency"]] for r in front_recs]
    area = (box["acc_best"] - box["acc"]) * (box["lat"] - box["lat_best"])
    if area <= 0:  # a one-point union front: nothing is contested
        return 0.0
    return hypervolume(pts, ["maximize", "minimize"], [box["acc"], box["lat"]]) / area


def report(runs, baselines, samplers, args, boxes, headroom, seconds: float) -> dict[str, Any]:
    """Print the per-sampler tables (one per reference box) and return them as data."""
    unit = next((r.get("latency_unit") for run in runs for r in run["records"] if r.get("latency_unit")), "")
    print(
        f"\nsearch benchmark: space {args.space}, {args.data}, {args.trials} trials x {args.seeds} seeds, "
        f"fidelity {args.epochs} epoch(s) on {args.fraction:.0%} of the training split, latency {args.latency}"
    )
    stats: dict[str, dict[str, dict[str, Any]]] = {}
    for name, box in boxes.items():
        by = {s: [r["hv"][name] for r in runs if r["sampler"] == s] for s in samplers}
        st = {
            s: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "runs": v}
            for s, v in by.items()
        }
        rnd = st.get("random", {}).get("mean")
        target = name == "wide"
        print(f"\nhypervolume of the (accuracy, latency) front in the {name} box, normalised to it: accuracy "
              f"{box['acc']:.3f} -> {box['acc_best']:.3f}, latency {box['lat']:.3g} -> {box['lat_best']:.3g} {unit}"
              + (" (the target's)" if target else " (diagnostic)") + "\n")  # fmt: skip
        print("| sampler | hypervolume (mean ± std) | vs random | runs |")
        print("|---|---|---|---|")
        for s, row in st.items():
            ratio = row["mean"] / rnd if rnd else float("nan")
            row["vs_random"] = ratio
            mark = "" if s == "random" or not target else (" ✓" if ratio >= TARGET_RATIO else " ✗")
            runs_s = ", ".join(f"{v:.3f}" for v in row["runs"])
            print(f"| {s} | {row['mean']:.3f} ± {row['std']:.3f} | {ratio:.2f}x{mark} | {runs_s} |")
        if rnd:
            print(f"| union of all runs' trials | {headroom[name]:.3f} | {headroom[name] / rnd:.2f}x | (the most "
                  "any sampler could have found among these architectures) |")  # fmt: skip
        stats[name] = st
    for b in baselines:
        if "skipped" in b:
            print(f"\nbaseline {b['name']}: skipped ({b['skipped']})")
        else:
            n = len(b["dominated_in"])
            print(
                f"\nbaseline {b['name']}: accuracy {b['accuracy']:.4f}, latency {b['latency']:.3g} {unit}; "
                f"dominated by the front of {n} of {len(runs)} runs"
            )
    print(f"\ntotal time {seconds / 60:.1f} min (target: wide-box hypervolume >= {TARGET_RATIO}x random)")
    return {
        "space": args.space,
        "data": args.data,
        "trials": args.trials,
        "seeds": args.seeds,
        "fidelity": {"epochs": args.epochs, "fraction": args.fraction, "val_size": args.val_size},
        "latency_mode": args.latency,
        "latency_unit": unit,
        "boxes": boxes,
        "hypervolume": stats,
        "union_hypervolume": headroom,
        "baselines": baselines,
        "runs": [
            {
                "sampler": r["sampler"],
                "seed": r["seed"],
                "hv": r["hv"],
                "seconds": r["seconds"],
                "front": r["front"],
            }
            for r in runs
        ],  # fmt: skip
        "seconds": seconds,
    }
