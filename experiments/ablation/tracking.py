"""The ablation's W&B summary run: the result table and bar charts with CIs, in the ablation's group.

Each training run is already a W&B run (job_type "ablation-arm", same group, tags `data:` / `axis:` or
`suite:`, its arm's latency and device in the summary) through fit(); this adds one run with job_type
"summary" holding the table, the bar charts (the report's figure: accuracy and paired delta with their
confidence intervals; plus W&B-native bars of the means and deltas) and each arm's numbers in its summary,
so the dashboard shows the answer next to the runs that produced it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.tracking import finish_run, init_run, sync_command

log = logging.getLogger(__name__)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict | list):
        return str(v)
    return v


def _label(row: dict[str, Any]) -> str:
    return str(row.get("arm") or f"{row.get('paper_axis')}/{row.get('paper_variant')}")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def axis_tags(rows: Sequence[dict[str, Any]]) -> list[str]:
    """`axis:<factor>` for every factor the rows' overrides change (`pooling=avg` -> `axis:pooling`)."""
    axes = set()
    for r in rows:
        for o in str(r.get("overrides") or "").split():
            if "=" in o:
                axes.add(o.split("=")[0].lstrip("+~"))
    return sorted(f"axis:{a}" for a in axes)


def arm_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-arm summary keys: mean/<arm>, delta/<arm>, p_value/<arm>, q_value/<arm> (FDR-adjusted) and the CIs as
    [low, high]."""
    out: dict[str, Any] = {}
    for r in rows:
        name = _label(r)
        for field in ("mean", "delta", "p_value", "q_value"):
            if _finite(r.get(field)):
                out[f"{field}/{name}"] = float(r[field])
        for field, (lo, hi) in (
            ("ci", ("ci_low", "ci_high")),
            ("delta_ci", ("delta_ci_low", "delta_ci_high")),
        ):
            if _finite(r.get(lo)) and _finite(r.get(hi)):
                out[f"{field}/{name}"] = [float(r[lo]), float(r[hi])]
    return out


def log_summary(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    logger_cfg: dict[str, Any],
    group: str,
    out_dir: Path,
    plot: Path | None = None,
    config: dict[str, Any] | None = None,
    tags: Sequence[str] = (),
) -> str | None:
    """Log the summary run if the logger is W&B (and not disabled).

    Returns the `wandb sync` command for every offline run of this group this process wrote (the arms and
    the summary), or None when nothing was written offline. Never raises: a tracking failure must not lose
    a finished ablation (the files are already written).
    """
    try:
        run = init_run(
            logger_cfg,
            dir=out_dir,
            name=f"{group}-summary",
            job_type="summary",
            group=group,
            tags=[*tags, *axis_tags(rows)],
            config=config,
        )
    except Exception as e:  # noqa: BLE001 - see the docstring
        log.warning(
            "W&B summary run failed to start (%s: %s); the report files are complete", type(e).__name__, e
        )
        return None
    if run is None:
        return None
    try:
        import wandb

        table = wandb.Table(columns=list(columns), data=[[_clean(r.get(c)) for c in columns] for r in rows])
        payload: dict[str, Any] = {"ablation/table": table}
        if plot is not None and plot.exists():
            payload["ablation/plot"] = wandb.Image(
                str(plot), caption="accuracy and paired delta vs the baseline, with confidence intervals"
            )
        bars = [r for r in rows if _finite(r.get("mean")) or _finite(r.get("delta"))]
        if bars:
            cols = [
                "arm",
                "mean_pct",
                "ci_low_pct",
                "ci_high_pct",
                "delta_pp",
                "delta_ci_low_pp",
                "delta_ci_high_pp",
            ]
            pct = [
                [_label(r)]
                + [
                    100 * float(r[k]) if _finite(r.get(k)) else None
                    for k in ("mean", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high")
                ]
                for r in bars
            ]
            bar_table = wandb.Table(columns=cols, data=pct)
            payload["ablation/bars"] = bar_table
            if any(_finite(r.get("mean")) for r in bars):
                payload["ablation/mean_bar"] = wandb.plot.bar(
                    bar_table, "arm", "mean_pct", title="accuracy (%)"
                )
            if any(_finite(r.get("delta")) for r in bars):
                payload["ablation/delta_bar"] = wandb.plot.bar(
                    bar_table, "arm", "delta_pp", title="delta vs baseline (pp)"
                )
        run.log(payload)
        finish_run(run, state="COMPLETE", summary={**arm_summary(rows), "n_arms": len(rows)})
    except Exception as e:  # noqa: BLE001 - see the docstring
        log.warning(
            "W&B summary run is incomplete (%s: %s); the report files are complete", type(e).__name__, e
        )
        finish_run(run, state="FAIL", reason=f"{type(e).__name__}: {e}")
    return sync_command(group=group)
