"""The search's trial records and their Pareto front and hypervolume: which architectures are on the front, and by
how much (the maths of points is nas.pareto's)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas.pareto import dominates, front_indices, hypervolume
from nas.search.objectives import ATTR_OF, OBJECTIVES


def hypervolume_history(
    recs: Sequence[Mapping[str, Any]], dims: Sequence[str], reference: Sequence[float]
) -> dict[int, float]:
    """Trial number -> the hypervolume of the front of the trials up to and including it (in trial-number
    order, as Optuna's hypervolume history), against the study's fixed `reference`: non-decreasing.

    Only the records `front` admits count (trained COMPLETE trials with every quantity finite); the front is
    kept as it grows, so each step costs a front of the front plus one point, not a front of every trial.
    """
    dirs = [OBJECTIVES[d] for d in dims]
    kept: list[list[float]] = []
    value, out = 0.0, {}
    for r in sorted(recs, key=lambda r: r["trial"]):
        p = [r.get(ATTR_OF[d]) for d in dims]
        if trained(r) and all(_finite(v) for v in p):
            kept.append([float(v) for v in p])
            kept = [kept[i] for i in front_indices(kept, dirs)]
            value = hypervolume(kept, dirs, reference)
        out[int(r["trial"])] = value
    return out


def state_of(trial: Any) -> str:
    """A trial's state for reports: Optuna's state decides (the `state` user attribute can say COMPLETE for a
    trial told FAIL, e.g. by a second Ctrl-C or a lost-trial retry racing a live worker); marks only refine it:
    a PRUNED trial marked `rejected` is REJECTED, a FAIL marked `surplus` is SURPLUS."""
    name = trial.state.name
    a = trial.user_attrs
    if name == "PRUNED" and a.get("rejected"):
        return "REJECTED"
    if name == "FAIL" and a.get("surplus"):
        return "SURPLUS"
    return name


def records(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """Flat, JSON-friendly records of finished trials (optuna FrozenTrials)."""
    out = []
    for t in trials:
        a = t.user_attrs
        out.append(
            {
                "trial": t.number,
                "state": state_of(t),
                "not_trained": bool(a.get("not_trained", False)),
                "accuracy": a.get("accuracy"),
                "latency": a.get("latency"),
                "latency_unit": a.get("latency_unit"),
                "n_params": a.get("n_params"),
                "macs": a.get("macs"),
                "train_time_s": a.get("train_time_s"),
                "reused_from": a.get("reused_from"),
                # the textbook network an enqueued trial came from (e.g. "resnet20"); None for a sampled one
                "reference": a.get("reference"),
                "reason": a.get("reason", ""),
                "params": dict(t.params),
                "spec": a.get("spec"),
                "device_key": a.get("device_key"),
            }
        )
    return out


def front(recs: Sequence[Mapping[str, Any]], dims: Sequence[str]) -> list[dict[str, Any]]:
    """The non-dominated COMPLETE records over `dims` (e.g. accuracy, latency), sorted by the second dim.

    A record marked `not_trained` (accuracy not clearly above chance) is never on it. A reused duplicate is
    left out when the trial it copies is there (one row per architecture).
    """
    done = [r for r in recs if trained(r) and all(_finite(r.get(ATTR_OF[d])) for d in dims)]
    done = [r for r in done if r.get("reused_from") is None] + [
        r
        for r in done
        if r.get("reused_from") is not None and not any(o["trial"] == r["reused_from"] for o in done)
    ]
    dirs = [OBJECTIVES[d] for d in dims]
    pts = [[float(r[ATTR_OF[d]]) for d in dims] for r in done]
    idx = front_indices(pts, dirs)
    out = [dict(done[i]) for i in idx]
    key = ATTR_OF[dims[1]] if len(dims) > 1 else ATTR_OF[dims[0]]
    return sorted(out, key=lambda r: (r[key], r["trial"]))


def trained(rec: Mapping[str, Any]) -> bool:
    """Whether a record is a COMPLETE trial whose network learnt something (not marked `not_trained`)."""
    return rec.get("state") == "COMPLETE" and not rec.get("not_trained")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def dominated_by(
    baseline: Mapping[str, Any], front: Sequence[Mapping[str, Any]], dims: Sequence[str]
) -> list[int]:
    """Trial numbers of front rows that dominate `baseline` over `dims`."""
    b = [baseline.get(ATTR_OF[d]) for d in dims]
    if any(v is None or not math.isfinite(v) for v in b):
        return []
    dirs = [OBJECTIVES[d] for d in dims]
    return [r["trial"] for r in front if dominates([float(r[ATTR_OF[d]]) for d in dims], b, dirs)]


def front_hypervolume(
    front: Sequence[Mapping[str, Any]], dims: Sequence[str], reference: Sequence[float]
) -> dict[str, Any] | None:
    """{value, reference} of a front over `dims` (two or more) against the study's fixed `reference` point
    (nas.search.study.hypervolume_reference); None without a front.

    The reference is the study's, never the front's own worst point: with a fixed reference the value is
    Pareto-compliant (a point that dominates another never lowers it) and comparable across resumes.
    """
    pts = [[float(r[ATTR_OF[d]]) for d in dims] for r in front]
    if not pts:
        return None
    value = hypervolume(pts, [OBJECTIVES[d] for d in dims], reference)
    return {"value": value, "reference": [float(v) for v in reference]}


def versus_textbook(recs: Sequence[Mapping[str, Any]], dims: Sequence[str]) -> dict[str, Any] | None:
    """How the most accurate network the search found compares with the reference networks the study started from
    (trials with `reference`), all at the search fidelity: with the most accurate of them (`reference`,
    `relation`, the found trials that dominate it) and with each other one (`others`, most accurate first: at a
    cheap fidelity a shallower textbook network may rank above ResNet-20, which the user still asks about).
    None without a reference and a found network."""
    done = [r for r in recs if trained(r) and all(_finite(r.get(ATTR_OF[d])) for d in dims)]
    refs = [r for r in done if r.get("reference")]
    found = [r for r in done if not r.get("reference")]
    if not refs or not found:
        return None
    acc = ATTR_OF[dims[0]]
    refs = sorted(refs, key=lambda r: -r[acc])
    book, best = refs[0], max(found, key=lambda r: r[acc])
    dirs = [OBJECTIVES[d] for d in dims]
    point = lambda r: [float(r[ATTR_OF[d]]) for d in dims]  # noqa: E731

    def relation(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
        if dominates(point(a), point(b), dirs):
            return "dominates"
        if dominates(point(b), point(a), dirs):
            return "is dominated by"
        return "trades off with"

    beaters = [r["trial"] for r in found if dominates(point(r), point(book), dirs)]
    others = [{"reference": r["reference"], "reference_trial": r["trial"], "relation": relation(best, r)}
              for r in refs[1:]]  # fmt: skip
    return {"reference": book["reference"], "reference_trial": book["trial"], "best_trial": best["trial"],
            "relation": relation(best, book), "dominating_trials": beaters, "others": others}  # fmt: skip

