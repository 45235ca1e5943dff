"""`python -m experiments.bench search --benchmark surrogate`: the real search loop judged on a trained space's
surrogate (nas.surrogate), the space users search, over many seeds.

Every run is `nas.search.loop.run_search` over `space=<space> benchmark=surrogate`: the trial code, the samplers
as conf/sampler/*.yaml configures them, duplicate reuse and the report are the real search's; only the
evaluation is the surrogate's look-up (its mean plus the fidelity's seed noise, drawn from the run's seed, as if
each network were trained once). One run per (sampler, seed), each its own SQLite study under `--out`/studies:
an interrupted run resumes, a finished one is reused while its sampler's config is unchanged, and two processes
started alike split the sweep (nas.claims). Scoring: each evaluated network's mean accuracy (no noise) against
the latency objective, hypervolume regret vs the surrogate's approximated true front (`python -m nas.surrogate
front`; nas.surrogate.front.regret_curve) at 25 / 50 / 100 evaluations and the run's budget; the table and figure are
`experiments.bench.nb201`'s (the space in the device column).

Successive halving is not in the table: the surrogate models one fidelity (rungs would need the accuracy of a
network at several training lengths, which the data file does not hold), so `scheduler=asha` is refused under
`benchmark=surrogate`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from experiments.bench._search_nb201 import sampler_key
from experiments.bench.nb201 import load_results, report_sweep
from nas.claims import claimed
from nas.config import CONF_DIR, to_plain
from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.records import records
from nas.search.storage import make_storage
from nas.surrogate.front import regret_curve
from nas.surrogate.options import front_file

SAMPLERS = ("random", "tpe", "gp", "nsga2", "ehvi")  # conf/sampler/<name>.yaml, as the real search uses them
BUDGETS = (25, 50, 100)


def compose(
    sampler: str, seed: int, *, space: str, data: str, n: int, out: Path, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The search config of one run: the sampler's conf/sampler config seeded with `seed`, also the seed of the
    surrogate's noise draws (one noisy result per network and run, as if each run trained once)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    overrides = [
        f"space={space}", f"data={data}", "benchmark=surrogate", f"sampler={sampler}", f"seed={seed}",
        f"n_trials={n}", f"study_name=surrogate-{space}-{sampler}-s{seed}", "logger=none", "html=false",
        "onnx=false", "progress=false", "baselines.enabled=false", "workers=1",
        "reuse=study",  # a duplicate within a run reuses its result; runs never share one
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(hydra_compose("search", overrides=[*overrides, *extra]))
    cfg["export_dir"] = None  # the front's YAMLs stay in the run's study folder
    return cfg


def front_doc(cfg: dict[str, Any]) -> dict[str, Any]:
    """The approximated true front the runs are scored against, checked against the surrogate and latency
    objective the runs use (ValueError naming the command that makes it)."""
    plan = SearchPlan.from_cfg(cfg)
    space, data = plan.space.name, str(plan.base["data"].get("name"))
    path = front_file(plan.benchmark.data_path(plan))
    make = f"python -m nas.surrogate front --space {space} --data {data}"
    if not path.is_file():
        raise ValueError(f"no approximated true front at {path}: {make}")
    doc = json.loads(path.read_text())
    model = plan.benchmark.load(plan)
    if doc.get("model") != model.hash:
        raise ValueError(f"{path} was approximated for another fit of the surrogate: {make}")
    mode = plan.latency.get("mode")
    if doc.get("latency") != mode:
        raise ValueError(
            f"{path} scores latency {doc.get('latency')!r}, the runs use {mode!r}: {make} --latency {mode}"
        )
    return doc


def evaluated_points(cfg: dict[str, Any], study_dir: Path) -> list[tuple[float, float]]:
    """Run one search (resuming its study); (mean accuracy, latency) of each counted evaluation, in trial order.
    A reused duplicate counts (as in a real search) with its source's values; a rejected trial does not."""
    result = run_search(cfg, study_dir=study_dir, echo=lambda s: None)
    if result.interrupted:
        raise KeyboardInterrupt
    study = optuna.load_study(study_name=cfg["study_name"], storage=make_storage(cfg["storage"], study_dir))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    means = {t.number: t.user_attrs.get("surrogate_mean") for t in trials}
    points = []
    for r in records(trials):
        if r["state"] != "COMPLETE":
            continue
        mean = means[r["trial"]] if means[r["trial"]] is not None else means.get(r["reused_from"])
        points.append((float(mean), float(r["latency"])))
    return points


def sweep(
    samplers: Sequence[str],
    seeds: Sequence[int],
    *,
    space: str,
    data: str,
    n: int,
    out: Path,
    extra: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every (sampler, seed) not yet in `out`/runs_<space>_n<n>.jsonl, seed by seed, appending each run as it
    finishes; each run claimed while it searches, so two processes started alike split the sweep."""
    log = log or (lambda s: print(s, flush=True))
    path = out / f"runs_{space}_n{n}.jsonl"
    configs = {
        s: sampler_key(compose(s, 0, space=space, data=data, n=n, out=out, extra=extra)) for s in samplers
    }

    def done() -> set[tuple[str, int]]:  # re-read: another process may have added runs
        return {
            (r["sampler"], r["seed"])
            for r in load_results(path)
            if len(r["points"]) >= n and r.get("sampler_key") == configs.get(r["sampler"])
        }

    out.mkdir(parents=True, exist_ok=True)
    cells = [(s, seed) for seed in seeds for s in samplers]

    def lock(cell: tuple[str, int]) -> Path:
        return out / "locks" / f"{space}-n{n}-{cell[0]}-{cell[1]}.lock"

    for sampler, seed in claimed(cells, done=done, lock=lock, where="--out folder"):
        cfg = compose(sampler, seed, space=space, data=data, n=n, out=out, extra=extra)
        t0 = time.perf_counter()
        points = evaluated_points(cfg, out / "studies" / cfg["study_name"])
        secs = time.perf_counter() - t0
        rec = {"sampler": sampler, "sampler_key": configs[sampler], "seed": seed, "space": space,
               "seconds": round(secs, 2), "points": [list(p) for p in points]}  # fmt: skip
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log(f"{sampler} seed {seed}: {secs:.1f} s ({secs / max(1, len(points)) * 1000:.0f} ms per trial)")
    return [
        r
        for r in load_results(path)
        if r["sampler"] in samplers and r.get("sampler_key") == configs[r["sampler"]] and r["seed"] in seeds
    ]


def curves(results: Sequence[dict[str, Any]], doc: dict[str, Any], space: str) -> dict[tuple, np.ndarray]:
    """Regret curves stacked per (sampler, space): an array (runs, evaluations), cut to the shortest run."""
    out: dict[tuple, list[np.ndarray]] = {}
    for r in results:
        out.setdefault((r["sampler"], space), []).append(regret_curve(doc, [tuple(p) for p in r["points"]]))
    n = {key: min(len(c) for c in cs) for key, cs in out.items()}
    return {key: np.stack([c[: n[key]] for c in cs]) for key, cs in out.items()}


def main(args: argparse.Namespace) -> int:
    """Run the sweep and report it (args from `experiments.bench.search.parse`)."""
    samplers = [s for s in args.samplers.split(",") if s]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    out = Path(args.out)
    doc = front_doc(compose(samplers[0], 0, space=args.space, data=args.data, n=args.trials, out=out,
                            extra=args.overrides))  # fmt: skip
    start = time.perf_counter()
    results = sweep(
        samplers, seeds, space=args.space, data=args.data, n=args.trials, out=out, extra=args.overrides
    )
    regret = curves(results, doc, args.space)
    return report_sweep(
        regret, sorted({b for b in BUDGETS if b <= args.trials} | {args.trials}),
        seconds=sum(r["seconds"] for r in results), evaluations=sum(len(r["points"]) for r in results),
        runs=len(results), out=out, figure=args.figure, start=start,
    )  # fmt: skip
