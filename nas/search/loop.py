"""The search's run loop: open the study, run trials until a stop rule fires, then the follow-ups and the report.

Order of a run (`run_search`): plan -> study (create or resume) -> trials (`TrialRunner`, one per loop
iteration, with the stop rules: budget, timeout, Ctrl-C, max_failures, max_rejected) -> follow-ups
(baselines, retraining: nas.search.followups) -> report files (nas.search.reporting.report) -> front
weights -> W&B summary run (nas.search.reporting.summary_run). The study is read once per loop iteration.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from nas.progress import is_terminal
from nas.search.evaluators import make_evaluator
from nas.search.followups import FrontWeights, retrain_top, run_baselines
from nas.search.guard import InterruptGuard, StopRequested
from nas.search.local_workers import Workers
from nas.search.objectives import ATTR_OF
from nas.search.plan import SearchPlan
from nas.search.records import dominated_by, front, records, trained
from nas.search.reporting.report import write_report
from nas.search.reporting.summary_run import log_study
from nas.search.scheduler import build_scheduler
from nas.search.starts import enqueue as enqueue_starts
from nas.search.storage import check_distributed, lost_trial_retries, make_storage, storage_url
from nas.search.study import (
    counted,
    hypervolume_reference,
    make_pruner,
    open_study,
    study_identity,
)
from nas.search.trial import TrialRunner, worker_sampler
from nas.search.workers import budget, can_wait, fail_lost, job_threads, poll_seconds

# Library warnings repeated every trial that say nothing about the search (torch / Lightning internals,
# Optuna's importance estimator on few trials).
NOISY_WARNINGS = (
    r".*LeafSpec.*",
    r".*PedAnovaImportanceEvaluator.*",
    r".*less than 2 trials.*",
    r".*too small to compute importances.*",
    r".*quantiles select the same set of trials.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
)
QUIET_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


@dataclass
class SearchResult:
    """What a search run produced (also written to summary.json in the study folder)."""

    study_name: str
    storage: str
    study_dir: str
    n_trials: int
    front: list[dict[str, Any]]
    baselines: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    retrained: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    stopped: str = ""
    interrupted: bool = False
    failed: bool = False  # stopped by max_failures (the CLI exits with status 1)


@dataclass
class Stop:
    """Why the trial loop ended."""

    reason: str = ""
    interrupted: bool = False
    failed: bool = False
    failures: list[tuple[int, str]] = field(default_factory=list)


def run_search(
    cfg: Mapping[str, Any],
    *,
    study_dir: str | Path,
    echo: Callable[[str], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> SearchResult:
    """Run (or resume) the search a plain config describes, writing everything under `study_dir`.

    `on_start` is called once every check has passed and the study is open, before the first trial: the
    command line records itself there (.hydra/), so a refused run leaves an existing study's folder as it was."""
    plan = SearchPlan.from_cfg(cfg)
    job_threads()  # a SLURM job trains on the CPUs it asked for
    with quiet():
        return _run(plan, Path(study_dir), echo or tqdm.write, on_start, cfg)


def run_trials(cfg: Mapping[str, Any], *, study_dir: str | Path, echo: Callable[[str], None]) -> Stop:
    """A local child worker (nas.search.local_workers): the trials of a study another process opened and
    reports, until it has `n_trials`; no header, follow-ups or report."""
    plan = SearchPlan.from_cfg({**cfg, "workers": 1, "progress": False})
    with quiet():
        study, _, _, done = _open(plan, Path(study_dir), echo)
        with InterruptGuard(notify=echo) as guard:
            return _trials(plan, study, Path(study_dir), guard, FrontWeights(plan.front_dims, Path(study_dir)),
                           done, echo)  # fmt: skip


def _open(
    plan: SearchPlan, study_dir: Path, echo: Callable[[str], None]
) -> tuple[optuna.Study, bool, str, int]:
    """Create or resume the study: (study, resumed, storage URL, counted trials)."""
    check_distributed(plan.base["trainer"], plan.pruner, plan.storage)
    sampler = worker_sampler(plan)  # this worker's one sampler: its trials reseed it (nas.search.trial)
    pruner = make_pruner(plan.pruner, n_objectives=plan.n_objectives, epochs=plan.fidelity.epochs)
    storage = make_storage(plan.storage, study_dir)
    identity = study_identity(
        space=plan.space,
        objectives=plan.objectives,
        fidelity=plan.identity_fidelity(),
        data=str(plan.base["data"].get("name")),
        latency=plan.latency_identity(),
        training=plan.training_identity(),
    )
    study, resumed = open_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        identity=identity,
        space_raw=plan.space.raw,
    )
    if not resumed:  # the textbook networks the space holds (and the user's known ones) are its first trials
        enqueue_starts(study, plan.starts, fits=lambda params: _outside(plan, params), echo=echo)
    # Fixed when the study is created where the constraints bound the front's costs (else at its first front).
    hypervolume_reference(study, plan.front_dims, bounds=plan.hypervolume_bounds())
    trials = study.get_trials(deepcopy=False)
    url = storage_url(plan.storage, study_dir)
    return study, resumed, url, sum(counted(t) for t in trials)


def _run(
    plan: SearchPlan,
    study_dir: Path,
    echo: Callable[[str], None],
    on_start: Callable[[], None] | None,
    cfg: Mapping[str, Any],
) -> SearchResult:
    study, resumed, url, done = _open(plan, study_dir, echo)
    echo(
        f"study {plan.study_name} ({'resumed, ' + str(done) + ' trials done' if resumed else 'new'}) | space "
        f"{plan.space.name} | objectives {', '.join(plan.objectives)} | sampler {plan.sampler.name} | "
        f"pruner {plan.pruner.name} | {_rungs(plan)}fidelity {_fidelity(plan)}\nstorage {url}"
    )
    calibration = plan.calibration()
    if calibration is not None:
        echo(f"fidelity {calibration['text']}")
    weights = FrontWeights(plan.front_dims, study_dir)
    if on_start is not None:
        on_start()
    if plan.workers > 1:
        echo(f"{plan.workers} workers of 1 thread each (workers=1: one process); latency is timed while the "
             "others pause their training")  # fmt: skip
    with InterruptGuard(notify=echo) as guard, Workers(cfg, study_dir, plan.workers, run_trials) as workers:
        stop = _trials(plan, study, study_dir, guard, weights, done, echo)
        if not stop.interrupted:
            workers.join()  # their last trials belong in the report
        echo(f"stopped: {stop.reason}")
        result = _finish(plan, study, study_dir, url, stop, guard, weights, echo)
    if result.interrupted:  # the trials, or a follow-up's training
        echo("interrupted: re-run the same command to resume this study")
    return result


def _outside(plan: SearchPlan, params: Mapping[str, Any]) -> str | None:
    """Why a starting point breaks the space's constraints at the data's size (None: it meets them)."""
    cost = plan.cost(plan.space.compile(params))[2]
    broken = plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]})
    return "; ".join(broken) or None


def _fidelity(plan: SearchPlan) -> str:
    """The header's fidelity: what a trial trains on, or under a benchmark the table results it looks up."""
    epochs = plan.fidelity.epochs
    if plan.benchmark is not None:  # no data is loaded: the table's own training split and image size
        return f"{epochs} epoch(s) in the {plan.benchmark.name} table ({plan.benchmark.dataset})"
    data = plan.base["data"]
    return f"{epochs} epoch(s), fraction {data.get('fraction')}, {data.get('image_size')} px"


def _rungs(plan: SearchPlan) -> str:
    """The header's scheduler part: empty for one rung, else the rungs (their epochs; asha: and eta)."""
    sch = plan.scheduler
    return f"scheduler {sch.name} ({sch.header()}) | " if sch.multi_rung else ""


def _trials(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    guard: InterruptGuard,
    weights: FrontWeights,
    done: int,
    echo: Callable[[str], None],
) -> Stop:
    """Run trials until a stop rule fires; the study is read once per iteration and that read is shared."""
    max_retry = lost_trial_retries(plan.storage)
    evaluator = make_evaluator(plan, study_dir, guard)
    if evaluator.describe():
        echo(evaluator.describe())
    scheduler = build_scheduler(plan.scheduler, plan.fidelity, plan.objectives)
    runner = TrialRunner(plan, study, evaluator, scheduler, guard=guard, sampler=study.sampler)
    start = time.monotonic()
    stop = Stop()
    counts = {"FAIL": 0, "REJECTED": 0, "REJECTED_RUN": 0}
    best = None
    waiting_since = None
    bar = tqdm(
        total=plan.n_trials,
        initial=min(done, plan.n_trials),
        desc=plan.study_name,
        unit="trial",
        dynamic_ncols=True,
        # Redrawn bars are for a terminal: in a log file (nohup, SLURM) each redraw stays, 3-4 per trial, and
        # the per-trial lines below already carry the count.
        disable=not (plan.progress and is_terminal(sys.stderr)),
    )
    with bar:
        while True:
            trials = study.get_trials(deepcopy=False)
            lost = fail_lost(study, max_retry=max_retry, trials=trials)  # dead workers' trials: FAIL + retry
            for line in lost:
                echo(line)
            if lost:
                trials = study.get_trials(deepcopy=False)  # the failed trials and their queued retries
            weights.prune(trials)  # disk holds about the front's checkpoints, not all
            slots = budget(trials=trials)
            done = slots.counted
            bar.update(max(0, min(done, plan.n_trials) - bar.n))
            if done >= plan.n_trials:
                stop.reason = f"budget reached ({done} trials)"
                break
            if plan.timeout_s is not None and time.monotonic() - start > plan.timeout_s:
                stop.reason = f"timeout ({plan.timeout_s:.0f} s)"
                break
            if guard.requested:
                stop.interrupted, stop.reason = True, guard.stop_reason
                break
            if slots.taken >= plan.n_trials and slots.waiting == 0:
                # Every remaining slot is a trial running in another worker: wait for them (a dead
                # worker's trial is failed and queued again above), or leave them to their workers.
                if not can_wait(study):
                    stop.reason = (
                        f"the last {slots.running} trial(s) are running in other workers (this storage has no "
                        "heartbeats, so a dead worker cannot be detected from here: set "
                        "storage.heartbeat_interval to wait for them)"
                    )
                    break
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    echo(f"waiting for {slots.running} trial(s) running in other workers")
                time.sleep(poll_seconds(study))
                continue
            waiting_since = None
            outcome = runner.run(trials)
            if outcome.state == "SURPLUS":
                continue  # another worker took the last slot a moment earlier
            echo(f"[{min(done + outcome.counted, plan.n_trials)}/{plan.n_trials}] {outcome.line()}")
            acc = outcome.attrs.get("accuracy")
            if outcome.state in ("COMPLETE", "REUSED") and acc is not None:
                best = acc if best is None else max(best, acc)
            counts["REJECTED_RUN"] = counts["REJECTED_RUN"] + 1 if outcome.state == "REJECTED" else 0
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
            bar.set_postfix_str(
                f"best acc {best if best is not None else float('nan'):.4f} | rejected {counts['REJECTED']} "
                f"| failed {counts['FAIL']}"
            )
            if outcome.state == "INTERRUPTED" or guard.requested:
                stop.interrupted, stop.reason = True, guard.stop_reason
                break
            if outcome.state == "FAIL":
                stop.failures.append((outcome.number, outcome.reason))
            if counts["FAIL"] >= plan.max_failures:
                stop.reason, stop.failed = failure_summary(stop.failures, plan.max_failures), True
                break
            if counts["REJECTED_RUN"] >= plan.max_rejected:
                stop.reason = (
                    f"{plan.max_rejected} candidates in a row were rejected (last: {outcome.reason}); loosen "
                    "space.constraints or narrow the space's ranges"
                )
                break
    return stop


def _finish(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    url: str,
    stop: Stop,
    guard: InterruptGuard,
    weights: FrontWeights,
    echo: Callable[[str], None],
) -> SearchResult:
    """After the trials, each its own step: baselines, retraining, the report's files, the front's weights,
    the W&B summary run. Interrupting a training step skips the ones after it."""
    trials = study.get_trials(deepcopy=False)
    recs = records(_reported(trials))
    dims = plan.front_dims
    fr = front(recs, dims)
    interrupted = stop.interrupted
    baselines: list[dict[str, Any]] = []
    try:
        baselines = run_baselines(plan, study, study_dir, train=not interrupted, guard=guard, notify=echo)
    except StopRequested:
        echo("baselines interrupted: re-run to train them")
        interrupted = True
    for b in baselines:
        if "skipped" not in b:
            b["dominated_by"] = dominated_by(b, fr, dims)
    retrained: list[dict[str, Any]] = []
    if plan.retrain_top_k and not interrupted and fr:
        try:
            retrained = retrain_top(plan, study, study_dir, fr, guard=guard, echo=echo)
        except StopRequested:
            echo("retraining interrupted: re-run to finish it")
            interrupted = True
    stop_fields = {"stopped": stop.reason, "failures": stop.failures} if stop.failed else None
    n_counted = sum(counted(t) for t in trials)
    observed = {
        d: [float(r[ATTR_OF[d]]) for r in recs if trained(r) and r.get(ATTR_OF[d]) is not None] for d in dims
    }
    reference = hypervolume_reference(study, dims, bounds=plan.hypervolume_bounds(), observed=observed)
    report = write_report(
        plan, study, study_dir, trials=trials, recs=recs, front=fr, n_counted=n_counted, storage=url,
        baselines=baselines, retrained=retrained, stop=stop_fields, echo=echo, reference=reference,
    )  # fmt: skip
    weights.prune(trials)
    log_study(
        plan, study, study_dir, recs=recs, front=fr, baselines=baselines, exports=report.exports,
        retrained=retrained, summary=report.summary, files=report.files, echo=echo,
    )  # fmt: skip
    return SearchResult(
        study_name=plan.study_name,
        storage=url,
        study_dir=str(study_dir),
        n_trials=n_counted,
        front=fr,
        baselines=baselines,
        exports=report.exports,
        retrained=retrained,
        files=report.files,
        stopped=stop.reason,
        interrupted=interrupted,
        failed=stop.failed,
    )


def _reported(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The finished trials a report shows: surplus trials (nas.search.workers) were never run."""
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in trials if t.state in finished and not t.user_attrs.get("surplus")]


def failure_summary(failures: list[tuple[int, str]], max_failures: int) -> str:
    """Why a search stopped at max_failures: each distinct reason with its trials, and where the tracebacks are."""
    by_reason: dict[str, list[int]] = {}
    for number, reason in failures:
        by_reason.setdefault(reason or "unknown error", []).append(number)
    lines = [
        f"{len(failures)} failed trials in this run (max_failures={max_failures}); the search stopped so "
        "that a broken setup does not burn the whole budget:"
    ]
    lines += [
        f"  {len(nums)} x {reason}  (trial{'s' if len(nums) > 1 else ''} {', '.join(map(str, nums))})"
        for reason, nums in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))
    ]
    lines.append(
        "Each failed trial keeps its traceback in the user attribute 'traceback' (optuna-dashboard shows it; "
        "reasons are in trials.csv). Fix the cause and re-run the same command to continue the study."
    )
    return "\n".join(lines)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence per-trial Lightning / Optuna chatter and repeated library warnings (one line per trial instead)."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    verbosity = optuna.logging.get_verbosity()
    try:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            for pattern in NOISY_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
