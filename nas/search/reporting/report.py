"""The search's report: the front as a table (printed), CSV and JSON, trials.csv (with each trial's place on
the front and the front's hypervolume after it), the Pareto plots, the hypervolume history, Optuna's HTML
figures, the front exported as model configs, and summary.json, written from the results it is given.

It trains nothing and changes no trial: baselines and retraining (nas.search.followups) ran before it, and
the W&B summary run (nas.search.reporting.summary_run) is logged after it from what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.objectives import ATTR_OF
from nas.search.plan import SearchPlan
from nas.search.records import front_hypervolume, hypervolume_history, versus_textbook
from nas.search.reporting.exports import EXPORT_SUBDIR, export_front, trial_checkpoints
from nas.search.reporting.figures import (
    axis_label,
    hypervolume_plot,
    optuna_html,
    pareto_file,
    pareto_pairs,
    pareto_plot,
)
from nas.search.reporting.tables import annotated, renamed, sized_names, table, write_csv
from nas.tracking import write_json


@dataclass
class Report:
    """What the report wrote: the summary (summary.json without its file list), files and exports."""

    summary: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    exports: list[dict[str, Any]] = field(default_factory=list)


def write_report(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    *,
    trials: Sequence[FrozenTrial],
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    n_counted: int,
    storage: str,
    baselines: Sequence[Mapping[str, Any]] = (),
    retrained: Sequence[Mapping[str, Any]] = (),
    stop: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    reference: Sequence[float] | None = None,
) -> Report:
    """Write every report file of a search from its results and print the front.

    `trials`: all of the study's trials (for the counts per state); `recs`: the records of the finished ones
    the report shows (surplus trials left out); `front`: their front; `baselines` (with `dominated_by`) and
    `retrained`: the follow-ups' records; `stop`: fields added to summary.json when the search stopped
    on an error (`stopped`, `failures`); `reference`: the study's fixed hypervolume reference point
    (nas.search.study.hypervolume_reference; no hypervolume without it). `study` is read only for Optuna's
    HTML figures.
    """
    dims = plan.front_dims
    unit = next((r.get("latency_unit") for r in recs if r.get("latency_unit")), "")
    # Trials' costs are the deployed network's (the data's size, where latency is timed too); a baseline's MACs
    # are its training run's (nas.search.followups: the fidelity's size), so its rows name their own size.
    train_px, deployed_px = plan.base["data"].get("image_size"), plan.full["data"].get("image_size")
    names = sized_names(unit, latency_px=deployed_px, macs_px=deployed_px)
    baseline_names = sized_names(unit, latency_px=deployed_px, macs_px=train_px)
    files: dict[str, str] = {}
    on_front = {int(r["trial"]) for r in front}
    history = hypervolume_history(recs, dims, reference) if reference is not None else {}
    write_csv(study_dir / "trials.csv", annotated(recs, on_front, history), names=names)
    files["trials_csv"] = str(study_dir / "trials.csv")

    title = (
        f"front of {plan.study_name}: {len(front)} of {sum(r['state'] == 'COMPLETE' for r in recs)} trials "
        f"(accuracy at the search fidelity{_px_note(train_px, deployed_px)})"
    )
    echo("\n" + table(front, unit=unit, title=title, names=names))
    textbook = versus_textbook(recs, dims)
    if textbook is not None:
        echo(textbook_line(textbook, recs, dims, unit, plan.fidelity.as_dict(), train_px))
    trained = [b for b in baselines if "skipped" not in b]
    calibration = plan.calibration()
    if trained:
        echo(
            "\n"
            + table(trained, unit=unit, title="reference networks at the same fidelity", names=baseline_names)
        )
        uncalibrated = calibration is not None and not calibration["calibrated"]
        for b in trained:
            by = b["dominated_by"]
            if not by:
                echo(f"  {b['name']}: not dominated by the front")
            elif uncalibrated:  # no claim: at this fidelity the order may not be the fully trained one
                echo(f"  {b['name']}: below trials {by} at this fidelity, which is uncalibrated: not evidence that "
                     "they beat it fully trained (calibrate: python -m nas.calibrate)")  # fmt: skip
            else:
                echo(f"  {b['name']}: dominated by trials {by}")
    for b in baselines:
        if "skipped" in b:
            echo(f"  {b['name']}: skipped ({b['skipped']})")

    summary = {
        "study_name": plan.study_name,
        "storage": storage,
        "space": plan.space.name,
        "space_hash": plan.space.hash(),
        "objectives": plan.objectives,
        "front_dims": dims,
        "fidelity": plan.identity_fidelity(),
        "calibration": calibration,
        "n_trials": n_counted,
        "states": {s.name: sum(t.state == s for t in trials) for s in TrialState},
        "rejected": sum(r["state"] == "REJECTED" for r in recs),
        "latency_unit": unit,
        # record key -> the column that holds it in trials.csv, front.csv and front.json (it says the size)
        "columns": names,
        "baseline_columns": baseline_names,  # a baseline's MACs are counted at the training size
        "not_trained": sum(bool(r.get("not_trained")) for r in recs),
        "hypervolume": front_hypervolume(front, dims, reference) if reference is not None else None,
        "versus_textbook": textbook,
    }
    # <study folder>/conf is a Hydra config root (model/exported/<name>.yaml): the searchpath plugin
    # (hydra_plugins/cnn_nas_exports.py) lets `model=exported/<name>` find it; export_dir is an extra copy.
    export_dir = study_dir / EXPORT_SUBDIR
    exports = export_front(
        front,
        study_name=plan.study_name,
        space=plan.space,
        data=plan.base["data"],
        fidelity=plan.fidelity.as_dict(),
        dirs=[export_dir, *([plan.export_dir] if plan.export_dir else [])],
        latency_unit=unit,
        input_size=plan.full["data"].get("image_size"),
        checkpoints=trial_checkpoints(trials),
        onnx=plan.onnx,
    )
    configs = {e["trial"]: e["paths"][0] for e in exports}
    front_rows = [{**r, "config": configs.get(r["trial"])} for r in front]
    write_json(
        study_dir / "front.json",
        {
            **summary,
            "front": [renamed(r, names) for r in front_rows],
            "baselines": [renamed(b, baseline_names) for b in baselines],
        },
    )
    write_csv(study_dir / "front.csv", front_rows, names=names, spec=True)
    files.update(front_json=str(study_dir / "front.json"), front_csv=str(study_dir / "front.csv"))
    if any(r["state"] == "COMPLETE" for r in recs):
        px = {"latency": deployed_px, "macs": deployed_px}
        # On a MACs axis a baseline's MACs (counted at the training size) would sit beside the trials' at the
        # deployed size: it is left off that axis rather than drawn at the wrong cost.
        plotted = baselines if train_px == deployed_px else [{**b, "macs": None} for b in baselines]
        fidelity = (
            f"{plan.fidelity.epochs} epoch(s), fraction {plan.base['data'].get('fraction')}"
            + _px_note(train_px, deployed_px)
            + _calibration_note(calibration)
        )
        for ydim, xdim in pareto_pairs(dims):
            name = pareto_file(ydim, xdim, dims)
            files[name.replace(".", "_")] = str(
                pareto_plot(
                    study_dir / name, recs, front, plotted, dims, unit=unit, px=px, pair=(ydim, xdim),
                    title=f"{plan.study_name} ({plan.space.name}): {axis_label(ydim, unit, px.get(ydim))} vs "
                    f"{axis_label(xdim, unit, px.get(xdim))}\n{fidelity}",
                )
            )  # fmt: skip
        if history:
            files["hypervolume_png"] = str(
                hypervolume_plot(
                    study_dir / "hypervolume.png",
                    history,
                    title=f"{plan.study_name}: hypervolume of the front after each trial\nreference point: "
                    + ", ".join(
                        f"{d} {v:.4g}" + (f" {unit}" if d == "latency" and unit else "")
                        for d, v in zip(dims, reference or (), strict=True)
                    ),
                    ylabel="hypervolume ("
                    + " x ".join(f"{d} {unit}" if d == "latency" else d for d in dims)
                    + ")",
                    marks={int(r["trial"]): str(r["reference"]) for r in recs if r.get("reference")},
                )
            )
        if plan.html:
            files.update(
                {
                    f"html_{k}": str(v)
                    for k, v in optuna_html(study, study_dir / "html", plan.objectives).items()
                }
            )
    summary["hypervolume_history"] = [{"trial": t, "hypervolume": v} for t, v in sorted(history.items())]
    write_json(
        study_dir / "summary.json",
        {**summary, "files": files, "exports": exports, "retrained": list(retrained), "baselines": list(baselines),
         **dict(stop or {})},
    )  # fmt: skip
    if exports:
        echo(
            f"\n{len(exports)} front architecture(s) exported to {export_dir}; train one at full fidelity with"
        )
        echo(f"  python -m experiments.train model=exported/{exports[0]['name']}")
    echo(f"outputs: {study_dir}")
    return Report(summary=summary, files=files, exports=exports)


def textbook_line(
    textbook: Mapping[str, Any],
    recs: Sequence[Mapping[str, Any]],
    dims: Sequence[str],
    unit: str,
    fidelity: Mapping[str, Any],
    train_px: int | None,
) -> str:
    """One line: the best network found against the most accurate reference network, then the other references
    the study started from, at the search fidelity."""
    by = {r["trial"]: r for r in recs}
    book, best = by[textbook["reference_trial"]], by[textbook["best_trial"]]

    def point(r: Mapping[str, Any]) -> str:
        return ", ".join(_fmt_dim(d, r, unit) for d in dims)

    px = f" at {train_px} px" if train_px else ""
    beaters = textbook["dominating_trials"]
    also = (
        f"; found networks that dominate {textbook['reference']}: trials {', '.join(map(str, beaters))}"
        if beaters else ""
    )  # fmt: skip
    groups: dict[str, list[str]] = {}  # the other references, by relation, most accurate first
    for o in textbook.get("others", []):
        ref = by[o["reference_trial"]]
        groups.setdefault(o["relation"], []).append(f"{o['reference']} (trial {ref['trial']}: {point(ref)})")
    others = "".join(f"; {rel} {' and '.join(names)}" for rel, names in groups.items())
    return (
        f"best network found: trial {best['trial']} ({point(best)}) {textbook['relation']} "
        f"{textbook['reference']} (trial {book['trial']}: {point(book)}){others}, "
        f"{'all' if others else 'both'} at the search fidelity ({fidelity.get('epochs')} epoch(s){px}), "
        f"not fully trained{also}"
    )


def _fmt_dim(dim: str, r: Mapping[str, Any], unit: str) -> str:
    value = r[ATTR_OF[dim]]
    if dim == "accuracy":
        return f"accuracy {value:.4f}"
    if dim == "latency":
        return f"{value:.3g} {unit}".rstrip()
    return f"{dim} {value:.4g}"


def _px_note(train_px: int | None, deployed_px: int | None) -> str:
    """The titles' word on sizes when training used another one than the costs."""
    return f", trained at {train_px} px" if train_px and train_px != deployed_px else ""


def _calibration_note(calibration: Mapping[str, Any] | None) -> str:
    """The plot title's word on the fidelity: its measured rho with the reference, or "uncalibrated"."""
    if calibration is None:
        return ""
    return (
        f" (rho {calibration['rho']:+.2f} vs reference)" if calibration["calibrated"] else " (uncalibrated)"
    )
