"""The front and the trials as text and CSV (the report's table and its trials.csv / front.csv)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


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


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _millions(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.3f}M"
