"""`python -m experiments.bench search --benchmark nb201`: the real search loop judged on NAS-Bench-201.

Every run is `nas.search.loop.run_search` over conf/space/nb201.yaml with `benchmark=nb201`: the trial code,
the samplers as conf/sampler/*.yaml configures them, duplicate reuse and the report are the real search's;
only the evaluation is a table look-up (nas.search.tabular). One 200-evaluation run per (sampler, device,
seed), in-memory storage and no W&B (per-trial overhead matters at tens of thousands of trials); each
finished run appends the table rows it evaluated, in order, to a JSON-lines file, so an interrupted
benchmark resumes at the next run. Scoring (regret vs the true front of all 15,625 cells, reference point
the table's worst accuracy and largest latency, fixed before running) and the summary table and figure are
`experiments.bench.nb201`'s: regret at 25 / 50 / 100 / 200 evaluations read off the same runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments.bench.nb201 import BUDGETS, compose, curves, load_results, report_sweep
from nas.claims import claimed
from nas.identity import identity_key
from nas.search.loop import run_search
from nas.tabular import nb201

SAMPLERS = ("random", "tpe", "nsga2", "gp")  # conf/sampler/<name>.yaml, as the real search uses them
DEVICES = ("gold_6226", "raspi4", "titanxp_1")


def options(p: argparse.ArgumentParser) -> None:
    """The options of the benchmark mode (added to `bench search`'s parser)."""
    p.add_argument("--devices", default=",".join(DEVICES), help="comma list of latency columns")
    p.add_argument("--dataset", default="cifar10", choices=nb201.DATASETS)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--figure", type=Path, default=None, help="regret figure (default: <out>/regret.png)")


def sweep(
    samplers: Sequence[str],
    devices: Sequence[str],
    seeds: Sequence[int],
    *,
    dataset: str,
    n: int,
    out: Path,
    extra: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every (sampler, device, seed) not yet in `out`/runs.jsonl, seed by seed (so a sweep cut short
    has every cell at about the same number of seeds), appending each run as it finishes.

    Each run is claimed (nas.claims) while it searches, so two processes started alike
    (`OMP_NUM_THREADS=1`, one per core) split the sweep; each then waits for the other's last runs, and
    both report the whole table."""
    log = log or (lambda s: print(s, flush=True))  # flushed: a sweep runs for many minutes
    path = out / f"runs_{dataset}_n{n}.jsonl"
    # A run is reused only if its sampler was configured as today (conf/sampler/<name>.yaml + `extra`):
    # changing a sampler's defaults must not leave its old figures in the table.
    configs = {
        s: sampler_key(compose(s, devices[0], 0, dataset=dataset, n=n, out=out, extra=extra))
        for s in samplers
    }

    def done() -> set[tuple[str, str, int]]:  # re-read: another process may have added runs
        return {
            (r["sampler"], r["device"], r["seed"])
            for r in load_results(path)
            if len(r["rows"]) >= n and r.get("sampler_key") == configs.get(r["sampler"])
        }

    out.mkdir(parents=True, exist_ok=True)
    table = nb201.load()
    cells = [(s, d, seed) for seed in seeds for d in devices for s in samplers]

    def lock(cell: tuple[str, str, int]) -> Path:
        return out / "locks" / f"{dataset}-n{n}-{cell[0]}-{cell[1]}-{cell[2]}.lock"

    for sampler, device, seed in claimed(cells, done=done, lock=lock, where="--out folder"):
        cfg = compose(sampler, device, seed, dataset=dataset, n=n, out=out, extra=extra)
        t0 = time.perf_counter()
        rows, simulated = evaluated_rows(cfg, out / "studies" / cfg["study_name"], table)
        secs = time.perf_counter() - t0
        rec = {"sampler": sampler, "sampler_key": configs[sampler], "device": device, "seed": seed, "dataset": dataset,
               "seconds": round(secs, 2), "simulated_time_s": round(simulated, 1), "rows": rows}  # fmt: skip
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log(f"{sampler} {device} seed {seed}: {secs:.1f} s ({secs / n * 1000:.0f} ms per trial)")
    return [
        r
        for r in load_results(path)
        if r["sampler"] in samplers
        and r["device"] in devices
        and r.get("sampler_key") == configs[r["sampler"]]
    ]


def sampler_key(cfg: dict[str, Any]) -> str:
    """The sampler's configuration of a run, its seed aside, as a short hash."""
    return identity_key({k: v for k, v in cfg["sampler"].items() if k != "seed"})[:12]


def evaluated_rows(cfg: dict[str, Any], study_dir: Path, table: nb201.Results) -> tuple[list[int], float]:
    """Run one search; (table rows of its counted trials in trial order, simulated training seconds).

    Read from the run's own report (trials.csv): the study lived in memory. Simulated time is the table's
    training time of each evaluated cell; a reused duplicate costs nothing.
    """
    result = run_search(cfg, study_dir=study_dir, echo=lambda s: None)
    if result.interrupted:
        raise KeyboardInterrupt
    with open(study_dir / "trials.csv", newline="") as fh:
        trials = sorted(csv.DictReader(fh), key=lambda r: int(r["trial"]))
    cost = table.cost(cfg["benchmark"]["dataset"], int(cfg["benchmark"]["epochs"]))
    rows: list[int] = []
    simulated = 0.0
    for t in trials:
        if t["state"] != "COMPLETE":  # rejected / failed trials are not evaluations
            continue
        code = nb201.params_code(t, key="param.edge{}")
        rows.append(table.index[code])
        simulated += 0.0 if t["reused_from"] else float(cost[rows[-1]])
    return rows, simulated


def main(args: argparse.Namespace) -> int:
    """Run the sweep and report it (args from `experiments.bench.search.parse`)."""
    samplers = [s for s in args.samplers.split(",") if s] if args.samplers else list(SAMPLERS)
    devices = [d for d in args.devices.split(",") if d]
    table = nb201.load()
    problems = {d: table.problem(args.dataset, d, 200) for d in devices}  # KeyError names the devices
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    out = Path(args.out)
    start = time.perf_counter()
    results = sweep(
        samplers, devices, seeds, dataset=args.dataset, n=args.trials, out=out, extra=args.overrides
    )
    results = [r for r in results if r["seed"] in seeds]
    regret = curves(results, problems)
    return report_sweep(
        regret, [b for b in BUDGETS if b <= args.trials], seconds=sum(r["seconds"] for r in results),
        evaluations=sum(len(r["rows"]) for r in results), runs=len(results), out=out, figure=args.figure,
        start=start,
    )  # fmt: skip
