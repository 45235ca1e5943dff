"""The training a search does after its trials, each its own step of the run loop:

- baselines: reference networks of the space's family, trained at the search fidelity, for the plot;
- retraining: the `retrain_top_k` most accurate front architectures at full fidelity;
- front weights: the checkpoints of trials that left the front are deleted as the search goes.

Baseline results are cached in the study's user attributes (`nas:baseline:<model>`, keyed by the run key: sized
spec + fidelity + data + optimiser + seed), so a resumed or re-reported study never retrains them, and
every worker sharing the study sees them; retraining results likewise (`nas:retrain:<trial>`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial

from blocks.assemble import build_model
from nas import fit as fitting
from nas import latency as latencies
from nas.config import CONF_DIR, to_plain
from nas.latency import spec_costs
from nas.search.guard import StopRequested
from nas.search.objectives import ATTR
from nas.search.plan import SearchPlan
from nas.search.records import front, records
from nas.search.reporting.exports import export_name
from nas.search.starts import ENQUEUED_ATTR
from nas.speed import time_layouts
from nas.tracking import latency_summary

PREFIX = ATTR + "baseline:"


def reference_models(families: Sequence[str], names: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """(name, spec) of conf/model/*.yaml whose `family` is in `families`, or exactly the `names` given."""
    paths = {p.stem: p for p in sorted((CONF_DIR / "model").glob("*.yaml"))}
    if names is not None:
        unknown = [n for n in names if n not in paths]
        if unknown:
            raise ValueError(f"unknown baseline models {unknown}; valid models: {', '.join(paths)}")
        chosen = list(names)
    else:
        chosen = list(paths)
    out = []
    for name in chosen:
        spec = to_plain(OmegaConf.load(paths[name]))  # Hydra's YAML dialect, as `model=<name>` reads it
        if names is not None or spec.get("family") in families:
            out.append((name, spec))
    return out


def run_baselines(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    *,
    train: bool = True,
    guard: Any = None,
    notify: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train (or read from the study) every baseline; returns one record per model, skipped ones with a reason."""
    cfg = plan.baselines
    if not cfg.enabled:
        return []
    # The networks the study started from are trials at the same fidelity already (nas.search.starts); a
    # reference left out of the start (outside the constraints) stays a baseline.
    started = set(study.user_attrs.get(ENQUEUED_ATTR) or ())
    models = [(n, s) for n, s in reference_models(plan.space.family, cfg.models) if n not in started]
    max_macs = cfg.max_macs
    out: list[dict[str, Any]] = []
    sized = []
    for name, spec in models:
        resolved = plan.resolved_spec(spec)
        try:
            sized.append((name, spec, resolved, spec_costs(resolved)))
        except ValueError as e:
            out.append(
                {"name": name, "skipped": f"does not build at this input size: {str(e).splitlines()[0]}"}
            )
    # Cheapest first: under baselines.max_share the cheaper family members are the ones that fit.
    sized.sort(key=lambda m: m[3]["macs"])
    share = cfg.max_share
    trials = trial_times(study) if share is not None else []
    allowed = float(share) / (1 - float(share)) * sum(t for _, t in trials) if share is not None else None
    spent = 0.0
    for name, spec, resolved, cost in sized:
        if max_macs is not None and cost["macs"] > float(max_macs):
            out.append(
                {
                    "name": name,
                    "skipped": f"{cost['macs'] / 1e6:.0f}M MACs > baselines.max_macs "
                    f"{float(max_macs) / 1e6:.0f}M",
                    "macs": cost["macs"],
                }
            )
            continue
        key = plan.run_key(resolved)
        cached = study.user_attrs.get(PREFIX + name)
        if cached and cached.get("run_key") == key:
            out.append(dict(cached))
            spent += float(cached.get("train_time_s") or 0.0)
            continue
        guess = None
        if allowed is not None:
            guess = timed_estimate(plan, study, spec) or estimate_seconds(trials, cost["macs"])
            if guess is not None and spent + guess > allowed:
                out.append(
                    {
                        "name": name,
                        "skipped": f"~{guess:.0f} s to train (estimated before training), over "
                        f"baselines.max_share {float(share):.2f} of the search's time ({allowed - spent:.0f} s "
                        "left); raise it or train fewer baselines",
                        "macs": cost["macs"],
                    }
                )
                continue
        if not train:
            out.append({"name": name, "skipped": "not trained yet (re-run to train it)"})
            continue
        notify(f"baseline {name}: training at the search fidelity ({cost['macs'] / 1e6:.0f}M MACs)")
        rec = _train_one(plan, study, study_dir, name, spec, resolved, key, guard)
        if guess is not None:  # the estimate beside the time it took (docs: baselines' share of the time)
            rec["estimated_s"] = round(guess, 1)
        spent += float(rec.get("train_time_s") or 0.0)
        out.append(rec)
    return out


def trial_times(study: optuna.Study) -> list[tuple[float, float]]:
    """(MACs, seconds) of every trial this study trained (reused results cost it nothing)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if a.get("train_time_s") and a.get("macs") and a.get("reused_from") is None:
            out.append((float(a["macs"]), float(a["train_time_s"])))
    return out


def step_seconds(plan: SearchPlan, spec: Mapping[str, Any]) -> float:
    """Seconds of one training step (forward + backward) of `spec` at the search fidelity's batch shape, in
    the faster memory layout: the layout probe's own timing (nas.speed.time_layouts), on throw-away weights."""
    resolved = plan.resolved_spec(spec)
    size, channels = int(resolved["input_size"]), int(resolved["in_channels"])
    shape = (int(plan.base["data"]["batch_size"]), channels, size, size)
    with torch.random.fork_rng(devices=[]):
        model = build_model(resolved)
    return min(time_layouts(model, shape, int(resolved["num_classes"])).values())


def timed_estimate(plan: SearchPlan, study: optuna.Study, spec: Mapping[str, Any]) -> float | None:
    """A network's training time at the search fidelity: the median trained trial's time, scaled by the ratio
    of one timed training step of the network to one of that trial's network (same batch shape, machine and
    moment). Extrapolating from the trials' MACs instead read preact_resnet18's 150 s as 43 s: small networks
    use the cores worse per MAC. None when no trained trial recorded its spec."""
    timed = [
        (float(a["train_time_s"]), a["spec"])
        for t in study.get_trials(deepcopy=False)
        if (a := t.user_attrs).get("train_time_s") and a.get("spec") and a.get("reused_from") is None
    ]
    if not timed:
        return None
    seconds, trial_spec = sorted(timed, key=lambda x: x[0])[len(timed) // 2]
    return seconds * step_seconds(plan, spec) / step_seconds(plan, trial_spec)


def estimate_seconds(trials: Sequence[tuple[float, float]], macs: float) -> float | None:
    """The fallback when no trial recorded its spec: a network's training time at the search fidelity from the
    trials' (MACs, seconds): a fixed cost
    (data, evaluation, start-up) plus a cost per MAC, fitted by least squares (both kept >= 0). Linear in
    MACs on purpose: a large network uses the cores a little better per MAC, so this errs towards skipping,
    which a time budget should (a power law fitted to small trials read ResNet-18's 2 minutes as 31 s). With
    fewer than 2 distinct sizes: proportional to MACs from the median trial, never below its time; None
    without trials."""
    if not trials:
        return None
    xs = [m for m, _ in trials]
    ys = [s for _, s in trials]
    if len(set(xs)) >= 2:
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = max(
            0.0,
            sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs),
        )
        fixed = max(0.0, my - slope * mx)
        return fixed + slope * macs
    m, s = sorted(trials)[len(trials) // 2]
    return s * max(1.0, macs / m)


def _train_one(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    name: str,
    spec: dict,
    resolved: dict,
    key: str,
    guard: Any,
) -> dict[str, Any]:
    # Through the module attributes, so a test can count (or replace) the training and the measurement.
    latency, record = latencies.latency_objective(plan.deployed_spec(spec), plan.latency)
    cfg = plan.run_config(
        spec, output_dir=str(study_dir / "baselines" / name), name=f"{plan.study_name}-{name}"
    )
    section = guard.training() if guard is not None else contextlib.nullcontext()
    try:
        with section:
            result = fitting.fit(
                cfg,
                group=plan.study_name,
                job_type="baseline",
                tags=[f"space:{plan.space.name}", f"model:{name}"],
                verbose=False,
                summary=latency_summary(latency, record),
            )
    except StopRequested:
        raise
    except Exception as e:
        return {
            "name": name,
            "skipped": f"training failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
        }
    rec = {
        "name": name,
        "accuracy": result.metrics.get(plan.metric),
        "latency": float(latency),
        "latency_unit": record.get("unit", ""),
        "n_params": result.params,
        "macs": result.macs,
        "train_time_s": round(result.wall_time_s, 3),
        "run_key": key,
        "device_key": record.get("fingerprint"),
        "output_dir": result.output_dir,
    }
    study.set_user_attr(PREFIX + name, rec)
    return rec


def retrain_top(
    plan: SearchPlan,
    study: Any,
    study_dir: Path,
    fr: Sequence[Mapping[str, Any]],
    *,
    guard: Any = None,
    echo: Any = print,
) -> list[dict[str, Any]]:
    """Train the `retrain_top_k` most accurate front architectures at full fidelity (cached in the study)."""
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
            result = fitting.fit(
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


class FrontWeights:
    """Deletes the checkpoints of finished trials that are not on the front, as the search goes.

    A trial that falls off the front never comes back (it is dominated by a completed trial for good), so
    disk use stays about the front's size, and each call looks only at the trials it has not seen yet and
    at those it kept. Running trials are never touched (they are not finished). Only files a trial owns are
    deleted: its own `output_dir`, under the study's folder `root`; a reused trial points at its source's
    files (`source_output_dir`, maybe another study's front) and owns none.
    """

    def __init__(self, dims: Sequence[str], root: Path) -> None:
        self.dims = list(dims)
        self.root = Path(root).resolve()
        self._seen: set[int] = set()
        self._kept: dict[int, Path] = {}  # trial number -> run folder whose checkpoints were kept

    def _owned(self, t: FrozenTrial) -> Path | None:
        """The run folder `t` owns under the study's folder, or None."""
        out = t.user_attrs.get("output_dir")
        if not out or t.user_attrs.get("reused_from") is not None:
            return None
        path = Path(out).resolve()
        return path if path.is_relative_to(self.root) else None

    def prune(self, trials: Sequence[FrozenTrial]) -> list[Path]:
        """Update with the study's `trials` (as just read); returns the checkpoints deleted."""
        finished = [t for t in trials if t.state.is_finished()]
        on_front = {r["trial"] for r in front(records(finished), self.dims)}
        check = dict(self._kept)
        for t in finished:
            if t.number not in self._seen:
                self._seen.add(t.number)
                owned = self._owned(t)
                if owned is not None:
                    check[t.number] = owned
        # By folder: a reused duplicate on the front points at the folder of the trial it copies.
        keep = {
            Path(where).resolve()
            for t in finished
            if t.number in on_front
            for where in (t.user_attrs.get("output_dir"), t.user_attrs.get("source_output_dir"))
            if where
        }
        removed: list[Path] = []
        self._kept = {}
        for number, out in check.items():
            if out in keep:
                self._kept[number] = out
                continue
            for ckpt in (out / "checkpoints").glob("*.ckpt"):
                try:
                    ckpt.unlink()
                    removed.append(ckpt)
                except OSError:
                    pass
        return removed
