"""`python -m experiments.bench scale`: what scaling out costs and buys.

1. Sampler overhead per trial as a study grows: a study of a real space (`--space`) and the search's two
   objectives is filled with 100, 1,000 and 5,000 synthetic finished trials (drawn by random sampling, with
   made-up accuracy and latency; `optuna.create_trial` + `study.add_trials`), then each sampler of the
   search (conf/sampler/<name>.yaml as configured) proposes `--repeats` new trials: the time of `ask()` plus
   the space's suggestions (where TPE's and NSGA-II's work happens) is the overhead a trial pays before
   training. In memory by default, so it is the sampler's own cost (`--storage sqlite` adds the database's).
2. Trials per hour with 1 and with 2 workers on this machine: the same tiny search (synthetic 16 px images,
   one epoch, latency by MACs) run by one `python -m nas.search` process, then by two sharing one journal
   study; the rate is trials over the span from the first trial's start to the last one's end (process start
   and imports excluded).

Defaults take a few minutes on the 2-core build machine; the figures go in the README (Scale out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

SIZES = (100, 1000, 5000)
SAMPLERS = ("tpe", "nsga2")
TINY = [
    "data=synthetic", "data.train_size=256", "data.val_size=64", "data.test_size=16", "data.image_size=16",
    "data.batch_size=32", "fidelity.fraction=1.0", "fidelity.epochs=1", "latency.mode=macs", "logger=none",
    "baselines.enabled=false", "html=false", "progress=false", "sampler=random",
]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.bench scale", description=__doc__.splitlines()[0])
    p.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="finished trials in the study")
    p.add_argument("--samplers", default=",".join(SAMPLERS), help="conf/sampler/<name>.yaml, comma-separated")
    p.add_argument("--repeats", type=int, default=3, help="trials proposed per sampler and size (median)")
    p.add_argument("--storage", default="memory", choices=("memory", "sqlite"), help="where the study lives")
    p.add_argument(
        "--trials", type=int, default=16, help="trials of the throughput search (per worker count)"
    )
    p.add_argument("--workers", default="1,2", help="worker counts to compare")
    p.add_argument("--skip-overhead", action="store_true", help="only the workers' throughput")
    p.add_argument("--skip-workers", action="store_true", help="only the sampler overhead")
    p.add_argument("--out", default="outputs/bench/scale", help="folder of the studies and results.json")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.samplers = [s for s in args.samplers.split(",") if s]
    args.workers = [int(w) for w in args.workers.split(",") if w]
    if args.repeats < 1 or args.trials < 2 or not args.sizes or min(args.workers, default=0) < 1:
        p.error("need --repeats >= 1, --trials >= 2, some --sizes and worker counts >= 1")
    return args


# ---------------------------------------------------------------------------------- sampler overhead


def _space(name: str):
    from nas.space import load_space

    return load_space(name)


def synthetic_trials(space: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` finished trials of `space`: random draws with made-up (accuracy, latency)."""
    import numpy as np
    import optuna

    rng = np.random.default_rng(seed)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed)
    )
    out = []
    while len(out) < n:
        trial = study.ask()
        try:
            space.sample(trial)
        except Exception:  # a rejected draw: its parameters are still a valid history entry
            pass
        values = [float(rng.uniform(0.5, 0.95)), float(rng.lognormal(0.0, 0.5))]
        # Read the draw off the trial itself: `study.trials` deep-copies the whole history (O(n^2) here).
        out.append(
            {"params": dict(trial.params), "distributions": dict(trial.distributions), "values": values}
        )
        study.tell(trial, values)
    return out


def history_for(sampler: Any, history: list[dict[str, Any]]) -> list[Any]:
    """The synthetic history as FrozenTrials; genetic samplers (NSGA-II) also get each trial's generation,
    as if they had run it (without it they would see no population and fall back to random sampling)."""
    import optuna

    from nas.search.optuna_internals import generation_key, population_size

    key = generation_key(sampler)
    size = population_size(sampler) or 1
    return [
        optuna.trial.create_trial(
            params=h["params"],
            distributions=h["distributions"],
            values=h["values"],
            system_attrs={key: i // size} if key else None,
        )
        for i, h in enumerate(history)
    ]


def sampler_overhead(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """Median seconds per proposed trial for every (sampler, study size)."""
    import optuna
    from omegaconf import OmegaConf

    from nas.config import CONF_DIR
    from nas.search.study import make_sampler

    space = _space(args.space)
    t0 = time.perf_counter()
    history = synthetic_trials(space, max(args.sizes))
    print(f"{len(history)} synthetic trials of {args.space} in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for name in args.samplers:
        sampler_cfg = OmegaConf.to_container(
            OmegaConf.load(CONF_DIR / "sampler" / f"{name}.yaml"), resolve=True
        )
        for n in args.sizes:
            storage: Any = None
            if args.storage == "sqlite":
                path = out / f"overhead-{name}-{n}.db"
                path.unlink(missing_ok=True)
                storage = f"sqlite:///{path.resolve()}"
            sampler = make_sampler(sampler_cfg, seed=0)  # type: ignore[arg-type]
            study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], sampler=sampler)
            study.add_trials(history_for(sampler, history[:n]))
            times = []
            for i in range(
                args.repeats + 1
            ):  # the first proposal fills caches (NSGA-II's parents): not timed
                start = time.perf_counter()
                trial = study.ask()
                try:
                    space.sample(trial)
                except Exception:
                    pass
                if i:
                    times.append(time.perf_counter() - start)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # ignored by both samplers
            row = {"sampler": name, "finished": n, "seconds": statistics.median(times), "all": times}
            rows.append(row)
            print(f"  {name:<6} {n:>6} finished trials: {_ms(row['seconds'])} per trial", flush=True)
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# ------------------------------------------------------------------------------------ worker throughput


def worker_throughput(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """Trials per hour of the same tiny search with each worker count (processes of the real command)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    rows = []
    env = {**os.environ, "WANDB_MODE": "disabled"}
    for k in args.workers:
        name = f"throughput-{k}w"
        study_dir = out / name
        shutil.rmtree(study_dir, ignore_errors=True)
        journal = study_dir / "journal.log"
        cmd = [
            sys.executable, "-m", "nas.search", f"+space={args.space}", f"study_name={name}",
            f"n_trials={args.trials}", "storage=journal", f"storage.path={journal.resolve()}", *TINY,
            f"hydra.run.dir={study_dir}", f"export_dir={out / 'exports'}",
        ]  # fmt: skip
        print(f"  {k} worker(s): {args.trials} trials ...", flush=True)
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(k)
        ]
        logs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            bad = next(log for p, log in zip(procs, logs, strict=True) if p.returncode)
            raise RuntimeError(f"a worker failed:\n{bad[-3000:]}")
        study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))
        done = [t for t in study.trials if t.state.is_finished() and not t.user_attrs.get("surplus")]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        row = {
            "workers": k,
            "trials": len(done),
            "span_s": span,
            "trials_per_hour": len(done) / span * 3600 if span > 0 else float("nan"),
            "by_worker": sorted(Counter(t.user_attrs.get("worker", {}).get("pid") for t in done).values()),
        }
        rows.append(row)
        print(
            f"  {k} worker(s): {row['trials_per_hour']:.0f} trials/hour ({len(done)} in {span:.0f} s)",
            flush=True,
        )
    return rows


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    import platform

    import optuna
    import torch

    args = parse(list(argv or []))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result: dict[str, Any] = {
        "space": args.space,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not args.skip_overhead:
            print(f"sampler overhead per trial ({args.storage} storage, space {args.space}):", flush=True)
            result["overhead"] = sampler_overhead(args, out)
        if not args.skip_workers:
            print("trials per hour (tiny synthetic trials, journal storage):", flush=True)
            result["throughput"] = worker_throughput(args, out)
    result["seconds"] = time.perf_counter() - start
    print("\n" + table(result))
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten: {out / 'results.json'} ({result['seconds'] / 60:.1f} min)")
    return 0


def table(result: dict[str, Any]) -> str:
    """The README's tables (markdown)."""
    lines = []
    rows = result.get("overhead") or []
    if rows:
        sizes = sorted({r["finished"] for r in rows})
        samplers = list(dict.fromkeys(r["sampler"] for r in rows))
        lines += [
            "| sampler | " + " | ".join(f"{n:,} finished trials" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        for s in samplers:
            cells = [
                next(_ms(r["seconds"]) for r in rows if r["sampler"] == s and r["finished"] == n)
                for n in sizes
            ]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    rows = result.get("throughput") or []
    if rows:
        base = rows[0]["trials_per_hour"]
        lines += ["", "| workers | trials / hour | speed-up |", "|---|---|---|"]
        lines += [
            f"| {r['workers']} | {r['trials_per_hour']:.0f} | {r['trials_per_hour'] / base:.2f}x |"
            for r in rows
        ]
    return "\n".join(lines)
