"""Which architectures a calibration trains: valid draws of the space spread over their MACs, those a changed
space adds to a file (its textbook networks, a new region), and which of them get a second reference seed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from nas.search.plan import SearchPlan
from nas.space import SpecRejected


def spread_by(items: list[Any], key: Callable[[Any], float], n: int) -> list[Any]:
    """`n` of `items` evenly spaced in the order of `key` (both extremes included)."""
    items = sorted(items, key=key)
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


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
