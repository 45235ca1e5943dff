"""Reference networks of the space's family, trained at the search fidelity, as baselines for the front.

Results are cached in the study's user attributes (`nas:baseline:<model>`, keyed by the run key: sized
spec + fidelity + data + optimiser + seed), so a resumed or re-reported study never retrains them, and
every worker sharing the study sees them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.plan import SearchPlan
from nas.study import ATTR, OBJECTIVES

PREFIX = ATTR + "baseline:"


def reference_models(families: Sequence[str], names: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """(name, spec) of conf/model/*.yaml whose `family` is in `families`, or exactly the `names` given."""
    from omegaconf import OmegaConf

    from nas.config import CONF_DIR, to_plain

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


def dominated_by(
    baseline: Mapping[str, Any], front: Sequence[Mapping[str, Any]], dims: Sequence[str]
) -> list[int]:
    """Trial numbers of front rows that dominate `baseline` over `dims`."""
    from nas.pareto import ATTR_OF, dominates

    b = [baseline.get(ATTR_OF[d]) for d in dims]
    if any(v is None or not math.isfinite(v) for v in b):
        return []
    dirs = [OBJECTIVES[d] for d in dims]
    return [r["trial"] for r in front if dominates([float(r[ATTR_OF[d]]) for d in dims], b, dirs)]


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
    from blocks.cost import spec_cost

    cfg = plan.baselines
    if not cfg.get("enabled", True):
        return []
    models = reference_models(plan.space.family, cfg.get("models"))
    max_macs = cfg.get("max_macs")
    out: list[dict[str, Any]] = []
    for name, spec in models:
        resolved = plan.resolved_spec(spec)
        try:
            cost = spec_cost(resolved)
        except ValueError as e:
            out.append(
                {"name": name, "skipped": f"does not build at this input size: {str(e).splitlines()[0]}"}
            )
            continue
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
            continue
        if not train:
            out.append({"name": name, "skipped": "not trained yet (re-run to train it)"})
            continue
        notify(f"baseline {name}: training at the search fidelity ({cost['macs'] / 1e6:.0f}M MACs)")
        out.append(_train_one(plan, study, study_dir, name, spec, resolved, key, guard))
    return out


def _train_one(
    plan: SearchPlan,
    study: optuna.Study,
    study_dir: Path,
    name: str,
    spec: dict,
    resolved: dict,
    key: str,
    guard,
) -> dict[str, Any]:
    import contextlib

    from nas.fit import fit
    from nas.latency import latency_objective
    from nas.tracking import latency_summary

    latency, record = latency_objective(plan.deployed_spec(spec), plan.latency)
    cfg = plan.run_config(
        spec, output_dir=str(study_dir / "baselines" / name), name=f"{plan.study_name}-{name}"
    )
    section = guard.training() if guard is not None else contextlib.nullcontext()
    try:
        with section:
            result = fit(
                cfg,
                group=plan.study_name,
                job_type="baseline",
                tags=[f"space:{plan.space.name}", f"model:{name}"],
                verbose=False,
                summary=latency_summary(latency, record),
            )
    except Exception as e:
        from nas.trial import StopRequested

        if isinstance(e, StopRequested):
            raise
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
