"""`python -m experiments.bench estimate STUDY_DIR [override ...]`: how right the baselines' time estimate is.

A search trains a follow-up baseline only when its estimated training time fits the share of the search's time
baselines may take (`baselines.max_share`). The estimate (nas.search.followups.timed_estimate) is the median
trained trial's time scaled by one timed training step of the baseline against one of that trial's network.
This checks the rule where the true times are known, on a search's own trials: each trained trial's time is
estimated from the others (leave one out, the same function on the study without it) and compared with the time
it took. The overrides are the search's (e.g. `space=resnet_like`, for its fidelity and batch shape); run it
on the machine and thread count the search trained on (its workers: `OMP_NUM_THREADS=1`).

    OMP_NUM_THREADS=1 python -m experiments.bench estimate outputs/search/resnet_like-fashion_mnist space=resnet_like
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import optuna

from nas.runfile import compose_plan
from nas.search.followups import timed_estimate


def leave_one_out(plan: Any, study: optuna.Study) -> list[dict[str, Any]]:
    """Per trained trial (its own time and spec recorded, not reused): the time it took and the estimate from the
    study without it."""
    trials = study.get_trials(deepcopy=False)
    timed = [t for t in trials if (a := t.user_attrs).get("train_time_s") and a.get("spec")
             and a.get("reused_from") is None]  # fmt: skip
    rows = []
    for t in timed:
        rest = optuna.create_study(directions=study.directions)
        rest.add_trials([o for o in trials if o.number != t.number])
        estimate = timed_estimate(plan, rest, t.user_attrs["spec"])
        took = float(t.user_attrs["train_time_s"])
        rows.append({"trial": t.number, "took_s": took, "estimated_s": estimate, "ratio": estimate / took})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench estimate", description=__doc__.splitlines()[0])
    p.add_argument("study_dir", help="a search's folder (its study.db, the study named after the folder)")
    p.add_argument("overrides", nargs="*", help="the search's overrides of conf/search.yaml (space=...)")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one in-memory study per trial: no line each
    folder = Path(args.study_dir)
    if not (folder / "study.db").is_file():
        raise ValueError(f"{folder} holds no study.db: give a search's folder (outputs/search/<study>)")
    plan = compose_plan(args.overrides)
    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")
    rows = leave_one_out(plan, study)
    if len(rows) < 2:
        raise ValueError(f"{folder}: {len(rows)} trained trial(s) with their spec; the check needs at least 2")
    for r in rows:
        print(f"trial {r['trial']:4d}: took {r['took_s']:7.1f} s, estimated {r['estimated_s']:7.1f} s, "
              f"ratio {r['ratio']:.2f}")  # fmt: skip
    ratios = [r["ratio"] for r in rows]
    within = sum(0.5 <= x <= 2 for x in ratios)
    print(f"estimate / time taken: median {statistics.median(ratios):.2f}, {min(ratios):.2f}-{max(ratios):.2f}; "
          f"within 2x for {within} of {len(rows)} trials")  # fmt: skip
    return 0
