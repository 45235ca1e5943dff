"""Pareto fronts and hypervolume of trial records, and the front as a table, CSV and JSON."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.study import OBJECTIVES

# Trial user attribute holding each front quantity.
ATTR_OF = {"accuracy": "accuracy", "latency": "latency", "params": "n_params", "macs": "macs"}


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether `a` is at least as good as `b` everywhere and better somewhere."""
    better = False
    for x, y, d in zip(a, b, directions, strict=True):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def front_indices(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (duplicates of a front point are all kept)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)
    ]


def hypervolume(
    points: Sequence[Sequence[float]], directions: Sequence[str], reference: Sequence[float]
) -> float:
    """Area (1 or 2 objectives) dominated by `points` and bounded by `reference` (a point worse than all).

    Points not strictly better than the reference in every objective add nothing.
    """
    if len(directions) > 2:
        raise ValueError("hypervolume is implemented for 1 or 2 objectives")
    sign = [-1.0 if d == "maximize" else 1.0 for d in directions]
    ref = [r * s for r, s in zip(reference, sign, strict=True)]
    pts = [[v * s for v, s in zip(p, sign, strict=True)] for p in points]  # all minimised now
    pts = [p for p in pts if all(v < r for v, r in zip(p, ref, strict=True))]
    if not pts:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    area, best_y = 0.0, ref[1]
    for x, y in sorted(pts):
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def records(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """Flat, JSON-friendly records of finished trials (optuna FrozenTrials)."""
    out = []
    for t in trials:
        a = t.user_attrs
        out.append(
            {
                "trial": t.number,
                "state": a.get("state") or t.state.name,
                "accuracy": a.get("accuracy"),
                "latency": a.get("latency"),
                "latency_unit": a.get("latency_unit"),
                "n_params": a.get("n_params"),
                "macs": a.get("macs"),
                "train_time_s": a.get("train_time_s"),
                "reused_from": a.get("reused_from"),
                "reason": a.get("reason", ""),
                "params": dict(t.params),
                "spec": a.get("spec"),
                "device_key": a.get("device_key"),
            }
        )
    return out


def front(recs: Sequence[Mapping[str, Any]], dims: Sequence[str]) -> list[dict[str, Any]]:
    """The non-dominated COMPLETE records over `dims` (e.g. accuracy, latency), sorted by the second dim.

    A reused duplicate is left out when the trial it copies is there (one row per architecture).
    """
    done = [r for r in recs if r["state"] == "COMPLETE" and all(_finite(r.get(ATTR_OF[d])) for d in dims)]
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


def table(rows: Sequence[Mapping[str, Any]], *, unit: str = "ms", title: str = "") -> str:
    """A fixed-width text table of front rows (and baselines, with a `name`)."""
    head = f"{'':<28}{'accuracy':>9}  {'latency':>10}  {'params':>9}  {'MACs':>9}  {'train s':>8}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for r in rows:
        label = str(r.get("name") or f"trial {r['trial']}")
        lat = r.get("latency")
        lat_s = "-" if lat is None else (f"{lat:.3f} {unit}" if unit == "ms" else f"{lat:.3g}")
        lines.append(
            f"{label[:27]:<28}{_num(r.get('accuracy'), '.4f'):>9}  {lat_s:>10}  "
            f"{_millions(r.get('n_params')):>9}  {_millions(r.get('macs')):>9}  {_num(r.get('train_time_s'), '.0f'):>8}"
        )
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows as CSV; the `params` dict is spread into `param.<name>` columns, the spec left out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("params", "spec")}
        row.update({f"param.{k}": v for k, v in (r.get("params") or {}).items()})
        flat.append(row)
    cols: list[str] = []
    for row in flat:
        cols += [c for c in row if c not in cols]
    # Written aside and moved into place: several search workers may write the same file as they finish.
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(flat)
    os.replace(tmp, path)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _millions(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.3f}M"
