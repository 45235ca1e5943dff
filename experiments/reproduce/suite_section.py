"""The suite's part of the reproduction page, from the run cache only: plan the rows, read what is cached.

Planning composes and builds every row's network (as `experiments.ablate` does before training) to get each
row's cache key; then only `seed<k>.json` records and cached latency side records are read. Nothing trains and
nothing is timed: a row whose runs are not all in the cache is marked missing, and the page says how many runs
are missing and which command fills them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.ablate import plan, result_header
from experiments.ablation.cache import RunCache
from experiments.ablation.report import fdr_legend, fmt_p, human, pct, pm
from experiments.ablation.runner import arm_latency, arm_result, cached_records, unique_arms
from experiments.ablation.suite import suite_plot, suite_rows

# The agreement rate counts rows where the paper's effect is larger than this (a fraction: 1 pp).
MIN_PAPER_EFFECT = 0.01


@dataclasses.dataclass
class SuiteState:
    """The suite result as the cache holds it, with what is missing and where the runs came from."""

    result: dict[str, Any]
    rows: list[dict[str, Any]]
    configurations: int
    runs_total: int
    runs_missing: int
    rows_missing: int
    records: list[dict[str, Any]]  # every cached record found, with "path" and "run_dir" added


def select_rows(suite: dict[str, Any], patterns: Sequence[str]) -> dict[str, Any]:
    """The suite with only the rows whose `axis/variant` matches one of `patterns` (fnmatch; all when empty)."""
    if not patterns:
        return suite
    rows = [
        r
        for r in suite["rows"]
        if any(fnmatch.fnmatchcase(f"{r['axis']}/{r['variant']}", p) for p in patterns)
    ]
    if not rows:
        valid = ", ".join(f"{r['axis']}/{r['variant']}" for r in suite["rows"][:6])
        raise ValueError(
            f"--rows {','.join(patterns)} matches no row of suite {suite.get('name')!r} (rows look like {valid}, ...)"
        )
    return {**suite, "rows": rows}


def suite_from_cache(cfg: dict[str, Any], overrides: Sequence[str]) -> SuiteState:
    """Plan the suite `cfg` (a composed ablate config with a suite) and collect its cached runs; trains nothing."""
    baseline, arms, shared = plan(cfg, overrides)
    cache = RunCache(cfg["cache_dir"])
    seeds, metric = int(cfg["seeds"]), str(cfg["metric"])
    runnable = [baseline, *(a for a in arms if a.runnable)]
    records = cached_records(runnable, seeds=seeds, cache=cache)
    latency_cfg = cfg.get("latency") or {}

    def summary(arm: Any) -> dict[str, Any]:
        if not arm.runnable:
            return arm_result(arm, {}, {}, metric=metric, latency={})
        lat = arm_latency(arm, latency_cfg, cache, measure=False)
        return arm_result(arm, records[arm.key], {}, metric=metric, latency=lat)

    result = result_header(cfg, shared, group=f"suite-{cfg['suite'].get('name')}")
    result["baseline"] = summary(baseline)
    result["variants"] = [summary(a) for a in arms]
    missing = {key: seeds - len(recs) for key, recs in records.items()}
    rows = suite_rows(result)
    for r in rows:
        m = missing.get(r.get("key") or "", 0)
        if m and not r["status"].startswith("not "):
            r["status"] = f"missing {m}/{seeds} seeds" + (" (baseline)" if r["status"] == "baseline" else "")
    found = []
    for key, recs in records.items():
        for seed, rec in recs.items():
            path = cache.root / key / f"seed{seed}.json"
            found.append({**rec, "path": path, "run_dir": cache.run_dir(key, seed)})
    return SuiteState(
        result=result,
        rows=rows,
        configurations=len(unique_arms(runnable)),
        runs_total=len(records) * seeds,
        runs_missing=sum(missing.values()),
        rows_missing=sum(r["status"].startswith("missing") for r in rows),
        records=found,
    )


def agreement(rows: Sequence[dict[str, Any]], *, min_paper: float = MIN_PAPER_EFFECT) -> tuple[int, int]:
    """(agree, compared) over rows whose paper effect exceeds `min_paper` and whose own delta is significant after
    false-discovery-rate control over the suite."""
    counted = [
        r for r in rows
        if r["signs_agree"] in ("yes", "no") and r["significant"] and abs(r["paper_delta"]) > min_paper
    ]  # fmt: skip
    return sum(r["signs_agree"] == "yes" for r in counted), len(counted)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def run_provenance(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Training seconds, wall-clock span and machines of the cached runs (from their records and env.json)."""
    seconds = [float(r["seconds"]) for r in records if isinstance(r.get("seconds"), int | float)]
    ends, starts = [], []
    for r in records:
        try:
            end = r["path"].stat().st_mtime
        except OSError:
            continue
        ends.append(end)
        starts.append(end - float(r.get("seconds") or 0.0))
    machines: Counter[str] = Counter()
    commits: Counter[str] = Counter()
    for r in records:
        env = _read_json(r["run_dir"] / "env.json")
        if env:
            what = f"{env.get('cpu', 'cpu ?')}, {env.get('cpu_count', '?')} cores"
            what += f", GPU {env['gpu']}" if env.get("gpu") else ""
            what += f"; torch {env.get('torch', '?')} ({env.get('torch_threads', '?')} threads), {env.get('platform', '?')}"
            machines[what] += 1
        git = _read_json(r["run_dir"] / "git.json")
        if git.get("commit"):
            commits[str(git["commit"])[:10] + (" (dirty)" if git.get("dirty") else "")] += 1
    return {
        "runs": len(records),
        "train_s": sum(seconds),
        "span_s": max(ends) - min(starts) if ends else math.nan,
        "machines": machines,
        "commits": commits,
    }


def _hours(s: float) -> str:
    if not math.isfinite(s):
        return "–"
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def suite_command(suite: str, budget: Sequence[str], cache_dir: str) -> str:
    """The command that trains (or completes) the suite into `cache_dir`."""
    return shlex.join(
        ["python", "-m", "experiments.ablate", f"suite={suite}", *budget, f"cache_dir={cache_dir}"]
    )


def suite_markdown(state: SuiteState, *, budget: Sequence[str], cache_dir: str, figure: str | None) -> str:
    """The suite section of the page (Markdown): provenance, completeness, agreement, table, scatter."""
    res, rows = state.result, state.rows
    conf = int(round(100 * float(res["confidence"])))
    name = res.get("suite") or "?"
    cmd = suite_command(name, budget, cache_dir)
    prov = run_provenance(state.records)
    agree, compared = agreement(rows)
    signs = [r for r in rows if r["signs_agree"] in ("yes", "no")]
    lines = [
        f"## The {name} suite: the paper's deltas beside ours",
        "",
        f"Budget: `{res['budget']}` (the suite's overrides: `{' '.join(budget)}`); metric `{res['metric']}`, "
        f"{conf} % t-intervals, paired over seeds.",
        "",
        "```bash",
        f"{cmd}   # trains what the cache lacks",
        "```",
        "",
    ]
    if state.runs_missing:
        lines += [
            f"**Incomplete: {state.runs_missing} of {state.runs_total} runs ({state.configurations} configurations x "
            f"{res['seeds']} seeds) are missing from the cache; {state.rows_missing} row(s) marked `missing`.** "
            "Fill them with the command above, then rebuild this page.",
            "",
        ]
    else:
        lines += [
            f"All {state.runs_total} runs ({state.configurations} configurations x {res['seeds']} seeds) are in the cache.",
            "",
        ]
    lines += [
        f"Runs read from the cache: {prov['runs']}; their training time adds up to {_hours(prov['train_s'])}; "
        f"first start to last finish: {_hours(prov['span_s'])} of wall time.",
    ]
    for what, n in prov["machines"].most_common():
        lines.append(f"- machine ({n} runs): {what}")
    for what, n in prov["commits"].most_common():
        lines.append(f"- code revision ({n} runs): `{what}`")
    lines += [
        "",
        f"Signs agree in **{sum(r['signs_agree'] == 'yes' for r in signs)} of {len(signs)}** rows where both deltas are "
        f"non-zero. Where the paper's effect exceeds {100 * MIN_PAPER_EFFECT:.0f} pp and ours is significant after "
        "false-discovery-rate control: "
        f"**{agree} of {compared}** agree" + (f" ({100 * agree / compared:.0f} %)." if compared else "."),
        "",
        f"| paper axis | variant | paper Δ pp | our overrides | our Δ pp ({conf} % CI) | p | q (FDR) | n | signs agree "
        "| params | MACs | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours = pm(r["delta"], r["delta_ci_low"], r["delta_ci_high"], signed=True)
        base = r["status"].startswith("baseline") or r["status"].endswith("(baseline)")
        lines.append(
            f"| {r['paper_axis']} | {r['paper_variant']} | {pct(r['paper_delta'], signed=True)} "
            f"| {r['overrides'] or ('(baseline)' if base else '–')} | {ours} | {fmt_p(r['p_value'])} | {fmt_p(r['q_value'])} "
            f"| {r['n_paired']} "
            f"| {r['signs_agree'] + (' *' if r['significant'] else '')} | {human(r['params'])} | {human(r['macs'])} "
            f"| {r['status']} |"
        )
    lines += [
        "",
        fdr_legend(rows, float(res["confidence"]))
        + " Paper Δ = top1 − baseline_top1 of the reference table (ImageNet); ours = "
        "paired mean difference over the seeds both arms have. `not applicable`: the row needs data this dataset "
        "lacks (colour); `not reproduced`: the mapping has no equivalent here (reason given).",
    ]
    if figure:
        lines += ["", f"![our delta against the paper's]({figure})"]
    return "\n".join(lines) + "\n"


def suite_figure(state: SuiteState, path: Path) -> bool:
    """The scatter of our delta against the paper's; False (nothing written) when no row has both deltas."""
    if not any(r["signs_agree"] in ("yes", "no", "paper 0", "ours 0") for r in state.rows):
        return False
    suite_plot(state.rows, path, confidence=float(state.result["confidence"]))
    return True
