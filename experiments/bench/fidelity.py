"""`python -m experiments.bench fidelity`: calibrate a search fidelity against a reference training.

A search can only be trusted if, at its fidelity, it ranks networks as a longer training does. This picks
`--archs` architectures of a space (valid draws spread evenly over their MACs), trains them at a reference
fidelity (`--reference`, default 5 epochs on the whole training split; test accuracy; a second seed for
`--seeded` of them: the seed-to-seed Spearman is the ceiling any cheap fidelity can reach), then at each
candidate `--fidelities` entry (validation accuracy, what a search sees), and reports per candidate: median
seconds per trial, Spearman's rho with the reference (BCa bootstrap 95 % CI over architectures), the ceiling,
top-3 overlap, and whether it meets the bar (rho >= 0.7 or >= 80 % of the ceiling, at most `--max-seconds`).
It also gives rho(reference accuracy, latency) per `--runtimes` (is there a trade-off to find?).

Everything lands in one small file, `conf/calibration/<space>-<data>.json` (`--calibration`), meant to be
committed: the architectures, every run's accuracy and seconds, the command and the machine. Re-running reads
it and trains only what is missing, so a reference is computed once and new candidates extend it. A search
whose fidelity equals a candidate's prints that candidate's rho in its header (nas.search.calibration).

A candidate is `epochs:fraction[:image_size]`, optionally followed by `,key=value` overrides of its own (the
levers: `3:0.3,data.batch_size=256`, `2:0.5:14,optim.label_smoothing=0.1`). Extra Hydra overrides of
conf/search.yaml at the end apply to the reference and every candidate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from nas import runfile
from nas.claims import claim
from nas.latency import latency_objective
from nas.search.calibration import calibration_file
from nas.search.plan import SearchPlan
from nas.space import SpecRejected
from nas.stats import bootstrap_ci, spearman

__all__ = ["main", "parse", "parse_fidelity", "spread_by", "summarise"]

RHO_BAR, CEILING_SHARE = 0.7, 0.8  # the bar: rho >= 0.7, or >= 80 % of the seed ceiling


def parse_fidelity(text: str) -> dict[str, Any]:
    """`epochs:fraction[:image_size][,key=value...]` -> {epochs, fraction, image_size, overrides};
    ValueError says what is wrong."""
    head, *overrides = text.split(",")
    if "=" in head:
        raise ValueError(
            f"fidelity {text!r} looks like a Hydra override: put overrides before --fidelities (or after --), "
            "or give one candidate its own as epochs:fraction,key=value"
        )
    parts = head.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        epochs, fraction = int(parts[0]), float(parts[1])
        image_size = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ValueError(
            f"fidelity {text!r}: write epochs:fraction[:image_size][,key=value...], e.g. 1:0.05 or "
            "3:0.5:14,data.batch_size=256"
        ) from None
    if epochs < 1 or not 0 < fraction <= 1 or (image_size is not None and image_size < 4):
        raise ValueError(f"fidelity {text!r}: need epochs >= 1, 0 < fraction <= 1, image_size >= 4")
    bad = [o for o in overrides if "=" not in o or o.startswith("=")]
    if bad:
        raise ValueError(f"fidelity {text!r}: overrides after ',' are key=value, got {bad}")
    return {"epochs": epochs, "fraction": fraction, "image_size": image_size, "overrides": overrides}


def label(fid: dict[str, Any]) -> str:
    size = f" at {fid['image_size']} px" if fid["image_size"] else ""
    extra = "".join(f", {o}" for o in fid.get("overrides") or ())
    return f"{fid['epochs']} ep x {fid['fraction']:.0%}{size}{extra}"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench fidelity", description=__doc__.splitlines()[0]
    )
    p.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    p.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    p.add_argument("--archs", type=int, default=12, help="architectures (a new calibration; then the file's)")
    p.add_argument(
        "--reference", default="5:1.0", help="the reference fidelity, epochs:fraction[:image_size]"
    )
    p.add_argument("--seeded", type=float, default=0.5, help="share of the architectures given a 2nd seed")
    p.add_argument(
        "--fidelities", nargs="*", default=["1:0.1"],
        help="candidate fidelities, epochs:fraction[:image_size][,key=value...] each",
    )  # fmt: skip
    p.add_argument("--max-seconds", type=float, default=30.0, help="the bar's median seconds per trial")
    p.add_argument("--runtimes", default="", help="comma list of latency runtimes timed for the trade-off")
    p.add_argument(
        "--latency", default="macs", help="latency mode of the plans (unused: the trade-off uses --runtimes)"
    )
    p.add_argument("--draws", type=int, default=300, help="random draws the architectures are chosen from")
    p.add_argument(
        "--add", type=int, default=0,
        help="architectures added to the file's (a changed space): drawn from the space as it is now, spread "
             "over MACs; the file's architectures and runs stay",
    )  # fmt: skip
    p.add_argument(
        "--add-references", action="store_true",
        help="add the textbook networks the space holds (conf/space `references`) that meet its constraints",
    )  # fmt: skip
    p.add_argument(
        "--where", action="append", default=[], metavar="PARAM=VALUE",
        help="--add draws only architectures with this parameter value (e.g. n_stages=3: a new region)",
    )  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the CI")
    p.add_argument("--calibration", default=None, help="the calibration file (default conf/calibration/)")
    p.add_argument("--out", default="outputs/bench/fidelity", help="folder of the runs' outputs")
    p.add_argument("--dry-run", action="store_true", help="plan and report from the file; train nothing")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    args = p.parse_args(argv)
    if args.archs < 4:
        p.error("need --archs >= 4 for a rank correlation with a confidence interval")
    if not 0 <= args.seeded <= 1:
        p.error("--seeded is a share of the architectures, in [0, 1]")
    try:
        args.ref = parse_fidelity(args.reference)
        args.fids = [parse_fidelity(f) for f in args.fidelities]
    except ValueError as e:
        p.error(str(e))
    args.runtime_list = [r for r in args.runtimes.split(",") if r]
    return args


def spread_by(items: list[Any], key, n: int) -> list[Any]:
    """`n` of `items` evenly spaced in the order of `key` (both extremes included)."""
    items = sorted(items, key=key)
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def compose_plan(args: argparse.Namespace, fid: dict[str, Any], seed: int = 0) -> SearchPlan:
    """The search plan of one fidelity and training seed: conf/search.yaml with the fidelity, the common
    overrides and the fidelity's own."""
    return runfile.compose_plan([
        f"space={args.space}", f"data={args.data}", f"fidelity.epochs={fid['epochs']}",
        f"fidelity.fraction={fid['fraction']}", f"latency.mode={args.latency}", f"seed={seed}",
        # no image size: the data's (not the space's default fidelity)
        f"fidelity.image_size={fid['image_size'] or 'null'}",
        *args.overrides, *fid.get("overrides", ()),
    ])  # fmt: skip


def pick_archs(
    plan: SearchPlan, n: int, draws: int, *, where: dict[str, Any] | None = None, skip: list[Any] = ()
) -> list[dict[str, Any]]:
    """`n` distinct valid architectures of the plan's space, spread over MACs at the data's image size (only
    draws whose parameters match `where`, none whose spec is in `skip`)."""
    found: dict[str, dict[str, Any]] = {}
    taken = {json.dumps(s, sort_keys=True) for s in skip}
    for seed in range(draws):
        try:
            sample = plan.space.sample_random(seed)
            if any(str(sample.params.get(k)) != str(v) for k, v in (where or {}).items()):
                continue
            spec = sample.spec
            if json.dumps(spec, sort_keys=True) in taken:
                continue
            _, _, cost = plan.cost(spec)
        except (SpecRejected, ValueError):
            continue
        if plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]}):
            continue
        found.setdefault(
            json.dumps(spec, sort_keys=True), {"spec": spec, "macs": cost["macs"], "params": cost["params"]}
        )
    if len(found) < n:
        raise ValueError(f"space {plan.space.name!r}: only {len(found)} valid architectures in {draws} draws")
    return spread_by(list(found.values()), lambda a: a["macs"], n)


def added_archs(
    args: argparse.Namespace, plan: SearchPlan, archs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The architectures `--add-references` and `--add N --where ...` add to the file's (none already in it)."""
    specs = [a["spec"] for a in archs]
    out = []
    if args.add_references:
        for name, params in plan.space.references.items():
            spec = plan.space.compile(params)
            _, _, cost = plan.cost(spec)
            fits = not plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]})
            if fits and spec not in specs:
                out.append({"spec": spec, "macs": cost["macs"], "params": cost["params"], "reference": name})
                specs.append(spec)
    tag = ",".join(sorted(args.where))  # --add N means N added under this --where: a re-run adds no more
    want = args.add - sum(a.get("added") == tag for a in archs)
    if want > 0:
        where = dict(w.split("=", 1) for w in args.where)
        out += [{**a, "added": tag} for a in pick_archs(plan, want, args.draws, where=where, skip=specs)]
    return out


def seeded(n: int, share: float) -> list[int]:
    """Which of n architectures (in MACs order) get a second reference seed: evenly spread."""
    k = round(n * share)
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k >= 2 else list(range(k))


def top_overlap(a: list[float], b: list[float], k: int = 3) -> float:
    """Share of b's k best that are among a's k best."""
    top = lambda xs: set(sorted(range(len(xs)), key=lambda i: -xs[i])[:k])  # noqa: E731
    return len(top(a) & top(b)) / k


def main(argv: list[str] | None = None) -> int:
    args = parse(argv or [])
    path = Path(args.calibration) if args.calibration else calibration_file(args.space, args.data)
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    ref_plans = [compose_plan(args, args.ref, seed) for seed in (0, 1)]  # every config checked first
    cand_plans = [compose_plan(args, f) for f in args.fids]
    if doc and doc.get("reference", {}).get("signature") != ref_plans[0].calibration_signature():
        raise ValueError(
            f"{path} holds a calibration against another reference ({doc['reference'].get('label')}); "
            "pass the same --reference and overrides, or another --calibration file"
        )
    archs = doc.get("archs") or pick_archs(ref_plans[0], args.archs, args.draws)
    # Which architectures have a second reference seed: chosen once, among the first set (an extension adds
    # first-seed runs only).
    two = doc.get("seeded") or seeded(len(archs), args.seeded)
    archs = archs + added_archs(args, ref_plans[0], archs)
    runs: dict[str, Any] = doc.get("runs", {})
    out = Path(args.out)
    doc.update(
        space=args.space, data=args.data, archs=archs, runs=runs, seeded=two,
        reference={"label": label(args.ref), "fidelity": args.ref, "metric": "test/acc",
                   "signature": ref_plans[0].calibration_signature()},
    )  # fmt: skip

    def save() -> None:
        if args.dry_run:  # a dry run reports from the file and leaves it as it was
            return
        # What the file holds, said in the file: a partial one says how to continue it.
        runs.update(runfile.read_runs(path))  # the other workers' runs count
        have = sum(k in runs for k in keys)
        if have < len(keys):
            doc["status"] = f"partial: {have} of {len(keys)} runs; re-run the command to continue"
        else:
            doc.pop("status", None)
        runfile.stamp(doc, "python -m experiments.bench fidelity " + " ".join(argv or []))
        runfile.merge_save(path, doc, where="--calibration file's folder")

    for rt in [] if args.dry_run else args.runtime_list:  # the trade-off's latencies, once per architecture
        for a in archs:
            if rt not in a.setdefault("latency", {}):
                lat_cfg = {**ref_plans[0].latency, "mode": "measured", "runtime": rt}
                a["latency"][rt] = latency_objective(ref_plans[0].deployed_spec(a["spec"]), lat_cfg)[0]
    todo = [(ref_plans[0], i, "reference", True) for i in range(len(archs))]
    todo += [(ref_plans[1], i, "reference", True) for i in two]
    todo += [
        (p, i, label(f), False) for p, f in zip(cand_plans, args.fids, strict=True) for i in range(len(archs))
    ]
    keys = [runfile.run_key(p, archs[i]["spec"], role) for p, i, role, _ in todo]
    missing = [(k, t) for k, t in zip(keys, todo, strict=True) if k not in runs]
    print(f"calibration {path}: {len(todo)} runs, {len(missing)} to train", flush=True)
    start = time.perf_counter()
    if not args.dry_run:
        for n, (key, (plan, i, role, test)) in enumerate(missing, 1):
            with claim(out / "locks" / f"{key}.lock") as mine:
                if not mine or key in runfile.read_runs(path):  # another worker trains it, or has trained it
                    continue
                print(f"[{n}/{len(missing)}] {role}: network {i + 1}/{len(archs)} "
                      f"({archs[i]['macs'] / 1e6:.1f} M MACs), seed {plan.seed}", flush=True)  # fmt: skip
                runs[key] = {
                    "arch": i,
                    "role": role,
                    "seed": plan.seed,
                    **runfile.train(plan, archs[i]["spec"], out, key, test=test),
                }
                save()
        runs.update(runfile.read_runs(path))  # the other workers' runs
    doc.update(summarise(args, archs, runs, ref_plans, cand_plans))
    save()
    report(doc, time.perf_counter() - start, path, written=not args.dry_run)
    return 0


def summarise(
    args: argparse.Namespace,
    archs: list[dict[str, Any]],
    runs: dict[str, Any],
    ref_plans: list[SearchPlan],
    cand_plans: list[SearchPlan],
) -> dict[str, Any]:
    """The reference's per-architecture accuracy, the seed ceiling and every candidate's agreement (only
    from finished runs; a candidate with missing runs is listed without statistics)."""

    def acc(plan: SearchPlan, i: int, role: str) -> float | None:
        r = runs.get(runfile.run_key(plan, archs[i]["spec"], role))
        return None if r is None else r["accuracy"]

    seed0 = [acc(ref_plans[0], i, "reference") for i in range(len(archs))]
    seed1 = [acc(ref_plans[1], i, "reference") for i in range(len(archs))]
    both = [i for i in range(len(archs)) if seed0[i] is not None and seed1[i] is not None]
    ceiling = spearman([seed0[i] for i in both], [seed1[i] for i in both]) if len(both) >= 3 else None
    ref = [
        None if a is None else statistics.fmean([a] + ([b] if b is not None else []))
        for a, b in zip(seed0, seed1, strict=True)
    ]
    trade = {}
    if all(r is not None for r in ref):
        for rt in sorted({k for a in archs for k in a.get("latency", {})}):
            if all(rt in a.get("latency", {}) for a in archs):
                trade[rt] = spearman(ref, [a["latency"][rt] for a in archs])
    cands = []
    for plan, fid in zip(cand_plans, args.fids, strict=True):
        role = label(fid)
        rows = [runs.get(runfile.run_key(plan, a["spec"], role)) for a in archs]
        entry: dict[str, Any] = {"label": role, "fidelity": fid, "signature": plan.calibration_signature()}
        # Over the architectures with both results: an extended file is still calibrated over its first set
        # while the added architectures train, and over all of them once they have.
        have = [i for i in range(len(archs)) if rows[i] is not None and ref[i] is not None]
        if len(have) >= 4:
            accs = [rows[i]["accuracy"] for i in have]
            refs = [ref[i] for i in have]
            rho = spearman(accs, refs)
            seconds = statistics.median(rows[i]["seconds"] for i in have)
            bar = RHO_BAR if ceiling is None else min(RHO_BAR, CEILING_SHARE * ceiling)
            entry.update(
                accuracy=accs, archs=have, seconds=seconds, rho=rho, top3=top_overlap(accs, refs),
                ci=list(bootstrap_ci(spearman, accs, refs, n_resamples=args.bootstrap)),
                n_archs=len(have), chance=sum(a < 0.15 for a in accs),
                meets=bool(rho >= bar and seconds <= args.max_seconds),
            )  # fmt: skip
        cands.append(entry)
    return {
        "reference_accuracy": ref, "reference_seed1": seed1, "ceiling": ceiling, "ceiling_n": len(both),
        "reference_seconds": statistics.median(r["seconds"] for r in runs.values() if r["role"] == "reference")
        if any(r["role"] == "reference" for r in runs.values()) else None,
        "trade_off": trade, "candidates": cands,
    }  # fmt: skip


def report(doc: dict[str, Any], seconds: float, path: Path, *, written: bool = True) -> None:
    """The calibration table, one line per candidate fidelity, then one per architecture."""
    ceiling = doc.get("ceiling")
    print(f"\nfidelity calibration: space {doc['space']}, {doc['data']}, {len(doc['archs'])} architectures; "
          f"reference {doc['reference']['label']} (test accuracy; seed ceiling "
          f"{'n/a' if ceiling is None else f'{ceiling:+.2f}'} over {doc['ceiling_n']})")  # fmt: skip
    for rt, rho in doc.get("trade_off", {}).items():
        print(f"  trade-off: rho(reference accuracy, {rt} latency) {rho:+.2f}")
    print(
        "\n| fidelity | s / trial (median) | rho with reference (95 % CI) | top-3 overlap | at chance | meets |"
    )
    print("|---|---|---|---|---|---|")
    for c in doc["candidates"]:
        if "rho" not in c:
            print(f"| {c['label']} | missing runs | | | | |")
            continue
        print(f"| {c['label']} | {c['seconds']:.1f} | {c['rho']:+.2f} ({c['ci'][0]:+.2f} to {c['ci'][1]:+.2f}) "
              f"| {c['top3']:.2f} | {c['chance']} | {'yes' if c['meets'] else 'no'} |")  # fmt: skip
    print(
        f"\n{seconds:.0f} s; {'written' if written else 'dry run, nothing written to'}: {path}",
        file=sys.stderr,
    )
