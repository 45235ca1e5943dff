"""`python -m experiments.bench fronts`: real searches at equal CPU time, their fronts judged at the reference.

The NAS-Bench-201 benchmarks judge the search algorithm with a known answer; this judges the whole search on
a real space: each method (`asha_tpe`: successive halving with TPE proposals, `tpe`, `random`: one rung at the
search fidelity) searches `--space` for `--minutes` of wall time (the search's `timeout_s`), then every architecture on each method's
front is trained at the calibration's reference fidelity (`python -m nas.calibrate`: 5 epochs on the whole
training split, test accuracy; runs already in the calibration file are reused, and new ones are added to
it), and each front is scored by the hypervolume of (reference accuracy, latency) in one box for all methods:
accuracy from 0, latency up to 1.1x the largest latency on any front. A front that looks good at a cheap
fidelity but whose networks are not the better ones fully trained scores low here.

Each method's study is kept in `--out`/<method>/ (SQLite): re-running resumes it with the minutes it has not
used yet (the wall time its runs recorded; for a run killed before recording it, its trials' training time).
The reference runs are claimed one by one (a lock per run, as the calibration's workers do): once the
searches are done, a second process started with `--no-search` (`OMP_NUM_THREADS=1` for both) trains half
of them, and the first waits for the run the other is training before it reports.
Latency is `--latency` (default predicted: the per-layer table, the same figure for every method whenever it
is computed). Extra Hydra overrides of conf/search.yaml at the end apply to every method.

    python -m experiments.bench fronts --space resnet_like --minutes 30
    OMP_NUM_THREADS=1 python -m experiments.bench fronts --space resnet_like --minutes 30 --no-search  # helper
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from nas import calibrate, runfile
from nas.claims import claimed
from nas.config import CONF_DIR, to_plain
from nas.pareto import hypervolume
from nas.search.calibration import calibration_file
from nas.search.loop import run_search
from nas.search.objectives import OBJECTIVES

METHODS = {
    "asha_tpe": ["scheduler=asha", "sampler=tpe"],
    "tpe": ["sampler=tpe"],
    "random": ["sampler=random"],
}
HEADROOM = 1.1  # the box's latency bound: this times the largest latency on any method's front


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench fronts", description=__doc__.splitlines()[0]
    )
    p.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    p.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    p.add_argument("--minutes", type=float, default=30.0, help="training time each method may spend")
    p.add_argument("--seed", type=int, default=0, help="the searches' seed")
    p.add_argument("--latency", default="predicted", help="latency mode: measured | predicted | macs")
    p.add_argument(
        "--reference", default="5:1.0", help="the reference fidelity, epochs:fraction[:image_size]"
    )
    p.add_argument("--calibration", default=None, help="the calibration file whose reference runs are shared")
    p.add_argument("--out", type=Path, default=Path("outputs/bench/fronts"), help="folder of the studies")
    p.add_argument(
        "--no-search",
        action="store_true",
        help="only train the fronts' reference runs (a helper beside a run whose searches are done)",
    )
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    args = p.parse_args(argv)
    args.method_list = [m for m in args.methods.split(",") if m]
    bad = [m for m in args.method_list if m not in METHODS]
    if bad or not args.method_list:
        p.error(f"unknown methods {bad}; valid methods: {', '.join(METHODS)}")
    if args.minutes <= 0:
        p.error("--minutes must be > 0")
    try:
        args.ref = calibrate.parse_fidelity(args.reference)
    except ValueError as e:
        p.error(str(e))
    return args


def compose(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The search config of one method (n_trials large: the time budget stops it)."""
    overrides = [
        f"space={args.space}", f"data={args.data}", f"seed={args.seed}", f"latency.mode={args.latency}",
        f"study_name=fronts-{args.space}-{method}", "n_trials=100000", "logger=none", "html=false", "onnx=false",
        "progress=false", "baselines.enabled=false", *METHODS[method], *args.overrides,
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(hydra_compose("search", overrides=overrides))
    cfg["export_dir"] = None
    return cfg


def _recorded(study_dir: Path) -> tuple[float | None, list[dict[str, str]] | None]:
    """The wall seconds a method's runs recorded and the rows of its trials.csv (None where absent)."""
    wall = study_dir / "wall_s.json"
    trials = study_dir / "trials.csv"
    recorded = float(json.loads(wall.read_text())["seconds"]) if wall.exists() else None
    if not trials.exists():
        return recorded, None
    with trials.open(newline="") as fh:
        return recorded, list(csv.DictReader(fh))


def spent_seconds(study_dir: Path) -> float:
    """Seconds the method has searched so far: the wall time its runs recorded, or where a run was killed
    before recording it, at least its trials' training time (0 before its first run)."""
    recorded, rows = _recorded(study_dir)
    trained = sum(float(r["train_time_s"] or 0) for r in rows or [] if not r.get("reused_from"))
    return max(recorded or 0.0, trained)


def _spent(study_dir: Path) -> dict[str, Any]:
    """The wall seconds a method's search recorded and the trials it trained (COMPLETE or PRUNED in its
    trials.csv: a trial rejected by a constraint costs no training); None where absent."""
    recorded, rows = _recorded(study_dir)
    trained = None if rows is None else sum(r["state"] in ("COMPLETE", "PRUNED") for r in rows)
    return {"wall_s": recorded, "trained": trained}


def run_method(args: argparse.Namespace, method: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Search with `method` (its config `cfg`, from `compose`) until its trials have used the budget; its front
    (spec, latency, accuracy)."""
    study_dir = args.out / method
    left = args.minutes * 60 - spent_seconds(study_dir)
    if args.no_search and (left > 0 or not (study_dir / "front.json").exists()):
        raise ValueError(
            f"--no-search: {method}'s search in {study_dir} has {max(left, 0) / 60:.1f} of its {args.minutes:g} "
            "minutes left (or no front yet): run the command without --no-search first"
        )
    if left > 0:
        cfg["timeout_s"] = left
        print(f"{method}: searching for {left / 60:.1f} more minutes", flush=True)
        start = time.monotonic()
        result = run_search(
            cfg, study_dir=study_dir, echo=lambda line: print(f"  {method}: {line}", flush=True)
        )
        (study_dir / "wall_s.json").write_text(
            json.dumps({"seconds": args.minutes * 60 - left + time.monotonic() - start})
        )
        if result.interrupted:
            raise KeyboardInterrupt
    doc = json.loads((study_dir / "front.json").read_text())
    named = doc.get("columns") or {}  # e.g. latency -> latency_ms_28px (a front.json before it: the keys)
    keys = ("trial", "spec", "latency", "accuracy", "macs")
    return [{k: r.get(named.get(k, k)) for k in keys} for r in doc["front"]]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(list(argv or []))
    cfgs = {m: compose(args, m) for m in args.method_list}  # every config checked before anything trains
    fronts = {m: run_method(args, m, cfgs[m]) for m in args.method_list}
    # The reference accuracy of every front architecture, through the calibration's runs (shared cache).
    cal_argv = ["--space", args.space, "--data", args.data, "--reference", args.reference,
                *(["--calibration", args.calibration] if args.calibration else []), *args.overrides]  # fmt: skip
    cal = calibrate.parse(cal_argv)
    ref_plan = calibrate.compose_plan(cal, cal.ref)
    path = Path(args.calibration) if args.calibration else calibration_file(args.space, args.data)
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    doc.setdefault("runs", {})
    out = args.out / "reference"
    todo = [(m, r, runfile.run_key(ref_plan, r["spec"], "reference")) for m, fr in fronts.items() for r in fr]
    first: dict[str, tuple[str, dict[str, Any]]] = {}  # an architecture on two fronts trains once
    for m, r, key in todo:
        first.setdefault(key, (m, r))

    def done() -> dict[str, Any]:  # re-read: another process may have recorded runs
        doc["runs"].update(runfile.read_runs(path))
        return doc["runs"]

    for key in claimed(first, done=done, lock=lambda key: out / "locks" / f"{key}.lock"):
        m, r = first[key]
        print(
            f"{m}: trial {r['trial']} at the reference fidelity ({(r['macs'] or 0) / 1e6:.1f} M MACs)",
            flush=True,
        )
        doc["runs"][key] = {"arch": None, "role": "reference", "seed": ref_plan.seed,
                            **runfile.train(ref_plan, r["spec"], out, key, test=True)}  # fmt: skip
        runfile.merge_save(path, doc)
    for _, r, key in todo:
        r["reference_accuracy"] = doc["runs"][key]["accuracy"]
    report(args, fronts)
    return 0


def report(args: argparse.Namespace, fronts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each method's front hypervolume at its search fidelity and at the reference, in one box, and its regret
    against the union of every method's front at the reference (the best front this run found); with the
    wall time and trials each search used (its time budget is a soft stop: the trial running at the deadline
    finishes, which costs successive halving up to one top-rung training)."""
    lat = [r["latency"] for fr in fronts.values() for r in fr]
    ref_point = [0.0, HEADROOM * max(lat)] if lat else [0.0, 1.0]
    dirs = [OBJECTIVES["accuracy"], OBJECTIVES["latency"]]
    rows = {}
    box = ref_point[1]  # accuracy spans 0 to 1: hypervolume / box is the share of the box dominated

    def share(points: list[list[float]]) -> float:
        return hypervolume(points, dirs, ref_point) / box if points else 0.0

    best = share([[r["reference_accuracy"], r["latency"]] for fr in fronts.values() for r in fr])
    for m, fr in fronts.items():
        cheap = share([[r["accuracy"], r["latency"]] for r in fr])
        full = share([[r["reference_accuracy"], r["latency"]] for r in fr])
        rows[m] = {"front": len(fr), "hv_search": cheap, "hv_reference": full,
                   "regret_reference": 1 - full / best if best else None, **_spent(args.out / m)}  # fmt: skip
    base = rows.get("random", {}).get("regret_reference")
    print(f"\nfronts of {args.space} at {args.minutes:g} min of training each, latency {args.latency}; box: "
          f"accuracy 0 to 1, latency {ref_point[1]:.3g} to 0; regret: 1 - HV / HV of all fronts together, "
          "at the reference\n")  # fmt: skip
    print(
        "| method | wall s | trained | front size | HV at the search fidelity | HV at the reference | regret | x random |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        ratio = f"{r['regret_reference'] / base:.2f}" if base else "-"
        wall = f"{r['wall_s']:.0f}" if r["wall_s"] is not None else "-"
        print(f"| {m} | {wall} | {r['trained']} | {r['front']} | {r['hv_search']:.4f} | {r['hv_reference']:.4f} "
              f"| {r['regret_reference']:.4f} | {ratio} |")  # fmt: skip
    summary = {
        "space": args.space,
        "minutes": args.minutes,
        "box": ref_point,
        "methods": rows,
        "fronts": fronts,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nwritten: {args.out / 'summary.json'}", file=sys.stderr)
    return summary
