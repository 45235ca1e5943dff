"""Ablation tables (CSV, Markdown, JSON) and plots (PNG: accuracy and delta bars with confidence intervals).

A table is one family of tests: its p-values are adjusted together (Benjamini-Hochberg q-values) and a row is
significant when its q-value is below 1 - confidence."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.stats import fdr_q_values, paired, summarize
from nas.tracking import write_json

COLUMNS = (
    "arm",
    "key",
    "overrides",
    "status",
    "n",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "q_value",
    "significant",
    "n_paired",
    "params",
    "macs",
    "latency",
    "latency_unit",
    "train_time_s",
    "note",
)


def _values(arm: dict[str, Any]) -> dict[int, float]:
    return {int(seed): float(v) for seed, v in arm.get("values", [])}


def arm_status(arm: dict[str, Any], seeds: int, *, baseline: bool = False) -> str:
    """The arm's state: baseline, ok, not applicable / not reproduced, failed k/n, diverged k/n, or k/n seeds."""
    if arm.get("skip"):
        return str(arm["skip"])
    n = len(arm.get("values", []))
    fails = arm.get("failures") or []
    if fails:
        return f"failed {len(fails)}/{seeds}: {fails[0][1]}"
    diverged = arm.get("diverged") or []
    if diverged:
        return f"diverged {len(diverged)}/{seeds}: {diverged[0][1]}"
    if n < seeds:
        return f"{n}/{seeds} seeds"
    return "baseline" if baseline else "ok"


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm (baseline first): accuracy mean and t-CI, paired delta vs the baseline, its p-value, the
    q-value over the table's comparisons and whether it is significant at that (see `adjust`)."""
    conf = float(result.get("confidence", 0.95))
    seeds = int(result.get("seeds", 0))
    base = result["baseline"]
    base_vals = _values(base)
    rows = []
    for i, arm in enumerate([base, *result.get("variants", [])]):
        vals = _values(arm)
        s = summarize([vals[k] for k in sorted(vals)], conf)
        row: dict[str, Any] = {
            "arm": arm["label"],
            "key": arm.get("key"),
            "overrides": " ".join(arm.get("overrides", [])),
            "status": arm_status(arm, seeds, baseline=i == 0),
            "n": s.n,
            "mean": s.mean,
            "sd": s.sd,
            "ci_low": s.low,
            "ci_high": s.high,
            "params": arm.get("params"),
            "macs": arm.get("macs"),
            "latency": (arm.get("latency") or {}).get("value", math.nan),
            "latency_unit": (arm.get("latency") or {}).get("unit", ""),
            "train_time_s": arm.get("train_time_s", math.nan),
        }
        if i > 0 and arm.get("key") is not None and arm.get("key") == base.get("key"):
            row["status"] = "same config as baseline"
        if i == 0 or arm.get("key") == base.get("key"):
            row.update(delta=0.0 if vals else math.nan, delta_ci_low=math.nan, delta_ci_high=math.nan,
                       p_value=math.nan, n_paired=len(vals), note=s.note)  # fmt: skip
        else:
            pr = paired(base_vals, vals, conf)
            row.update(delta=pr.delta.mean, delta_ci_low=pr.delta.low, delta_ci_high=pr.delta.high, p_value=pr.p,
                       n_paired=pr.n, note="; ".join(n for n in (s.note, pr.note) if n))  # fmt: skip
        row["meta"] = arm.get("meta", {})
        rows.append(row)
    return adjust(rows, conf)


def adjust(rows: list[dict[str, Any]], confidence: float) -> list[dict[str, Any]]:
    """Set each row's `q_value` (Benjamini-Hochberg, over the rows' distinct comparisons) and `significant`
    (q < 1 - confidence); returns `rows`.

    The family is every comparison with a p-value, each configuration once: suite rows that map to the same
    overrides are one test, not several. A row without a p-value (the baseline, no spread) has no q-value and
    is never significant.
    """
    tests: dict[Any, float] = {}
    for r in rows:
        if _finite(r.get("p_value")):
            tests.setdefault(_test_id(r), r["p_value"])
    q_of = dict(zip(tests, fdr_q_values(list(tests.values())), strict=True))
    for r in rows:
        q = q_of[_test_id(r)] if _finite(r.get("p_value")) else math.nan
        r["q_value"] = q
        r["significant"] = math.isfinite(q) and q < 1 - confidence
    return rows


def _test_id(row: dict[str, Any]) -> Any:
    return row["key"] if row.get("key") is not None else ("arm", row["arm"])


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------------- formatting


def pct(x: float, signed: bool = False) -> str:
    """A fraction as percent (points for deltas), 2 decimals; "–" for NaN."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def pm(center: float, low: float, high: float, signed: bool = False) -> str:
    """'85.31 ± 0.42' (percent / points); just the centre when the interval is undefined."""
    if center is None or not math.isfinite(center):
        return "–"
    if low is None or not math.isfinite(low):
        return pct(center, signed)
    return f"{pct(center, signed)} ± {100 * (high - low) / 2:.2f}"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def human(n: Any) -> str:
    """12345678 -> '12.3M'."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "–"
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def fmt_latency(value: Any, unit: str) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:.3g} {unit}".strip() if unit == "ms" else f"{human(value)} {unit}".strip()


def markdown(rows: Sequence[dict[str, Any]], *, metric: str, confidence: float, title: str = "") -> str:
    """The arms as a Markdown table."""
    c = int(round(100 * confidence))
    lines = [f"## {title}", ""] if title else []
    lines += [
        f"| arm | {metric} % ({c} % CI) | Δ vs baseline, pp ({c} % CI) | p (paired t) | q (FDR) | n | params "
        "| MACs | latency | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {pm(r['mean'], r['ci_low'], r['ci_high'])} "
            f"| {pm(r['delta'], r['delta_ci_low'], r['delta_ci_high'], signed=True)} | {fmt_p(r['p_value'])} "
            f"| {fmt_q(r)} | {r['n']} | {human(r['params'])} | {human(r['macs'])} "
            f"| {fmt_latency(r['latency'], r['latency_unit'])} | {r['status']} |"
        )
    lines += ["", fdr_legend(rows, confidence)]
    return "\n".join(lines + notes(rows)) + "\n"


def fmt_q(row: dict[str, Any]) -> str:
    """The row's q-value, with `*` when it is significant."""
    return fmt_p(row.get("q_value", math.nan)) + (" *" if row.get("significant") else "")


def fdr_legend(rows: Sequence[dict[str, Any]], confidence: float) -> str:
    """What q and `*` mean, with the size of the family the p-values were adjusted over."""
    n = len({_test_id(r) for r in rows if _finite(r.get("p_value"))})
    level = f"{1 - confidence:.2g}"
    return (
        f"q: the p-value adjusted for the table's {n} comparison{'s' if n != 1 else ''} (Benjamini-Hochberg false "
        f"discovery rate); `*`: significant, q < {level}."
    )


def notes(rows: Sequence[dict[str, Any]], name: str = "arm") -> list[str]:
    """Markdown lines explaining the rows whose interval or p-value is undefined (none when all are defined)."""
    out = [f"- {r[name]}: {r['note']}" for r in rows if r.get("note")]
    return ["", "Undefined statistics:", *out] if out else []


def write_csv(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] = COLUMNS) -> None:
    """Rows as CSV (fractions, not percent; empty cells for undefined values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in columns})
    tmp.replace(path)


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return "" if v is None else v


def plot(
    rows: Sequence[dict[str, Any]], path: Path, *, metric: str, confidence: float, title: str = ""
) -> None:
    """Two panels: each arm's accuracy with its CI, and each variant's paired delta with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["n"] > 0]
    labels = [r["arm"] for r in shown]
    h = max(2.5, 0.45 * len(shown) + 1.2)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, h), sharey=True)
    y = list(range(len(shown)))
    c = int(round(100 * confidence))

    def err(center: float, low: float, high: float) -> float:
        return 100 * (high - low) / 2 if math.isfinite(low) and math.isfinite(high) else 0.0

    means = [100 * r["mean"] for r in shown]
    colors = ["0.55" if i == 0 else "tab:blue" for i in range(len(shown))]
    ax1.barh(
        y, means, xerr=[err(r["mean"], r["ci_low"], r["ci_high"]) for r in shown], color=colors, capsize=3
    )
    lo = min((m - 5 for m in means), default=0)
    ax1.set_xlim(left=max(0.0, lo))
    ax1.set_xlabel(f"{metric} (%), {c} % CI")
    deltas = [100 * r["delta"] if math.isfinite(r["delta"]) else 0.0 for r in shown]
    dcol = ["0.55" if i == 0 else ("tab:green" if d >= 0 else "tab:red") for i, d in enumerate(deltas)]
    ax2.barh(y, deltas, xerr=[err(r["delta"], r["delta_ci_low"], r["delta_ci_high"]) for r in shown], color=dcol,
             capsize=3)  # fmt: skip
    ax2.axvline(0, color="k", lw=0.8)
    ax2.set_xlabel(f"Δ vs baseline (pp), paired {c} % CI")
    ax1.set_yticks(y, labels)
    ax1.invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_table_json(
    result: dict[str, Any], rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] = COLUMNS
) -> None:
    """The result record (its per-seed values) with the table beside it: `table`, the CSV's rows (null for an
    undefined value)."""
    table = [{k: _json_cell(r.get(k)) for k in columns} for r in rows]
    write_json(path, {**result, "table": table})


def _json_cell(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_report(
    result: dict[str, Any], out_dir: Path, *, stem: str = "ablation", title: str = ""
) -> dict[str, Path]:
    """Write <stem>.csv, <stem>.md, <stem>.json and <stem>.png for an ablation result; returns their paths."""
    rows = table_rows(result)
    metric, conf = result["metric"], float(result["confidence"])
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "json", "png")}
    write_csv(rows, paths["csv"])
    write_table_json(result, rows, paths["json"])
    text = markdown(rows, metric=metric, confidence=conf, title=title)
    text += (
        f"\n{result.get('seeds')} seeds per arm; Δ and p from the paired t-test over seeds both arms finished; "
        f"baseline: conf/ablate.yaml with {' '.join(result.get('shared', [])) or 'no overrides'}.\n"
    )
    paths["md"].write_text(text)
    plot(rows, paths["png"], metric=metric, confidence=conf, title=title)
    return paths
