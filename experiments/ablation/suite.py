"""Suites: a published module analysis as a list of ablations, reported beside the paper's own deltas.

A suite config (conf/suite/<name>.yaml) names a reference CSV (columns axis, variant, top1, baseline_top1,
note) and maps each of its rows to Hydra overrides of the ablation baseline, or to a reason it cannot be run
here. The report gives, per row, the paper's delta, ours with its confidence interval, its p-value and the
q-value over the suite's comparisons (significant: q < 1 - confidence), and whether the signs agree.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments.ablation.config import Composer
from experiments.ablation.report import (
    fdr_legend,
    fmt_p,
    human,
    notes,
    pct,
    pm,
    table_rows,
    write_csv,
    write_table_json,
)
from experiments.ablation.runner import Arm, plan_arm
from nas.stats import EQUAL_RTOL

ROW_KEYS = {"axis", "variant", "overrides", "skip", "requires"}
# The published tables a suite compares with: $NAS_REFERENCE_DIR, by default ../shared/reference beside the
# checkout (an installed package has no checkout: set the variable).
REFERENCE_ENV = "NAS_REFERENCE_DIR"
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def load_reference(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """{(axis, variant): {"top1", "baseline_top1", "delta", "note"}} from a reference CSV."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            top1, base = float(row["top1"]), float(row["baseline_top1"])
            out[(row["axis"], row["variant"])] = {
                "top1": top1,
                "baseline_top1": base,
                # The CSV holds 3 decimals: round so that equal accuracies give exactly 0.
                "delta": round(top1 - base, 6),
                "note": row.get("note", ""),
            }
    return out


def reference_dir() -> Path:
    """Where suites' reference tables are read: $NAS_REFERENCE_DIR, else the project's shared reference folder
    (../shared/reference beside the checkout; the tables are read from there, never copied into the package)."""
    return Path(os.environ.get(REFERENCE_ENV) or DEFAULT_REFERENCE_DIR)


def reference_path(suite: dict[str, Any]) -> Path:
    """The suite's reference table: `suite.reference` as given when absolute, else in reference_dir()."""
    ref = Path(str(suite.get("reference", "")))
    return ref if ref.is_absolute() else reference_dir() / ref


def check_suite(suite: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Validate a suite config's shape and its reference file; returns the reference table."""
    name = suite.get("name", "?")
    path = reference_path(suite)
    if not path.is_file():
        raise ValueError(
            f"suite {name!r}: reference table {path} not found; the published tables are in the project's shared "
            f"reference folder: point ${REFERENCE_ENV} at it (export {REFERENCE_ENV}=<folder with "
            f"{path.name}>) or give the file with suite.reference=<absolute path>"
        )
    ref = load_reference(path)
    rows = suite.get("rows")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"suite {name!r} has no rows")
    for i, row in enumerate(rows):
        where = f"suite {name!r} row {i} ({row.get('axis')}/{row.get('variant')})"
        unknown = set(row) - ROW_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; valid: {', '.join(sorted(ROW_KEYS))}")
        if ("overrides" in row) == ("skip" in row):
            raise ValueError(
                f"{where}: give exactly one of `overrides` (a list, [] for the baseline) or `skip`"
            )
        if (str(row.get("axis")), str(row.get("variant"))) not in ref:
            raise ValueError(f"{where}: not in the reference table {path.name}")
    return ref


def plan_suite(
    compose: Composer, shared: Sequence[str], suite: dict[str, Any], *, plan: Callable[..., Arm] = plan_arm
) -> list[Arm]:
    """One arm per suite row (composed and validated by `plan`, or skipped with its reason); no training."""
    ref = check_suite(suite)
    planned: dict[str, Arm] = {}  # many rows share overrides (every paper-baseline row is []): plan each once
    arms = []
    for row in suite["rows"]:
        axis, variant = str(row["axis"]), str(row["variant"])
        paper = ref[(axis, variant)]
        meta = {"paper_axis": axis, "paper_variant": variant, "paper_delta": paper["delta"],
                "paper_top1": paper["top1"], "paper_note": paper["note"]}  # fmt: skip
        label = f"{axis}/{variant}"
        if "skip" in row:
            arms.append(Arm(label, [], skip=f"not reproduced: {row['skip']}", meta=meta))
            continue
        overrides = [str(o) for o in row["overrides"] or []]
        memo = json.dumps([overrides, row.get("requires")], sort_keys=True)
        if memo not in planned:
            planned[memo] = plan(compose, shared, overrides, label=label, requires=row.get("requires"))
        arms.append(dataclasses.replace(planned[memo], label=label, meta=meta))
    return arms


def sign_agreement(paper: float, ours: float) -> str:
    """ "yes" / "no" when both deltas are non-zero; "paper 0" / "ours 0" when one is 0 (neither agrees nor
    disagrees: not counted); "–" without ours. Ours is 0 up to float rounding: a mean of deltas on the
    accuracy grid that cancel (+1 and -1 pp) comes out as about 1e-17, not 0."""
    if ours is None or not math.isfinite(ours):
        return "–"
    if paper == 0:
        return "paper 0"
    if abs(ours) <= EQUAL_RTOL:
        return "ours 0"
    return "yes" if (paper > 0) == (ours > 0) else "no"


def suite_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows of a suite result: the paper's delta beside ours, per reference row."""
    out = []
    base_key = result["baseline"].get("key")
    for r in table_rows(result)[1:]:
        meta = r.get("meta", {})
        is_base = r.get("key") is not None and r.get("key") == base_key
        status = "baseline" if is_base else r["status"]
        significant = not is_base and r["significant"]  # after FDR control over the suite (report.adjust)
        agree = "baseline" if is_base else sign_agreement(meta.get("paper_delta", 0.0), r["delta"])
        out.append({
            **r,
            "paper_axis": meta.get("paper_axis"),
            "paper_variant": meta.get("paper_variant"),
            "paper_delta": meta.get("paper_delta"),
            "paper_note": meta.get("paper_note", ""),
            "signs_agree": agree,
            "significant": bool(significant),
            "status": status,
        })  # fmt: skip
    return out


SUITE_COLUMNS = (
    "paper_axis",
    "paper_variant",
    "paper_delta",
    "overrides",
    "status",
    "n_paired",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "q_value",
    "signs_agree",
    "significant",
    "mean",
    "ci_low",
    "ci_high",
    "params",
    "macs",
    "latency",
    "latency_unit",
    "train_time_s",
    "note",
)


def suite_markdown(rows: Sequence[dict[str, Any]], result: dict[str, Any]) -> str:
    conf = int(round(100 * float(result["confidence"])))
    base = table_rows(result)[0]
    compared = [r for r in rows if r["signs_agree"] in ("yes", "no")]
    agree = sum(r["signs_agree"] == "yes" for r in compared)
    sig = [r for r in compared if r["significant"]]
    sig_agree = sum(r["signs_agree"] == "yes" for r in sig)
    skipped = [r for r in rows if r["status"].startswith("not ")]
    lines = [
        f"# Suite {result.get('suite', '')}: the paper's deltas beside ours",
        "",
        f"Baseline {result['metric']}: {pm(base['mean'], base['ci_low'], base['ci_high'])} % "
        f"({base['n']} seeds); budget: {result.get('budget', '')}.",
        f"Signs agree in **{agree} of {len(compared)}** rows where both deltas are non-zero; "
        f"{sig_agree} of the {len(sig)} rows significant after false-discovery-rate control agree. "
        f"{len(skipped)} rows not run (reasons below).",
        "",
        f"| paper axis | variant | paper Δ pp | our overrides | our Δ pp ({conf} % CI) | p | q (FDR) | signs agree | "
        "params | MACs | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours = pm(r["delta"], r["delta_ci_low"], r["delta_ci_high"], signed=True)
        agree_txt = r["signs_agree"] + (" *" if r["significant"] else "")
        lines.append(
            f"| {r['paper_axis']} | {r['paper_variant']} | {pct(r['paper_delta'], signed=True)} "
            f"| {r['overrides'] or ('(baseline)' if r['status'] == 'baseline' else '–')} | {ours} | {fmt_p(r['p_value'])} "
            f"| {fmt_p(r['q_value'])} | {agree_txt} | {human(r['params'])} | {human(r['macs'])} | {r['status']} |"
        )
    lines += ["", fdr_legend(rows, float(result["confidence"])) + " Paper Δ = top1 − baseline_top1 of the "
              "reference table; ours = paired mean difference over seeds."]  # fmt: skip
    lines += notes(rows, name="arm")
    return "\n".join(lines) + "\n"


def suite_plot(rows: Sequence[dict[str, Any]], path: Path, *, confidence: float) -> None:
    """Our delta (with CI) against the paper's, one point per row; agreement in quadrants I and III."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in rows if r["signs_agree"] in ("yes", "no", "paper 0", "ours 0")]
    fig, ax = plt.subplots(figsize=(7, 6))
    for r in pts:
        x, y = 100 * r["paper_delta"], 100 * r["delta"]
        half = 100 * (r["delta_ci_high"] - r["delta_ci_low"]) / 2 if math.isfinite(r["delta_ci_low"]) else 0.0
        color = {"yes": "tab:green", "no": "tab:red"}.get(r["signs_agree"], "0.5")
        ax.errorbar([x], [y], yerr=[half], fmt="o", color=color, ms=4, capsize=2, alpha=0.8)
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("paper Δ top-1 (pp, ImageNet)")
    ax.set_ylabel(f"our Δ (pp), paired {int(round(100 * confidence))} % CI")
    ax.set_title("signs agree: green; disagree: red")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_suite_report(result: dict[str, Any], out_dir: Path, stem: str = "suite") -> dict[str, Path]:
    """<stem>.csv, <stem>.md, <stem>.json and <stem>.png of a suite result."""
    rows = suite_rows(result)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "json", "png")}
    write_csv(rows, paths["csv"], SUITE_COLUMNS)
    write_table_json(result, rows, paths["json"], SUITE_COLUMNS)
    paths["md"].write_text(suite_markdown(rows, result))
    suite_plot(rows, paths["png"], confidence=float(result["confidence"]))
    return paths
