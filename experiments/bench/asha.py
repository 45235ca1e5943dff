"""`python -m experiments.bench asha`: multi-objective successive halving vs single fidelity on NAS-Bench-201.

At equal *simulated* training time (the table's 200-epoch training time per cell; a 12-epoch run costs
12/200 of it), the hypervolume regret of the cells each method fully evaluated (200 epochs), against the
true front of all 15,625 cells. Methods, per sampler S (random, tpe, ...):

- `S`: single fidelity, every proposed cell trained 200 epochs;
- `asha_S`: two rungs, 12 and 200 epochs: every cell is first "trained" 12 epochs (the table's 12-epoch
  accuracy), then promoted to 200 epochs by `nas.search.halving.decide`, the same rule the search's
  `scheduler=asha` takes (top 1/eta by non-dominated sorting on (accuracy at the rung, latency), crowding
  distance, and no promotion of a cell that cannot reach the front). Cells not promoted are told PRUNED,
  as the search records them; only 200-epoch results are scored.

One worker, Optuna ask/tell with in-memory storage; the sampler sees a 200-epoch result as one seed's run
drawn per trial (as if trained once), the run is scored with the seeds' mean. A cell proposed again reuses
its result at no cost (the search's reuse=study). The budget is `--budget` times the table's mean 200-epoch
training time; each run is cut at that time and scored at every fraction of it in BUDGETS.

    python -m experiments.bench asha --samplers random,tpe_mv_norepeat --single tpe --seeds 30

One JSON line per (method, device, seed) run in --out, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from experiments.bench._nb201_samplers import SAMPLERS, build_sampler
from experiments.bench.nb201 import load_problems
from nas.pareto import Problem
from nas.search import halving
from nas.stats import summarize
from nas.tabular import nb201

BUDGETS = (25, 50, 100)  # simulated time in units of the table's mean 200-epoch training time
SENSES = (1, -1)  # maximise accuracy, minimise latency
MAX_TRIALS_PER_UNIT = 10  # trials cap per budget unit (a sampler repeating reused cells costs no time)


def run_one(
    table: nb201.Results,
    sampler: optuna.samplers.BaseSampler,
    *,
    dataset: str,
    device: str,
    budget_s: float,
    seed: int,
    asha: bool,
    eta: int = 3,
) -> dict[str, Any]:
    """One search until `budget_s` simulated seconds: the 200-epoch results as [[finish time s, row], ...]."""
    latency = table.latency(device)
    res = table.results_200(dataset)
    acc12 = table.accuracy(dataset, 12)
    cost12, cost200 = table.cost(dataset, 12), table.cost(dataset, 200)
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    clock = 0.0
    full: list[list[float]] = []  # [time, row]
    seen: dict[int, tuple[str, list[float] | None]] = {}  # row -> (state, values told)
    low: list[list[float]] = []  # 12-epoch vectors of every cell that reached rung 0
    pairs: list[tuple[float, float]] = []  # (12-epoch acc, 200-epoch acc) of promoted cells
    top: list[list[float]] = []  # 200-epoch vectors (as the sampler saw them)
    n_trials = n_promoted = 0
    cap = MAX_TRIALS_PER_UNIT * max(1, round(budget_s / float(np.mean(cost200))))
    while clock < budget_s and n_trials < cap:
        trial = study.ask()
        n_trials += 1
        code = nb201.suggest_code(trial)
        i = table.index[code]
        if i in seen:  # reuse: same result, no cost
            state, values = seen[i]
            study.tell(trial, values, state=optuna.trial.TrialState[state])
            continue
        run = int(rng.integers(6))  # the seed run this trial "trains" (6 = lcm of 2 and 3 seeds)
        a200 = float(res["val_acc"][i, run % res["n_seeds"][i]])
        vec200 = [a200, float(latency[i])]
        if asha:
            clock += float(cost12[i])
            vec12 = [float(acc12[i]), float(latency[i])]
            decision = halving.decide(vec12, low, top, halving.best_gain(pairs), SENSES, eta)
            low.append(vec12)
            if not decision.promote or clock >= budget_s:
                seen[i] = ("PRUNED", None)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            pairs.append((vec12[0], a200))
            n_promoted += 1
        clock += float(cost200[i])
        if clock > budget_s:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # cut by the budget: no result
            break
        full.append([clock, i])
        top.append(vec200)
        seen[i] = ("COMPLETE", vec200)
        study.tell(trial, vec200)
    return {"full": full, "trials": n_trials, "promoted": n_promoted, "clock_s": clock}


def method_names(samplers: Sequence[str], single: Sequence[str] = ()) -> list[str]:
    """Each of `samplers` single-fidelity and inside ASHA, then each of `single` single-fidelity only."""
    out = [m for s in samplers for m in (s, f"asha_{s}")]
    return out + [s for s in single if s not in out]


def sweep(
    table: nb201.Results,
    samplers: Sequence[str],
    devices: Sequence[str],
    seeds: Sequence[int],
    *,
    dataset: str,
    budget: int,
    eta: int,
    out: Path,
    single: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run every (method, device, seed) not yet in `out`, appending each run as it finishes."""
    unit = float(np.mean(table.cost(dataset, 200)))
    have = _load(out)
    done = {(r["method"], r["device"], r["seed"]) for r in have}
    out.parent.mkdir(parents=True, exist_ok=True)
    methods = method_names(samplers, single)
    for method in methods:
        asha = method.startswith("asha_")
        sampler = method.removeprefix("asha_")
        for device in devices:
            for seed in seeds:
                if (method, device, seed) in done:
                    continue
                t0 = time.perf_counter()
                rec = run_one(
                    table,
                    build_sampler(sampler, seed),
                    dataset=dataset,
                    device=device,
                    budget_s=budget * unit,
                    seed=seed,
                    asha=asha,
                    eta=eta,
                )
                rec.update(
                    method=method, device=device, seed=seed, unit_s=unit, seconds=time.perf_counter() - t0
                )
                with out.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(
                    f"{method} {device} seed {seed}: {rec['seconds']:.1f} s, {rec['trials']} trials",
                    flush=True,
                )
    return [
        r
        for r in _load(out)
        if r["method"] in method_names(samplers) and r["device"] in devices and r["seed"] in seeds
    ]


def summary(
    runs: Sequence[Mapping[str, Any]], problems: Mapping[str, Problem], budgets: Sequence[int], baseline: str
) -> list[dict[str, Any]]:
    """Per (method, device, budget): regret mean with a 95 % t-interval, ratio to `baseline`, trials, promoted."""
    regret: dict[tuple[str, str, int], list[float]] = {}
    extra: dict[tuple[str, str, int], list[tuple[int, int]]] = {}
    for r in runs:
        for b in budgets:
            rows = [int(i) for t, i in r["full"] if t <= b * r["unit_s"]]
            p = problems[r["device"]]
            regret.setdefault((r["method"], r["device"], b), []).append(p.regret(rows) if rows else 1.0)
            extra.setdefault((r["method"], r["device"], b), []).append((len(rows), r["trials"]))
    out = []
    for (method, device, b), xs in sorted(regret.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        s = summarize(xs)
        base = regret.get((baseline, device, b))
        full = np.mean([n for n, _ in extra[(method, device, b)]])
        out.append(
            {
                "method": method,
                "device": device,
                "budget": b,
                "runs": s.n,
                "regret": s.mean,
                "ci95": s.half,
                f"x_{baseline}": s.mean / float(np.mean(base)) if base else math.nan,
                "full_evals": float(full),
            }
        )
    return out


def format_table(rows: Sequence[Mapping[str, Any]], baseline: str) -> str:
    """The summary as a fixed-width text table."""
    head = f"{'method':<20} {'device':<11} {'budget':>6} {'runs':>4} {'regret':>18} {'x ' + baseline:>8} {'200-ep':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['method']:<20} {r['device']:<11} {r['budget']:>6} {r['runs']:>4} "
            f"{r['regret']:>9.4f} ± {r['ci95']:<6.4f} {r[f'x_{baseline}']:>8.2f} {r['full_evals']:>7.1f}"
        )
    return "\n".join(lines)


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m experiments.bench asha", description=__doc__.split("\n")[0])
    p.add_argument(
        "--samplers",
        default="random,tpe_mv_norepeat",
        help=f"single and inside ASHA; of: {', '.join(SAMPLERS)}",
    )
    p.add_argument("--single", default="tpe", help="comma list of samplers run at single fidelity only")
    p.add_argument("--devices", default="gold_6226", help="comma list of latency columns")
    p.add_argument("--dataset", default="cifar10", choices=nb201.DATASETS)
    p.add_argument("--seeds", type=int, default=30, help="runs per (method, device)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=max(BUDGETS), help="simulated time, in mean 200-epoch runs")
    p.add_argument("--eta", type=int, default=3, help="promote the top 1/eta of a rung")
    p.add_argument("--baseline", default="tpe", help="method the ratio column divides by")
    p.add_argument("--out", type=Path, default=Path("outputs/bench/asha"), help="folder for results")
    p.add_argument(
        "--data", default=None, help=f"folder of the CSV tables (default ${nb201.ENV_VAR} or ../shared)"
    )
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    samplers = [s for s in args.samplers.split(",") if s]
    single = [s for s in args.single.split(",") if s]
    unknown = [s for s in samplers + single if s not in SAMPLERS]
    if unknown or args.eta < 2 or args.budget < 1:
        print(
            f"unknown sampler(s) {', '.join(unknown)}; valid samplers: {', '.join(SAMPLERS)}"
            if unknown
            else "--eta must be >= 2 and --budget >= 1",
            file=sys.stderr,
        )
        return 2
    try:
        table, devices, problems = load_problems(args.data, args.dataset, args.devices)
    except (OSError, KeyError, ValueError, ModuleNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = args.out / f"runs_{args.dataset}_b{args.budget}_eta{args.eta}.jsonl"
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = sweep(
        table,
        samplers,
        devices,
        seeds,
        dataset=args.dataset,
        budget=args.budget,
        eta=args.eta,
        out=out,
        single=single,
    )
    rows = summary(runs, problems, [b for b in BUDGETS if b <= args.budget], args.baseline)
    print(format_table(rows, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
