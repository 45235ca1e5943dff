"""A calibration's runs: the reference (two seeds for some) and every candidate over the same architectures,
those the file lacks trained one by one under a claim (nas.claims: one process per core splits them), each
merged into the file as it finishes, then the agreement computed from the file and printed."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from nas import runfile
from nas.calibrate.agreement import report, summarise
from nas.calibrate.archs import added_archs, pick_archs, seeded
from nas.calibrate.options import compose_plan, label
from nas.claims import claim
from nas.latency import latency_objective
from nas.search.calibration import calibration_file


def calibrate(args: argparse.Namespace, *, command: str) -> dict[str, Any]:
    """Train what the calibration file lacks for `args` (nas.calibrate.options.parse), write the file (not
    under --dry-run), print the table; returns the file's content. `command` is recorded in the file.
    ValueError for a file calibrated against another reference, or a space without enough valid draws."""
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
        runfile.stamp(doc, command)
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
    return doc
