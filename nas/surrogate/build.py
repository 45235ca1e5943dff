"""The surrogate benchmark's data: architectures of a space trained once at its calibrated search fidelity.

The architectures are, in order: the textbook networks the space holds (its `references`), then distinct
random draws (`Space.sample_random(seed)`, seeds 0, 1, ...) that meet the space's constraints at the data's
size. Each is trained at the search's own fidelity (the space's default, the same `nas.fit` path as a trial)
with seed 0, and the first `seeded` random ones also with seed 1: the fidelity's seed-to-seed agreement, the
ceiling a surrogate of it can reach. Runs are keyed by what decides their result (nas.runfile), so a changed
fidelity or optimiser never mixes with older runs, and a list that grows keeps what was trained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas import runfile
from nas.claims import claim
from nas.search.plan import SearchPlan
from nas.space import SpecRejected

ROLE = "surrogate"
# Seed-0 runs of the first architectures come before any second seed, so a file cut short still holds the
# references and a spread of networks before it spends runs on the ceiling.
FIRST = 60


def architectures(plan: SearchPlan, n: int, *, max_draws: int = 100_000) -> list[dict[str, Any]]:
    """The space's references, then random draws meeting its constraints, `n` distinct ones in all:
    [{params, macs, n_params, reference}] (costs at the data's size, as the search's constraints see them)."""
    space = plan.space
    out: dict[str, dict[str, Any]] = {}

    def add(params: dict[str, Any], reference: str | None) -> None:
        key = json.dumps(params, sort_keys=True)
        if key in out:
            return
        try:
            cost = plan.cost(space.compile(params))[2]
        except (SpecRejected, ValueError):
            return
        if space.constraints.violations({"params": cost["params"], "macs": cost["macs"]}):
            return
        out[key] = {"params": params, "macs": int(cost["macs"]), "n_params": int(cost["params"]),
                    "reference": reference}  # fmt: skip

    for name, params in space.references.items():
        add(dict(params), name)
    seed = 0
    while len(out) < n and seed < max_draws:
        try:
            add(space.sample_random(seed).params, None)
        except SpecRejected:
            pass
        seed += 1
    if len(out) < n:
        raise ValueError(f"space {space.name!r}: only {len(out)} valid architectures in {max_draws} draws")
    return list(out.values())[:n]


def schedule(archs: list[dict[str, Any]], seeded: int) -> list[tuple[int, int]]:
    """(architecture, seed) runs in training order: seed 0 of the first FIRST, the second seeds of the first
    `seeded` random architectures, then seed 0 of the rest."""
    random_ones = [i for i, a in enumerate(archs) if a["reference"] is None][:seeded]
    first = [(i, 0) for i in range(min(FIRST, len(archs)))]
    return first + [(i, 1) for i in random_ones] + [(i, 0) for i in range(len(first), len(archs))]


def build(
    plans: list[SearchPlan],
    path: Path,
    *,
    n: int,
    seeded: int,
    out: Path,
    command: str,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train what the file lacks (plans[s]: the search plan with training seed s); returns the file's content.

    One process per core may run this on the same file: each run is claimed while it trains."""
    plan = plans[0]
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    signature = plan.calibration_signature()
    if doc and doc.get("signature") != signature:
        raise ValueError(
            f"{path} holds runs at another fidelity or training setup than this command's (its signature "
            "differs: epochs, data fraction, image size, optimiser...); pass the same options, or another --file"
        )
    archs = doc.get("archs") or []
    if len(archs) < n:  # a list that grows keeps its first architectures (the draws are deterministic)
        archs = architectures(plan, n)
    runs: dict[str, Any] = doc.get("runs", {})
    doc.update(space=plan.space.name, data=plan.base["data"]["name"], fidelity=plan.fidelity.as_dict(),
               metric=plan.metric, signature=signature, archs=archs, runs=runs)  # fmt: skip
    todo = schedule(archs, seeded)
    keys = [runfile.run_key(plans[s], plan.space.compile(archs[i]["params"]), ROLE) for i, s in todo]

    def save() -> None:
        runs.update(runfile.read_runs(path))
        have = sum(k in runs for k in keys)
        doc["status"] = "complete" if have == len(keys) else (
            f"partial: {have} of {len(keys)} runs; re-run the command to continue")  # fmt: skip
        runfile.stamp(doc, command)
        runfile.merge_save(path, doc, where="--file's folder")

    missing = [(k, t) for k, t in zip(keys, todo, strict=True) if k not in runs]
    echo(f"surrogate data {path}: {len(archs)} architectures, {len(todo)} runs, {len(missing)} to train")
    if dry_run:
        return doc
    path.parent.mkdir(parents=True, exist_ok=True)
    for count, (key, (i, s)) in enumerate(missing, 1):
        with claim(out / "locks" / f"{key}.lock") as mine:
            if not mine or key in runfile.read_runs(path):  # another worker trains it, or has trained it
                continue
            a = archs[i]
            name = f" ({a['reference']})" if a["reference"] else ""
            start = time.perf_counter()
            runs[key] = {"arch": i, "seed": s, **runfile.train(plans[s], plan.space.compile(a["params"]), out,
                                                              key, test=False)}  # fmt: skip
            echo(f"[{count}/{len(missing)}] network {i}{name}, seed {s}: {a['macs'] / 1e6:.1f} M MACs, "
                 f"accuracy {runs[key]['accuracy']:.4f}, {time.perf_counter() - start:.0f} s")  # fmt: skip
            save()
    save()
    return doc
