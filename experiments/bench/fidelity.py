"""`python -m experiments.bench fidelity`: is a search fidelity cheap enough, rank-preserving, and does it trade off?

A search can only find an accuracy-latency front if, at its fidelity, slower networks of the space are more
accurate; and its winners are only winners if the fidelity ranks networks as a higher one does. This trains
the same `--archs` architectures of a space (valid draws, spread evenly over their MACs at the data's image
size) at each `--fidelities` entry, `epochs:fraction[:image_size]`, and reports per fidelity: seconds per
network, the accuracy range, Spearman's rho of accuracy with latency (the trade-off: near 0 means the front is
noise around the fastest networks) and with the last fidelity's accuracy (rank preservation). Training uses
seed 0; results are cached in `--out`/results.json, so re-running resumes.
Extra Hydra overrides of conf/search.yaml go at the end, e.g. `data.batch_size=64`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from experiments.bench.common import compose, ranks, spearman, training_options
from nas import fit as fitting
from nas.latency import latency_objective
from nas.search.loop import quiet
from nas.search.plan import SearchPlan
from nas.space import SpecRejected

# The trial budget of the search config a fidelity's plan is built from (the benchmark search's default; a
# plan needs one, the fidelity benchmark runs no search).
SEARCH_TRIALS = 30

__all__ = ["main", "parse", "parse_fidelity", "ranks", "spearman", "spread_by"]


def parse_fidelity(text: str) -> dict[str, Any]:
    """`epochs:fraction[:image_size]` -> {epochs, fraction, image_size}; ValueError says what is wrong."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        epochs, fraction = int(parts[0]), float(parts[1])
        image_size = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ValueError(
            f"fidelity {text!r}: write epochs:fraction[:image_size], e.g. 1:0.05 or 3:0.5:14"
        ) from None
    if epochs < 1 or not 0 < fraction <= 1 or (image_size is not None and image_size < 4):
        raise ValueError(f"fidelity {text!r}: need epochs >= 1, 0 < fraction <= 1, image_size >= 4")
    return {"epochs": epochs, "fraction": fraction, "image_size": image_size}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench fidelity", description=__doc__.splitlines()[0]
    )
    p.add_argument("--archs", type=int, default=10, help="architectures trained at every fidelity")
    p.add_argument(
        "--fidelities", nargs="+", default=["1:0.05", "3:0.5:14"],
        help="epochs:fraction[:image_size] each, cheapest first; the last is the reference for ranks",
    )  # fmt: skip
    training_options(p)  # --space, --data, --val-size, --batch-size, --latency
    p.add_argument("--draws", type=int, default=200, help="random draws the architectures are chosen from")
    p.add_argument("--out", default="outputs/bench/fidelity", help="folder of the cache and the report")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    args = p.parse_args(argv)
    if args.archs < 3:
        p.error("need --archs >= 3 for a rank correlation")
    try:
        args.fids = [parse_fidelity(f) for f in args.fidelities]
    except ValueError as e:
        p.error(str(e))
    return args


def spread_by(items: list[Any], key, n: int) -> list[Any]:
    """`n` of `items` evenly spaced in the order of `key` (both extremes included)."""
    items = sorted(items, key=key)
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def pick_archs(plan: SearchPlan, n: int, draws: int = 200) -> list[dict[str, Any]]:
    """`n` distinct valid architectures of the plan's space, spread over MACs at the data's image size."""
    found: dict[str, dict[str, Any]] = {}
    for seed in range(draws):
        try:
            spec = plan.space.sample_random(seed).spec
            _, _, cost = plan.cost(spec)
        except (SpecRejected, ValueError):
            continue
        if plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]}):
            continue
        found.setdefault(json.dumps(spec, sort_keys=True), {"spec": spec, "macs": cost["macs"]})
    if len(found) < n:
        raise ValueError(f"space {plan.space.name!r}: only {len(found)} valid architectures in {draws} draws")
    return spread_by(list(found.values()), lambda a: a["macs"], n)


def label(fid: dict[str, Any]) -> str:
    size = f" at {fid['image_size']} px" if fid["image_size"] else ""
    return f"{fid['epochs']} ep x {fid['fraction']:.0%}{size}"


def plan_for(args: argparse.Namespace, fid: dict[str, Any]) -> SearchPlan:
    """The search plan of one fidelity (a random-sampler search of the benchmark's options)."""
    extra = [f"fidelity.image_size={fid['image_size']}"] if fid["image_size"] else []
    run = argparse.Namespace(
        **{**vars(args), "epochs": fid["epochs"], "fraction": fid["fraction"], "trials": SEARCH_TRIALS,
           "startup": 0, "overrides": [*extra, *args.overrides]}
    )  # fmt: skip
    return SearchPlan.from_cfg(compose(run, "random", 0))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv or [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "results.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()).get("runs", {}) if cache_path.exists() else {}
    plans = [plan_for(args, f) for f in args.fids]  # every config checked before anything trains
    archs = pick_archs(plans[-1], args.archs, args.draws)
    for a in archs:
        a["latency"], rec = latency_objective(plans[-1].deployed_spec(a["spec"]), plans[-1].latency)
        a["unit"] = rec.get("unit", "")
    start = time.perf_counter()
    table: list[dict[str, Any]] = []
    for fid, plan in zip(args.fids, plans, strict=True):
        rows = []
        for i, a in enumerate(archs):
            key = plan.run_key(plan.resolved_spec(a["spec"]))
            if key not in cache:
                print(
                    f"{label(fid)}: network {i + 1}/{len(archs)} ({a['macs'] / 1e6:.1f} M MACs)", flush=True
                )
                cfg = plan.run_config(a["spec"], output_dir=str(out / "runs" / key), name=f"fid-{key}")
                cfg.update(logger={"name": "none"}, checkpoint=False)
                with quiet():
                    r = fitting.fit(cfg, verbose=False)  # via the module: a test counts the calls
                cache[key] = {"accuracy": r.metrics.get(plan.metric), "seconds": r.wall_time_s}
                cache_path.write_text(json.dumps({"runs": cache}, indent=1))
            rows.append(cache[key])
        table.append({"fidelity": fid, "label": label(fid), "rows": rows})
    summary = report(args, archs, table)
    cache_path.write_text(json.dumps({"runs": cache, **summary}, indent=1, default=str))
    print(f"\n{time.perf_counter() - start:.0f} s; written: {cache_path}")
    return 0


def report(
    args: argparse.Namespace, archs: list[dict[str, Any]], table: list[dict[str, Any]]
) -> dict[str, Any]:
    """Print one line per fidelity and one per network; return the same as data."""
    unit = archs[0]["unit"]
    lat = [a["latency"] for a in archs]
    ref = [r["accuracy"] for r in table[-1]["rows"]]
    print(
        f"\nfidelity check: space {args.space}, {args.data}, {len(archs)} architectures, latency {args.latency}\n"
    )
    print(
        "| fidelity | s / network (median) | accuracy min-max | rho(accuracy, latency) | rho(accuracy, last) |"
    )
    print("|---|---|---|---|---|")
    out = []
    for t in table:
        acc = [r["accuracy"] for r in t["rows"]]
        row = {
            "fidelity": t["fidelity"], "seconds": statistics.median(r["seconds"] for r in t["rows"]),
            "acc_min": min(acc), "acc_max": max(acc), "rho_latency": spearman(acc, lat),
            "rho_last": spearman(acc, ref), "accuracy": acc,
        }  # fmt: skip
        out.append(row)
        print(f"| {t['label']} | {row['seconds']:.1f} | {row['acc_min']:.3f}-{row['acc_max']:.3f} | "
              f"{row['rho_latency']:+.2f} | {row['rho_last']:+.2f} |")  # fmt: skip
    print("\n| MACs | latency | " + " | ".join(t["label"] for t in table) + " |")
    print("|---|---|" + "---|" * len(table))
    for i, a in enumerate(archs):
        accs = " | ".join(f"{t['rows'][i]['accuracy']:.3f}" for t in table)
        print(f"| {a['macs'] / 1e6:.2f} M | {a['latency']:.3g} {unit} | {accs} |")
    return {"space": args.space, "data": args.data, "fidelities": out,
            "archs": [{k: a[k] for k in ("spec", "macs", "latency", "unit")} for a in archs]}  # fmt: skip
