"""The front and the trials as text and CSV (the report's table and its trials.csv / front.csv).

A cost depends on the image size it was counted or timed at, and a search may train at one size (the
fidelity's `image_size`, e.g. 14 px) and judge its networks at another (the data's, e.g. 28 px): every cost
column says its size (`latency_ms_28px`, `macs_28px`), in the printed table, the CSV files and front.json.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def sized_names(unit: str, *, latency_px: int | None, macs_px: int | None) -> dict[str, str]:
    """Record key -> the column name that says the image size its value was measured at: `latency` ->
    `latency_ms_28px` (its unit too: `latency_macs_28px` under latency.mode=macs), `macs` -> `macs_28px`."""
    lat = "_".join(
        ["latency", *([unit.lower()] if unit else []), *([f"{latency_px}px"] if latency_px else [])]
    )
    return {"latency": lat, "macs": f"macs_{macs_px}px" if macs_px else "macs"}


def renamed(row: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """`row` with its keys renamed by `names` (the others kept, in order)."""
    return {names.get(k, k): v for k, v in row.items()}


def annotated(
    recs: Sequence[Mapping[str, Any]], on_front: set[int], history: Mapping[int, float]
) -> list[dict[str, Any]]:
    """The trials' rows (trials.csv, the W&B trials table): each record with `on_front` after its state and,
    last, `hypervolume`: the front's hypervolume after that trial (None without the study's reference)."""
    out = []
    for r in recs:
        row: dict[str, Any] = {}
        for k, v in r.items():
            row[k] = v
            if k == "state":
                row["on_front"] = int(r["trial"]) in on_front
        row["hypervolume"] = history.get(int(r["trial"]))
        out.append(row)
    return out


def label(row: Mapping[str, Any]) -> str:
    """A row's name in a table: a baseline's name, or `trial 3`, with the reference network a trial came
    from beside it (`trial 3 (resnet20)`)."""
    if row.get("name"):
        return str(row["name"])
    return f"trial {row['trial']}" + (f" ({row['reference']})" if row.get("reference") else "")


def table(
    rows: Sequence[Mapping[str, Any]],
    *,
    unit: str = "ms",
    title: str = "",
    names: Mapping[str, str] | None = None,
) -> str:
    """A fixed-width text table of front rows (and baselines, with a `name`); `names`: the cost columns'
    headers (`sized_names`), params and MACs in millions."""
    names = names or {}
    lat, macs = names.get("latency", "latency"), names.get("macs", "MACs")
    lat_w, macs_w = max(10, len(lat)), max(9, len(macs) + 4)
    head = f"{'':<28}{'accuracy':>9}  {lat:>{lat_w}}  {'params (M)':>10}  {macs + ' (M)':>{macs_w}}  {'train s':>8}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for r in rows:
        value = r.get("latency")
        lat_s = "-" if value is None else (f"{value:.3f}" if unit == "ms" else f"{value:.3g}")
        lines.append(
            f"{label(r)[:27]:<28}{_num(r.get('accuracy'), '.4f'):>9}  {lat_s:>{lat_w}}  "
            f"{_millions(r.get('n_params')):>10}  {_millions(r.get('macs')):>{macs_w}}  "
            f"{_num(r.get('train_time_s'), '.0f'):>8}"
        )
    return "\n".join(lines)


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    names: Mapping[str, str] | None = None,
    spec: bool = False,
) -> None:
    """Rows as CSV: the `params` dict spread into `param.<name>` columns, keys renamed by `names`
    (`sized_names`); the spec left out, or (`spec=True`) written as one JSON column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = []
    for r in rows:
        row = renamed({k: v for k, v in r.items() if k not in ("params", "spec")}, names or {})
        row.update({f"param.{k}": v for k, v in (r.get("params") or {}).items()})
        if spec:
            row["spec"] = json.dumps(r.get("spec"), sort_keys=True, default=str)
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


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _millions(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.3f}"
