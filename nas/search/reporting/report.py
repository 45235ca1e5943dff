"""The search's report: the front as a table (printed), CSV and JSON, trials.csv, the Pareto plot, Optuna's
HTML figures, the front exported as model configs, and summary.json, written from the results it is given.

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

from nas.search.pareto import front_hypervolume
from nas.search.plan import SearchPlan
from nas.search.reporting.exports import EXPORT_SUBDIR, export_front, trial_checkpoints
from nas.search.reporting.figures import axis_label, optuna_html, pareto_plot
from nas.search.reporting.tables import table, write_csv
from nas.tracking import sync_command, write_json


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
    files: dict[str, str] = {}
    write_csv(study_dir / "trials.csv", recs)
    files["trials_csv"] = str(study_dir / "trials.csv")

    title = (
        f"front of {plan.study_name}: {len(front)} of {sum(r['state'] == 'COMPLETE' for r in recs)} trials"
    )
    echo("\n" + table(front, unit=unit, title=title))
    trained = [b for b in baselines if "skipped" not in b]
    calibration = plan.calibration()
    if trained:
        echo("\n" + table(trained, unit=unit, title="reference networks at the same fidelity"))
        uncalibrated = calibration is not None and not calibration["calibrated"]
        for b in trained:
            by = b["dominated_by"]
            if not by:
                echo(f"  {b['name']}: not dominated by the front")
            elif uncalibrated:  # no claim: at this fidelity the order may not be the fully trained one
                echo(f"  {b['name']}: below trials {by} at this fidelity, which is uncalibrated: not evidence that "
                     "they beat it fully trained (calibrate: python -m experiments.bench fidelity)")  # fmt: skip
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
        "not_trained": sum(bool(r.get("not_trained")) for r in recs),
        "hypervolume": front_hypervolume(front, dims, reference) if reference is not None else None,
    }
    write_json(study_dir / "front.json", {**summary, "front": list(front), "baselines": list(baselines)})
    write_csv(study_dir / "front.csv", front)
    files.update(front_json=str(study_dir / "front.json"), front_csv=str(study_dir / "front.csv"))
    if any(r["state"] == "COMPLETE" for r in recs):
        files["pareto_png"] = str(
            pareto_plot(
                study_dir / "pareto.png",
                recs,
                front,
                baselines,
                dims,
                unit=unit,
                title=f"{plan.study_name} ({plan.space.name}): {axis_label('accuracy')} vs {axis_label(dims[1], unit)}, "
                f"{plan.fidelity['epochs']} epoch(s), fraction {plan.base['data'].get('fraction')}"
                + _calibration_note(calibration),
            )
        )
        if plan.html:
            files.update(
                {
                    f"html_{k}": str(v)
                    for k, v in optuna_html(study, study_dir / "html", plan.objectives).items()
                }
            )
    # <study folder>/conf is a Hydra config root (model/exported/<name>.yaml): the searchpath plugin
    # (hydra_plugins/cnn_nas_exports.py) lets `model=exported/<name>` find it; export_dir is an extra copy.
    export_dir = study_dir / EXPORT_SUBDIR
    exports = export_front(
        front,
        study_name=plan.study_name,
        space=plan.space,
        data=plan.base["data"],
        fidelity=plan.fidelity,
        dirs=[export_dir, *([plan.export_dir] if plan.export_dir else [])],
        latency_unit=unit,
        input_size=plan.full["data"].get("image_size"),
        checkpoints=trial_checkpoints(trials),
    )
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
    hint = sync_command(group=plan.study_name)
    if hint:
        echo(f"W&B is offline: upload the runs with\n  {hint}")
    return Report(summary=summary, files=files, exports=exports)


def _calibration_note(calibration: Mapping[str, Any] | None) -> str:
    """The plot title's word on the fidelity: its measured rho with the reference, or "uncalibrated"."""
    if calibration is None:
        return ""
    return (
        f" (rho {calibration['rho']:+.2f} vs reference)" if calibration["calibrated"] else " (uncalibrated)"
    )
