"""`python -m experiments.bench nb201`: samplers' hypervolume regret on NAS-Bench-201, against the true front.

Drives Optuna's ask/tell directly over the cell's six categorical edges, the table as the objective
(maximise accuracy, minimise the device's latency), in-memory storage, so one run of 200 evaluations takes
a second or two. Every evaluation is a trial (a duplicate cell counts, as a reused trial counts in a real
search); the sampler sees one seed's 200-epoch accuracy drawn from the trial (as if trained once), and a
run is scored with the cells' mean accuracy against the front of all 15,625 cells (reference point: the
table's worst accuracy and largest latency), so regret is never negative.

    python -m experiments.bench nb201 --samplers random,tpe_mv --devices gold_6226,raspi4 --seeds 30

Results go to one JSON-lines file per (sampler, device, seed) run, so an interrupted sweep resumes; the
summary (regret at each budget: mean with a 95 % t-interval, ratio to random search, evaluations to reach
95 % / 99 % of HV*) is printed, written as CSV and drawn as regret vs evaluations (log-log).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from experiments.bench._nb201_samplers import KNOWN_LATENCY, LOG_LATENCY, SAMPLERS, build_sampler
from nas.config import CONF_DIR, to_plain
from nas.pareto import Problem, evaluations_to_reach
from nas.stats import summarize, t_quantile
from nas.tabular import nb201

BUDGETS = (25, 50, 100, 200)
REACH = (0.95, 0.99)  # fractions of HV*
DEFAULT_DEVICES = ("gold_6226", "raspi4", "titanxp_1")


def run_one(
    table: nb201.Results,
    sampler: optuna.samplers.BaseSampler,
    *,
    dataset: str,
    device: str,
    n: int,
    seed: int,
    epochs: int = 200,
    observe_mean: bool = False,
    log_latency: bool = False,
) -> list[int]:
    """Rows of the cells one search evaluated, in order (`n` ask/tell trials with `sampler`).

    `log_latency`: the sampler sees log(latency) (the same Pareto set: dominance is invariant under a
    monotone map; a model of the objective, as GP's, sees a less skewed one); the run is scored as always.
    """
    latency = np.log(table.latency(device)) if log_latency else table.latency(device)
    seeds = None if observe_mean or epochs == 12 else table.results_200(dataset)["n_seeds"]
    runs = np.random.default_rng(seed).integers(
        6, size=n
    )  # the seed run each trial "trains" (see Results.lookup)
    accs = {k: table.accuracy(dataset, epochs, seed=k) for k in range(6)} if seeds is not None else None
    mean = table.accuracy(dataset, epochs)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    rows = []
    for k in range(n):
        trial = study.ask()
        code = nb201.suggest_code(trial)
        i = table.index[code]
        acc = float(accs[int(runs[k])][i]) if accs is not None else float(mean[i])
        study.tell(trial, [acc, float(latency[i])])
        rows.append(i)
    return rows


def latency_oracle(table: nb201.Results, device: str) -> Callable[[Mapping[str, Any]], float]:
    """params (edge0..edge5 -> op) -> the cell's latency on `device`: what a search knows before evaluating."""
    latency, index = table.latency(device), table.index
    memo: dict[tuple, float] = {}  # a sampler prices thousands of cells a proposal, most of them again

    def known(params: Mapping[str, Any]) -> float:
        key = tuple(params[f"edge{e}"] for e in range(len(nb201.EDGES)))
        if key not in memo:
            memo[key] = float(latency[index[nb201.params_code(params)]])
        return memo[key]

    return known


def compose(
    sampler: str, device: str, seed: int, *, dataset: str, n: int, out: Path, extra: Sequence[str]
) -> dict:
    """The search config of one run: the sampler's conf/sampler config seeded with `seed`, which is also
    the training seed (so a 200-epoch accuracy is one seed's run per cell, as if each was trained once)."""
    overrides = [
        "space=nb201", "benchmark=nb201", f"benchmark.device={device}", f"benchmark.dataset={dataset}",
        f"sampler={sampler}", f"seed={seed}", f"n_trials={n}", f"study_name=nb201-{device}-{sampler}-s{seed}",
        # In memory: a journal file per run took 42 s of wall time for 200 trials, memory 4.7 s (its lock
        # waits; loaded machine). A run is cached once finished, so only an unfinished run is redone.
        "storage=memory", "logger=none", "html=false", "onnx=false", "progress=false",
        "reuse=study",  # a duplicate within a run reuses its result; runs never share one
    ]  # fmt: skip
    if dataset == "cifar100":
        overrides.append("data=cifar100")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(hydra_compose("search", overrides=[*overrides, *extra]))
    cfg["export_dir"] = str(out / "exports")  # keep conf/model/exported for real searches
    return cfg


def cost_oracle(dataset: str) -> Callable[[Mapping[str, Any]], dict[str, float] | None]:
    """params (edge0..edge5 -> op) -> the network's params / MACs as a search counts them before evaluating
    (`nas.search.trial.cost_oracle` through the nb201 evaluator, the network sized for `dataset` as `bench
    search` sizes it): the same for every device, so one oracle serves a dataset's runs."""
    from nas.search.evaluators import make_evaluator
    from nas.search.plan import SearchPlan
    from nas.search.trial import cost_oracle as search_cost_oracle

    cfg = compose(
        "random", DEFAULT_DEVICES[0], 0, dataset=dataset, n=1, out=Path("outputs/bench/nb201"), extra=()
    )
    plan = SearchPlan.from_cfg(cfg)
    return search_cost_oracle(plan, make_evaluator(plan, Path("."), None))


def curves(results: Sequence[Mapping[str, Any]], problems: Mapping[str, Problem]) -> dict[tuple, np.ndarray]:
    """Regret curves stacked per (sampler, device): an array (runs, evaluations)."""
    out: dict[tuple, list[np.ndarray]] = {}
    for r in results:
        out.setdefault((r["sampler"], r["device"]), []).append(problems[r["device"]].regret_curve(r["rows"]))
    n = {key: min(len(c) for c in cs) for key, cs in out.items()}
    return {key: np.stack([c[: n[key]] for c in cs]) for key, cs in out.items()}


def summary(
    regret: Mapping[tuple, np.ndarray], budgets: Sequence[int] = BUDGETS, *, baseline: str = "random"
) -> list[dict[str, Any]]:
    """One row per (sampler, device, budget): regret mean and 95 % CI, ratio to `baseline`, evals to reach."""
    rows = []
    for (sampler, device), c in sorted(regret.items()):
        base = regret.get((baseline, device))
        for b in budgets:
            if b > c.shape[1]:
                continue
            s = summarize(c[:, b - 1])
            ratio = math.nan
            if base is not None and b <= base.shape[1]:
                ratio = s.mean / float(np.mean(base[:, b - 1]))
            row = {
                "sampler": sampler,
                "device": device,
                "budget": b,
                "runs": s.n,
                "regret": s.mean,
                "ci95": s.half,
                "ratio_to_random": ratio,
            }
            for f in REACH:
                reach = np.array([evaluations_to_reach(run[:b], f) for run in c])
                row[f"evals_to_{round(f * 100)}"] = float(np.median(reach))  # inf when most never reached
                row[f"reached_{round(f * 100)}"] = float(np.mean(np.isfinite(reach)))
            rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a fixed-width text table."""
    head = f"{'sampler':<22} {'device':<11} {'N':>4} {'runs':>4} {'regret':>18} {'x random':>8} {'n95':>6} {'n99':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['sampler']:<22} {r['device']:<11} {r['budget']:>4} {r['runs']:>4} "
            f"{r['regret']:>9.4f} ± {r['ci95']:<6.4f} {r['ratio_to_random']:>8.2f} "
            f"{r['evals_to_95']:>6.0f} {r['evals_to_99']:>6.0f}"
        )
    return "\n".join(lines)


def plot(regret: Mapping[tuple, np.ndarray], path: Path) -> Path:
    """Mean regret (with its 95 % CI band) vs evaluations per sampler, one panel per device, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = sorted({d for _, d in regret})
    fig, axes = plt.subplots(1, len(devices), figsize=(4.5 * len(devices), 3.8), squeeze=False, sharey=True)
    for ax, device in zip(axes[0], devices, strict=True):
        for (sampler, d), c in sorted(regret.items()):
            if d != device:
                continue
            x = np.arange(1, c.shape[1] + 1)
            mean = c.mean(axis=0)
            n = c.shape[0]  # the table's t-interval (summary), per evaluation
            half = t_quantile(0.95, n - 1) * c.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else 0 * mean
            (line,) = ax.plot(x, mean, label=f"{sampler} ({c.shape[0]})")
            ax.fill_between(
                x, np.clip(mean - half, 1e-6, None), mean + half, color=line.get_color(), alpha=0.15
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(device)
        ax.set_xlabel("evaluations")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("hypervolume regret 1 - HV/HV*")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_sweep(
    regret: Mapping[tuple, np.ndarray],
    budgets: Sequence[int],
    *,
    seconds: float,
    evaluations: int,
    runs: int,
    out: Path,
    figure: Path | None,
    start: float,
) -> int:
    """A sweep's end (bench search --benchmark nb201 | surrogate): the table printed, the seconds per trial,
    summary.json and the regret figure in `out`; 0."""
    rows = summary(regret, budgets)
    print(format_table(rows))
    print(f"\n{runs} runs, {seconds / max(1, evaluations) * 1000:.0f} ms per trial (mean, whole search loop); "
          f"this invocation {(time.perf_counter() - start) / 60:.1f} min")  # fmt: skip
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    print(f"figure: {plot(regret, figure or out / 'regret.png')}")
    return 0


def load_results(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in a results file (one JSON object per line)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sweep(
    table: nb201.Results,
    samplers: Sequence[str],
    devices: Sequence[str],
    seeds: Sequence[int],
    *,
    dataset: str,
    n: int,
    out: Path,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every (sampler, device, seed) not yet in `out`, appending each run as it finishes."""
    done = {(r["sampler"], r["device"], r["seed"]) for r in load_results(out) if len(r["rows"]) >= n}
    out.parent.mkdir(parents=True, exist_ok=True)
    costs = cost_oracle(dataset) if set(samplers) & set(KNOWN_LATENCY) else None
    for sampler in samplers:
        for device in devices:
            for seed in seeds:
                if (sampler, device, seed) in done:
                    continue
                t0 = time.perf_counter()
                sampled = build_sampler(sampler, seed, known=latency_oracle(table, device), costs=costs)
                log_lat = sampler in LOG_LATENCY
                rows = run_one(
                    table, sampled, dataset=dataset, device=device, n=n, seed=seed, log_latency=log_lat
                )
                secs = time.perf_counter() - t0
                rec = {
                    "sampler": sampler,
                    "device": device,
                    "seed": seed,
                    "dataset": dataset,
                    "seconds": secs,
                }
                with out.open("a") as fh:
                    fh.write(json.dumps({**rec, "rows": rows}) + "\n")
                log(f"{sampler} {device} seed {seed}: {secs:.1f} s")
    return [r for r in load_results(out) if r["sampler"] in samplers and r["device"] in devices]


def load_problems(data: Any, dataset: str, devices: str) -> tuple[nb201.Results, list[str], dict[str, Problem]]:
    """The tables, the comma-separated `devices` as a list, and each device's 200-epoch problem (true front,
    reference point) for `dataset`; raises what loading raises (the commands turn it into one message)."""
    table = nb201.load(data)
    names = [d for d in devices.split(",") if d]
    return table, names, {d: table.problem(dataset, d, 200) for d in names}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m experiments.bench nb201", description=__doc__.split("\n")[0])
    p.add_argument(
        "--samplers",
        default="random,tpe,tpe_mv_norepeat,nsga2",
        help=f"comma list of: {', '.join([*SAMPLERS, *KNOWN_LATENCY])}",
    )
    p.add_argument("--devices", default=",".join(DEFAULT_DEVICES), help="comma list of latency columns")
    p.add_argument("--dataset", default="cifar10", choices=nb201.DATASETS)
    p.add_argument("--seeds", type=int, default=30, help="runs per (sampler, device)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--evaluations", type=int, default=max(BUDGETS), help="trials per run")
    p.add_argument("--out", type=Path, default=Path("outputs/bench/nb201"), help="folder for results")
    p.add_argument(
        "--data", default=None, help=f"folder of the CSV tables (default ${nb201.ENV_VAR} or ../shared)"
    )
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    samplers = [s for s in args.samplers.split(",") if s]
    valid = [*SAMPLERS, *KNOWN_LATENCY]
    unknown = [s for s in samplers if s not in valid]
    if unknown:
        print(f"unknown sampler(s) {', '.join(unknown)}; valid samplers: {', '.join(valid)}", file=sys.stderr)
        return 2
    try:
        table, devices, problems = load_problems(args.data, args.dataset, args.devices)
    except (OSError, KeyError, ValueError, ModuleNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results_file = args.out / f"runs_{args.dataset}_n{args.evaluations}.jsonl"
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results = sweep(
        table, samplers, devices, seeds, dataset=args.dataset, n=args.evaluations, out=results_file
    )
    results = [r for r in results if r["seed"] in seeds]
    regret = curves(results, problems)
    rows = summary(regret, [b for b in BUDGETS if b <= args.evaluations])
    print(format_table(rows))
    _write_csv(args.out / "summary.csv", rows)
    print(f"figure: {plot(regret, args.out / 'regret.png')}")
    return 0


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["sampler"])
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
