"""`python -m nas.search +space=<name> [options]`: multi-objective architecture search driven by Optuna.

Creates or resumes the study (same `study_name` -> resume), runs trials until the study has `n_trials`
counted trials (a re-run continues an interrupted search), then reports: the Pareto front as a table,
CSV and JSON, a Pareto plot with the family's reference networks as baselines, Optuna's HTML figures, the
front exported as model configs, and optionally the top-k retrained at full fidelity. Without `+space=`
it lists the spaces. See conf/search.yaml for every option.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.plan import SearchPlan

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


def run_search(cfg: Mapping[str, Any], *, study_dir: str | Path, echo: Any = None) -> SearchResult:
    """Run (or resume) the search a plain config describes, writing everything under `study_dir`."""
    from tqdm.auto import tqdm

    plan = SearchPlan.from_cfg(cfg)
    study_dir = Path(study_dir)
    echo = echo or tqdm.write
    with quiet():
        return _run(plan, study_dir, echo)


def _run(plan: SearchPlan, study_dir: Path, echo: Any) -> SearchResult:
    from tqdm.auto import tqdm

    from nas.study import (
        check_distributed,
        lost_trial_retries,
        make_pruner,
        make_sampler,
        make_storage,
        n_counted,
        open_study,
        storage_url,
        study_identity,
    )
    from nas.trial import InterruptGuard, TrialRunner
    from nas.workers import budget, can_wait, fail_lost, poll_seconds

    check_distributed(plan.base["trainer"], plan.pruner, plan.storage)
    max_retry = lost_trial_retries(plan.storage)
    sampler = make_sampler(plan.sampler, seed=plan.seed)
    pruner = make_pruner(plan.pruner, n_objectives=plan.n_objectives, epochs=plan.fidelity["epochs"])
    storage = make_storage(plan.storage, study_dir)
    identity = study_identity(
        space=plan.space,
        objectives=plan.objectives,
        fidelity=plan.identity_fidelity(),
        data=str(plan.base["data"].get("name")),
        latency=_latency_identity(plan.latency),
        training={"optim": plan.base["optim"], "metric": plan.metric},
    )
    study, resumed = open_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        identity=identity,
        space_raw=plan.space.raw,
    )
    if resumed and plan.seed is not None:
        # A resumed run must not replay the first run's draws (they would all be duplicates): the seed moves on
        # by the number of trials already there, so a fresh run and each resume stay reproducible.
        offset = len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(plan.sampler, seed=plan.seed + offset)
    url = storage_url(plan.storage, study_dir)
    done = n_counted(study)
    echo(
        f"study {plan.study_name} ({'resumed, ' + str(done) + ' trials done' if resumed else 'new'}) | space "
        f"{plan.space.name} | objectives {', '.join(plan.objectives)} | sampler {plan.sampler.get('name')} | "
        f"pruner {plan.pruner.get('name')} | fidelity {plan.fidelity['epochs']} epoch(s), fraction "
        f"{plan.base['data'].get('fraction')}, {plan.base['data'].get('image_size')} px\nstorage {url}"
    )
    start = time.monotonic()
    stopped, interrupted, failed = "", False, False
    counts = {"FAIL": 0, "REJECTED": 0, "REJECTED_RUN": 0}
    failures: list[tuple[int, str]] = []
    best = None
    waiting_since = None
    with InterruptGuard(notify=echo) as guard:
        runner = TrialRunner(plan, study, study_dir, guard)
        bar = tqdm(
            total=plan.n_trials,
            initial=min(done, plan.n_trials),
            desc=plan.study_name,
            unit="trial",
            dynamic_ncols=True,
            disable=not plan.progress,
        )
        with bar:
            while True:
                for line in fail_lost(study, max_retry=max_retry):  # dead workers' trials: FAIL + retry
                    echo(line)
                slots = budget(study)
                done = slots.counted
                bar.update(max(0, min(done, plan.n_trials) - bar.n))
                if done >= plan.n_trials:
                    stopped = f"budget reached ({done} trials)"
                    break
                if plan.timeout_s is not None and time.monotonic() - start > plan.timeout_s:
                    stopped = f"timeout ({plan.timeout_s:.0f} s)"
                    break
                if guard.requested:
                    interrupted, stopped = True, guard.stop_reason
                    break
                if slots.taken >= plan.n_trials and slots.waiting == 0:
                    # Every remaining slot is a trial running in another worker: wait for them (a dead
                    # worker's trial is failed and queued again above), or leave them to their workers.
                    if not can_wait(study):
                        stopped = (
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
                outcome = runner.run()
                if outcome.state == "SURPLUS":
                    continue  # another worker took the last slot a moment earlier
                echo(outcome.line(plan))
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
                    interrupted, stopped = True, guard.stop_reason
                    break
                if outcome.state == "FAIL":
                    failures.append((outcome.number, outcome.reason))
                if counts["FAIL"] >= plan.max_failures:
                    stopped, failed = failure_summary(failures, plan.max_failures), True
                    break
                if counts["REJECTED_RUN"] >= plan.max_rejected:
                    stopped = (
                        f"{plan.max_rejected} candidates in a row were rejected (last: {outcome.reason}); loosen "
                        "space.constraints or narrow the space's ranges"
                    )
                    break
        echo(f"stopped: {stopped}")
        result = report(plan, study, study_dir, storage=url, interrupted=interrupted, guard=guard, echo=echo)
    result.stopped, result.interrupted, result.failed = stopped, interrupted, failed
    if failed:
        _add_to_summary(study_dir / "summary.json", stopped=stopped, failures=failures)
    if interrupted:
        echo("interrupted: re-run the same command to resume this study")
    return result


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


def _add_to_summary(path: Path, **fields: Any) -> None:
    """Add fields to the summary.json `report` wrote (the stop reason is known only after it)."""
    from nas.tracking import write_json

    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        summary = {}
    write_json(path, {**summary, **fields})


def report(
    plan: SearchPlan,
    study: Any,
    study_dir: Path,
    *,
    storage: str,
    interrupted: bool = False,
    guard: Any = None,
    echo: Any = print,
) -> SearchResult:
    """Front table, CSV / JSON, Pareto plot with baselines, HTML figures, exports and retraining."""
    from optuna.trial import TrialState

    from nas.baselines import dominated_by, run_baselines
    from nas.config import CONF_DIR
    from nas.pareto import front, hypervolume, records, table, write_csv
    from nas.report import axis_label, export_front, optuna_html, pareto_plot
    from nas.study import OBJECTIVES, n_counted
    from nas.tracking import keep_front_weights, log_study, sync_command, write_json
    from nas.trial import StopRequested

    finished = [  # surplus trials (nas.workers) were never run: they are not part of the study's results
        t
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        if not t.user_attrs.get("surplus")
    ]
    recs = records(finished)
    dims = plan.front_dims
    fr = front(recs, dims)
    unit = next((r.get("latency_unit") for r in recs if r.get("latency_unit")), "")
    files: dict[str, str] = {}
    write_csv(study_dir / "trials.csv", recs)
    files["trials_csv"] = str(study_dir / "trials.csv")

    baselines: list[dict[str, Any]] = []
    try:
        baselines = run_baselines(plan, study, study_dir, train=not interrupted, guard=guard, notify=echo)
    except StopRequested:
        echo("baselines interrupted: re-run to train them")
        interrupted = True
    for b in baselines:
        if "skipped" not in b:
            b["dominated_by"] = dominated_by(b, fr, dims)

    title = f"front of {plan.study_name}: {len(fr)} of {sum(r['state'] == 'COMPLETE' for r in recs)} trials"
    echo("\n" + table(fr, unit=unit, title=title))
    trained = [b for b in baselines if "skipped" not in b]
    if trained:
        echo("\n" + table(trained, unit=unit, title="reference networks at the same fidelity"))
        for b in trained:
            by = b["dominated_by"]
            echo(f"  {b['name']}: " + (f"dominated by trials {by}" if by else "not dominated by the front"))
    for b in baselines:
        if "skipped" in b:
            echo(f"  {b['name']}: skipped ({b['skipped']})")

    hv = None
    pts = [
        [
            float(r[{"accuracy": "accuracy", "latency": "latency", "params": "n_params", "macs": "macs"}[d]])
            for d in dims
        ]
        for r in fr
    ]
    if pts and len(dims) == 2:
        worst = max(p[1] for p in pts) * 1.1 if OBJECTIVES[dims[1]] == "minimize" else 0.0
        reference = [0.0, worst]
        hv = {"value": hypervolume(pts, [OBJECTIVES[d] for d in dims], reference), "reference": reference}

    summary = {
        "study_name": plan.study_name,
        "storage": storage,
        "space": plan.space.name,
        "space_hash": plan.space.hash(),
        "objectives": plan.objectives,
        "front_dims": dims,
        "fidelity": plan.identity_fidelity(),
        "n_trials": n_counted(study),
        "states": {s.name: sum(t.state == s for t in study.get_trials(deepcopy=False)) for s in TrialState},
        "rejected": sum(bool(t.user_attrs.get("rejected")) for t in finished),
        "latency_unit": unit,
        "hypervolume": hv,
    }
    write_json(study_dir / "front.json", {**summary, "front": fr, "baselines": baselines})
    write_csv(study_dir / "front.csv", fr)
    files.update(front_json=str(study_dir / "front.json"), front_csv=str(study_dir / "front.csv"))
    if any(r["state"] == "COMPLETE" for r in recs):
        files["pareto_png"] = str(
            pareto_plot(
                study_dir / "pareto.png",
                recs,
                fr,
                baselines,
                dims,
                unit=unit,
                title=f"{plan.study_name} ({plan.space.name}): {axis_label('accuracy')} vs {axis_label(dims[1], unit)}, "
                f"{plan.fidelity['epochs']} epoch(s), fraction {plan.base['data'].get('fraction')}",
            )
        )
        if plan.html:
            files.update(
                {
                    f"html_{k}": str(v)
                    for k, v in optuna_html(study, study_dir / "html", plan.objectives).items()
                }
            )
    export_dir = plan.export_dir or CONF_DIR / "model" / "exported"
    exports = export_front(
        fr,
        study_name=plan.study_name,
        space=plan.space,
        data=plan.base["data"],
        fidelity=plan.fidelity,
        dirs=[export_dir, study_dir / "models"],
        latency_unit=unit,
        input_size=plan.full["data"].get("image_size"),
    )
    retrained: list[dict[str, Any]] = []
    if plan.retrain_top_k and not interrupted and fr:
        try:
            retrained = retrain_top(plan, study, study_dir, fr, guard=guard, echo=echo)
        except StopRequested:
            echo("retraining interrupted: re-run to finish it")
            interrupted = True
    write_json(
        study_dir / "summary.json",
        {**summary, "files": files, "exports": exports, "retrained": retrained, "baselines": baselines},
    )
    keep_front_weights(study, dims)
    log_study(
        plan, study, study_dir, recs=recs, front=fr, baselines=baselines, exports=exports, retrained=retrained,
        summary=summary, files=files,
    )  # fmt: skip
    if exports:
        echo(
            f"\n{len(exports)} front architecture(s) exported to {export_dir}; train one at full fidelity with"
        )
        echo(f"  python -m experiments.train model=exported/{exports[0]['name']}")
    echo(f"outputs: {study_dir}")
    hint = sync_command(group=plan.study_name)
    if hint:
        echo(f"W&B is offline: upload the runs with\n  {hint}")
    return SearchResult(
        study_name=plan.study_name,
        storage=storage,
        study_dir=str(study_dir),
        n_trials=summary["n_trials"],
        front=fr,
        baselines=baselines,
        exports=exports,
        retrained=retrained,
        files=files,
        interrupted=interrupted,
    )


def retrain_top(
    plan: SearchPlan,
    study: Any,
    study_dir: Path,
    fr: list[dict[str, Any]],
    *,
    guard: Any = None,
    echo: Any = print,
) -> list[dict[str, Any]]:
    """Train the `retrain_top_k` most accurate front architectures at full fidelity (cached in the study)."""
    import contextlib

    from nas.fit import fit
    from nas.report import export_name
    from nas.study import ATTR
    from nas.tracking import latency_summary

    out = []
    for r in sorted(fr, key=lambda r: -(r.get("accuracy") or 0.0))[: plan.retrain_top_k]:
        name = export_name(plan.study_name, r["trial"])
        cfg = plan.run_config(r["spec"], output_dir=str(study_dir / "retrain" / name), name=name, full=True)
        blob = json.dumps(
            {k: cfg[k] for k in ("model", "data", "optim", "trainer", "seed")}, sort_keys=True, default=str
        )
        key = hashlib.sha256(blob.encode()).hexdigest()[:20]
        cached = study.user_attrs.get(f"{ATTR}retrain:{r['trial']}")
        if cached and cached.get("run_key") == key:
            out.append(cached)
            continue
        echo(f"retraining trial {r['trial']} at full fidelity ({cfg['trainer'].get('max_epochs')} epochs)")
        with guard.training() if guard is not None else contextlib.nullcontext():
            result = fit(
                cfg,
                group=plan.study_name,
                job_type="retrain",
                tags=[f"space:{plan.space.name}"],
                verbose=False,
                summary={
                    "trial": r["trial"],
                    **latency_summary(
                        r.get("latency"), {"unit": r.get("latency_unit"), "fingerprint": r.get("device_key")}
                    ),
                },
            )
        rec = {
            "trial": r["trial"],
            "name": name,
            "run_key": key,
            "metrics": result.metrics,
            "test_acc": result.metrics.get("test/acc"),
            "val_acc": result.metrics.get("val/acc"),
            "checkpoint": result.checkpoint,
            "output_dir": result.output_dir,
            "train_time_s": round(result.wall_time_s, 1),
        }
        study.set_user_attr(f"{ATTR}retrain:{r['trial']}", rec)
        out.append(rec)
    for rec in out:
        echo(f"  retrained {rec['name']}: test acc {rec.get('test_acc')}, val acc {rec.get('val_acc')}")
    return out


def _latency_identity(latency_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The latency mode and, for timed modes, the device fingerprint: a study never mixes devices."""
    from nas.latency import LatencyConfig, device_fingerprint

    cfg = LatencyConfig.from_cfg(latency_cfg)
    if cfg.mode in ("macs", "params"):
        return {"mode": cfg.mode}
    return {"mode": cfg.mode, "device": device_fingerprint(cfg).key, "batch_size": cfg.batch_size}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence per-trial Lightning / Optuna chatter and repeated library warnings (one line per trial instead)."""
    import optuna

    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    verbosity = optuna.logging.get_verbosity()
    try:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            for pattern in NOISY_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------------------------------------- CLI


def space_listing() -> str:
    """The text `python -m nas.search` prints without a space."""
    from nas.space import list_spaces

    lines = [
        "usage: python -m nas.search +space=<name> [option=value ...]   (options: conf/search.yaml)",
        "",
        "spaces (conf/space/*.yaml):",
    ]
    spaces = list_spaces()
    width = max((len(n) for n, _ in spaces), default=0)
    lines += [f"  {name:<{width}}  {desc}" for name, desc in spaces]
    lines += [
        "",
        "example: python -m nas.search +space=resnet_like n_trials=20 fidelity.epochs=1 fidelity.fraction=0.1",
    ]
    return "\n".join(lines)


def _wants_space(argv: list[str]) -> bool:
    """Whether the command line picks a space (or asks Hydra itself for help / the config)."""
    hydra_flags = (
        "--help",
        "-h",
        "--hydra-help",
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--resolve",
        "--shell-completion",
    )
    return any(a.lstrip("+~").startswith("space=") or a.split("=")[0] in hydra_flags for a in argv)


def _main_hydra() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    @hydra.main(config_path="../conf", config_name="search", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        from nas.config import to_plain
        from nas.tracking import redact_hydra_outputs

        hc = HydraConfig.get()  # a password in storage.url=... must not stay in .hydra/*.yaml
        redact_hydra_outputs(hc.runtime.output_dir, hc.sweep.dir if hc.mode.name == "MULTIRUN" else None)
        if cfg.get("space") is None:
            print(space_listing())
            return
        try:
            result = run_search(to_plain(cfg), study_dir=HydraConfig.get().runtime.output_dir)
        except (ValueError, KeyError) as e:
            print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
            sys.exit(2)
        if result.interrupted:
            sys.exit(130)
        if result.failed:
            print(f"error: {result.stopped}", file=sys.stderr)
            sys.exit(1)

    main()


def main(argv: list[str] | None = None) -> int:
    """Entry point: list the spaces, or hand the command line to Hydra."""
    argv = sys.argv[1:] if argv is None else argv
    if not _wants_space(argv):
        print(space_listing())
        return 0
    _main_hydra()
    return 0


if __name__ == "__main__":
    sys.exit(main())
