"""The search's W&B summary run (one per search run, after the report's files are written).

One run per report (job_type "summary", group = the study name) holds: a Table of every finished trial
(state, objectives, costs under the report's size-naming columns, spec parameters, whether it is on the
front, the reference network it came from, the front's hypervolume after it), the front as a Table, the
Pareto front as a W&B scatter plot and as the report's figures (front staircase + reference networks; one
per pair of quantities past two objectives), the hypervolume history (line chart + the report's figure),
parameter importances for accuracy (Table + bar chart + summary), the retrained architectures
(retrain_top_k), and the front architectures as a `model` Artifact: each one's exported config and ONNX
file and, when its checkpoint is on this machine, its trained weights (and its full-fidelity weights when it
was retrained).

Where the run is online, its URL and the study's group URL are printed; runs written offline get the
`wandb sync` command instead.

Weights: search trials keep their `last.ckpt` while they are on the front (nas.search.followups.FrontWeights
deletes the others as the search goes).
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna

from nas.search.objectives import ATTR_OF
from nas.search.reporting.exports import CHECKPOINT, export_name
from nas.search.reporting.tables import annotated
from nas.tracking import finish_run, init_run, redact, sync_command
from nas.tracking.runs import run_mode

log = logging.getLogger("nas.tracking")

TRIAL_COLUMNS = (
    "trial",
    "state",
    "on_front",
    "reference",
    "not_trained",
    "accuracy",
    "latency",
    "latency_unit",
    "n_params",
    "macs",
    "train_time_s",
    "reused_from",
    "device_key",
    "reason",
    "hypervolume",
)


def param_importances(study: Any, objectives: Sequence[str]) -> tuple[dict[str, float], str]:
    """(importance of each parameter for accuracy, "" or why there are none) via Optuna's default evaluator."""
    idx = list(objectives).index("accuracy")
    target = None if len(objectives) == 1 else (lambda t: t.values[idx])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study, target=target)
        return {k: float(v) for k, v in imp.items()}, ""
    except Exception as e:  # noqa: BLE001 - too few trials, a constant parameter, ...
        return {}, str(e).splitlines()[0] if str(e) else type(e).__name__


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def trial_rows(
    recs: Sequence[Mapping[str, Any]],
    front_trials: set[int],
    *,
    names: Mapping[str, str] | None = None,
    history: Mapping[int, float] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the trials table: fixed columns (costs named by `names`, the report's
    `columns`: e.g. latency_ms_28px), then one `param.<name>` column per parameter; `history`: trial -> the
    front's hypervolume after it."""
    names = names or {}
    params = sorted({p for r in recs for p in (r.get("params") or {})})
    columns = [*(names.get(c, c) for c in TRIAL_COLUMNS), *(f"param.{p}" for p in params), "spec"]
    rows = []
    for row in annotated(recs, front_trials, history or {}):
        values = [_cell(row.get(c)) for c in TRIAL_COLUMNS]
        values += [_cell((row.get("params") or {}).get(p)) for p in params]
        values.append(_cell(row.get("spec")))
        rows.append(values)
    return columns, rows


def artifact_name(study_name: str) -> str:
    """W&B artifact names take letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name) + "-front"


def log_study(
    plan: Any,
    study: Any,
    study_dir: Path,
    *,
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]] = (),
    exports: Sequence[Mapping[str, Any]] = (),
    retrained: Sequence[Mapping[str, Any]] = (),
    summary: Mapping[str, Any] | None = None,
    files: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Log the study's summary run (see the module docstring); True when a run was written. Then print its
    URL and the group's where it is online, and the `wandb sync` command for the runs written offline.

    Never raises: the report files are written already, and a tracking failure must not lose them.
    """
    try:
        return _log_study(plan, study, study_dir, recs=recs, front=front, baselines=baselines, exports=exports,
                          retrained=retrained, summary=summary, files=files, echo=echo)  # fmt: skip
    finally:
        hint = sync_command(group=plan.study_name)
        if hint:
            echo(f"W&B is offline: upload the runs with\n  {hint}")


def links(run: Any) -> list[str]:
    """`W&B run: <url>` and `W&B group: <url>` of an online run (the group's page gathers the study's trial,
    baseline and summary runs); none for an offline or disabled one, which has no page yet."""
    if run_mode(run) != "online":
        return []
    out = []
    url = getattr(run, "url", None)
    if url:
        out.append(f"W&B run: {url}")
    project, group = getattr(run, "project_url", None), getattr(run, "group", None)
    if project and group:
        out.append(f"W&B group: {project.rstrip('/')}/groups/{quote(str(group), safe='')}")
    return out


def _log_study(
    plan: Any,
    study: Any,
    study_dir: Path,
    *,
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    exports: Sequence[Mapping[str, Any]],
    retrained: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any] | None,
    files: Mapping[str, str] | None,
    echo: Callable[[str], None],
) -> bool:
    logger_cfg = plan.base.get("logger") or {}
    summary = dict(summary or {})
    data = plan.base["data"].get("name")
    try:
        run = init_run(
            logger_cfg,
            dir=study_dir,
            name=f"{plan.study_name}-summary",
            job_type="summary",
            group=plan.study_name,
            tags=[f"space:{plan.space.name}", f"data:{data}"],
            config={
                "study": {
                    k: summary.get(k) for k in ("study_name", "space", "space_hash", "objectives", "fidelity")
                },
                "storage": redact(summary.get("storage")),
                "sampler": plan.sampler.as_config(),
                "pruner": plan.pruner.as_config(),
                "latency": plan.latency,
                "data": plan.base["data"],
                "optim": plan.base["optim"],
                "seed": plan.seed,
            },
        )
    except Exception as e:  # noqa: BLE001
        log.warning("W&B summary run of %s failed to start: %s", plan.study_name, e)
        return False
    if run is None:
        return False
    try:
        _log_contents(run, plan, study, recs, front, baselines, exports, retrained, summary, files or {})
        finish_run(run, state="COMPLETE", summary={})
    except Exception as e:  # noqa: BLE001
        log.warning("W&B summary run of %s is incomplete: %s", plan.study_name, e, exc_info=True)
        finish_run(run, state="FAIL", reason=f"{type(e).__name__}: {e}")
    for line in links(run):
        echo(line)
    return True


def _log_contents(
    run: Any,
    plan: Any,
    study: Any,
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    exports: Sequence[Mapping[str, Any]],
    retrained: Sequence[Mapping[str, Any]],
    summary: dict[str, Any],
    files: Mapping[str, str],
) -> None:
    import wandb  # local: W&B takes seconds to import: only when a summary run is logged

    dims = list(plan.front_dims)
    xcol = ATTR_OF[next(d for d in dims if d != "accuracy")]
    front_trials = {int(r["trial"]) for r in front}
    names = dict(summary.get("columns") or {})
    history = {int(h["trial"]): h["hypervolume"] for h in summary.get("hypervolume_history") or ()}
    columns, rows = trial_rows(recs, front_trials, names=names, history=history)
    payload: dict[str, Any] = {"trials": wandb.Table(columns=columns, data=rows)}
    fcols, frows = trial_rows(front, front_trials, names=names, history=history)
    payload["front"] = wandb.Table(columns=fcols, data=frows)
    done = [
        r
        for r in recs
        if r.get("state") == "COMPLETE" and _finite(r.get(xcol)) and _finite(r.get("accuracy"))
    ]
    if done:
        xname = names.get(xcol, xcol)
        points = wandb.Table(
            columns=["trial", xname, "accuracy", "on_front", "reference"],
            data=[
                [
                    r["trial"],
                    float(r[xcol]),
                    float(r["accuracy"]),
                    r["trial"] in front_trials,
                    r.get("reference"),
                ]
                for r in done
            ],
        )
        payload["pareto/trials"] = wandb.plot.scatter(
            points, xname, "accuracy", title=f"{plan.study_name}: accuracy vs {xname}"
        )
    for key, path in files.items():  # pareto.png, and pareto_<y>_<x>.png per further pair of quantities
        if key.startswith("pareto") and key.endswith("_png") and Path(path).is_file():
            caption = (
                "Pareto front (blue), trials (grey), trials from reference networks (green), baselines (red)"
            )
            payload["pareto/plot" + key[len("pareto") : -len("_png")]] = wandb.Image(
                str(path), caption=caption
            )
    if history:
        hv = wandb.Table(columns=["trial", "hypervolume"], data=[[t, v] for t, v in sorted(history.items())])
        payload["hypervolume/history"] = wandb.plot.line(
            hv, "trial", "hypervolume", title=f"{plan.study_name}: hypervolume of the front after each trial"
        )
    if files.get("hypervolume_png") and Path(files["hypervolume_png"]).is_file():
        payload["hypervolume/plot"] = wandb.Image(str(files["hypervolume_png"]))
    trained = [b for b in baselines if "skipped" not in b]
    if trained:
        bcols = [
            "name",
            "accuracy",
            "latency",
            "latency_unit",
            "n_params",
            "macs",
            "train_time_s",
            "dominated_by",
        ]
        bnames = dict(summary.get("baseline_columns") or {})
        payload["baselines"] = wandb.Table(
            columns=[bnames.get(c, c) for c in bcols],
            data=[[_cell(b.get(c)) for c in bcols] for b in trained],
        )
    if retrained:
        rcols = ["trial", "name", "test_acc", "val_acc", "train_time_s", "checkpoint"]
        payload["retrained"] = wandb.Table(
            columns=rcols, data=[[_cell(r.get(c)) for c in rcols] for r in retrained]
        )
    importances, why = param_importances(study, plan.objectives)
    if importances:
        imp = wandb.Table(columns=["param", "importance"], data=[[k, v] for k, v in importances.items()])
        payload["importance/table"] = imp
        payload["importance/bar"] = wandb.plot.bar(
            imp, "param", "importance", title="parameter importance for accuracy"
        )
    run.log(payload)

    accs = [float(r["accuracy"]) for r in done]
    hv = summary.get("hypervolume") or {}
    run.summary.update(
        {
            "study": plan.study_name,
            "space": plan.space.name,
            "objectives": list(plan.objectives),
            "n_trials": summary.get("n_trials"),
            "states": summary.get("states"),
            "rejected": summary.get("rejected"),
            "front_size": len(front),
            "front_trials": sorted(front_trials),
            "best_accuracy": max(accs) if accs else None,
            "hypervolume": hv.get("value") if isinstance(hv, Mapping) else None,
            "latency_unit": summary.get("latency_unit"),
            "fidelity_calibration": (summary.get("calibration") or {}).get("text"),
            "fidelity_rho": (summary.get("calibration") or {}).get("rho"),
            "importance": importances or None,
            "importance_note": why,
            "storage": redact(summary.get("storage")),
        }
    )
    if front:
        run.log_artifact(_front_artifact(plan, study, front, exports, retrained, files, summary))


def _front_artifact(
    plan: Any,
    study: Any,
    front: Sequence[Mapping[str, Any]],
    exports: Sequence[Mapping[str, Any]],
    retrained: Sequence[Mapping[str, Any]],
    files: Mapping[str, str],
    summary: Mapping[str, Any],
) -> Any:
    """The front as one `model` artifact: <name>.yaml (exported config), its ONNX file (<name>.onnx, or
    <name>.init.onnx with random-init weights) and <name>.ckpt (weights at the search fidelity) per trial,
    plus <name>.retrained.ckpt for those retrained at full fidelity (retrain_top_k)."""
    import wandb  # local: W&B takes seconds to import: only when a summary run is logged

    by_trial = {e["trial"]: e for e in exports}
    dirs = {  # a reused trial's weights are its source's
        t.number: t.user_attrs.get("output_dir") or t.user_attrs.get("source_output_dir")
        for t in study.get_trials(deepcopy=False)
    }
    entries = []
    art = wandb.Artifact(
        artifact_name(plan.study_name),
        type="model",
        description=f"Pareto front of study {plan.study_name} (space {plan.space.name}): exported model configs "
        "and ONNX files, and trained weights (Lightning checkpoints; Classifier.load_from_checkpoint rebuilds each "
        "network)",
        metadata={},
    )
    for r in front:
        name = export_name(plan.study_name, int(r["trial"]))
        names = dict(summary.get("columns") or {})
        entry = {
            names.get(k, k): r.get(k)
            for k in (
                "trial",
                "reference",
                "accuracy",
                "latency",
                "latency_unit",
                "n_params",
                "macs",
                "params",
            )
        }
        entry["name"] = name
        paths = (by_trial.get(r["trial"]) or {}).get("paths") or []
        if paths and Path(paths[-1]).is_file():
            art.add_file(str(paths[-1]), name=f"{name}.yaml")  # small: copied, later exports may rewrite it
            entry["config"] = f"{name}.yaml"
        onnx = (by_trial.get(r["trial"]) or {}).get("onnx") or {}
        if onnx.get("paths") and Path(onnx["paths"][-1]).is_file():
            # copied: a later report rewrites the file (e.g. random-init -> trained once the weights are here)
            file = Path(onnx["paths"][-1]).name
            art.add_file(onnx["paths"][-1], name=file)
            entry.update(onnx=file, onnx_weights=onnx["weights"])
        out = dirs.get(r["trial"])
        ckpt = Path(out) / CHECKPOINT if out else None
        if ckpt is not None and ckpt.is_file():
            # immutable: referenced, not copied (checkpoints can be large and never change); an offline run's
            # `wandb sync` reads the file then, so sync before deleting the study folder
            art.add_file(str(ckpt), name=f"{name}.ckpt", policy="immutable")
            entry["weights"] = f"{name}.ckpt"
        else:
            entry["weights"] = None  # trained on another machine, or before weights were kept
        again = next((x for x in retrained if x.get("trial") == r["trial"]), None)
        if again and again.get("checkpoint") and Path(again["checkpoint"]).is_file():
            art.add_file(str(again["checkpoint"]), name=f"{name}.retrained.ckpt", policy="immutable")
            entry["retrained_weights"] = f"{name}.retrained.ckpt"
            entry["retrained_test_acc"] = again.get("test_acc")
        entries.append(entry)
    if files.get("front_json") and Path(files["front_json"]).is_file():
        art.add_file(str(files["front_json"]), name="front.json")
    art.metadata.update(
        {
            "study": plan.study_name,
            "space": plan.space.name,
            "objectives": list(plan.objectives),
            "fidelity": summary.get("fidelity"),
            "data": plan.base["data"].get("name"),
            "latency_unit": summary.get("latency_unit"),
            "front": entries,
        }
    )
    return art


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)
