"""How well each candidate fidelity ranks the architectures as the reference does: Spearman's rho with its
BCa bootstrap interval (nas.stats), the seed-to-seed ceiling, top-3 overlap, the bar, and the table."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from nas import runfile
from nas.calibrate.options import label
from nas.search.plan import SearchPlan
from nas.stats import bootstrap_ci, spearman

RHO_BAR, CEILING_SHARE = 0.7, 0.8  # the bar: rho >= 0.7, or >= 80 % of the seed ceiling


def top_overlap(a: list[float], b: list[float], k: int = 3) -> float:
    """Share of b's k best that are among a's k best."""
    top = lambda xs: set(sorted(range(len(xs)), key=lambda i: -xs[i])[:k])  # noqa: E731
    return len(top(a) & top(b)) / k


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
    """The calibration table, one line per candidate fidelity, after the reference's ceiling and trade-offs."""
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
