"""The ablation's W&B summary run: the result table and the bar chart with CIs, in the ablation's group.

Each training run is already a W&B run (job_type "ablation-arm", same group) through fit(); this adds one
run with job_type "summary" holding the table, the plot and each arm's delta in its summary, so the
dashboard shows the answer next to the runs that produced it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.tracking import flatten, redact, resolve_wandb_mode

log = logging.getLogger(__name__)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict | list):
        return str(v)
    return v


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
    """Log the summary run if the logger is W&B (and not disabled); returns the `wandb sync` hint when offline.

    Never raises: a tracking failure must not lose a finished ablation (the files are already written).
    """
    if (logger_cfg or {}).get("name") != "wandb":
        return None
    try:
        mode = resolve_wandb_mode(logger_cfg.get("mode", "auto"))
        if mode == "disabled":
            return None
        import os

        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        out_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=logger_cfg.get("project", "cnn-nas"),
            entity=logger_cfg.get("entity"),
            group=group,
            job_type="summary",
            name=f"{group}-summary",
            dir=str(out_dir),
            mode=mode,
            tags=sorted(set(list(logger_cfg.get("tags") or []) + list(tags))),
            config=flatten(redact(config or {})),
            settings=wandb.Settings(init_timeout=float(logger_cfg.get("init_timeout", 60)), console="off"),
            reinit="finish_previous",
        )
        try:
            table = wandb.Table(
                columns=list(columns), data=[[_clean(r.get(c)) for c in columns] for r in rows]
            )
            payload: dict[str, Any] = {"ablation/table": table}
            if plot is not None and plot.exists():
                payload["ablation/plot"] = wandb.Image(str(plot))
            run.log(payload)
            for r in rows:
                name = r.get("arm") or f"{r.get('paper_axis')}/{r.get('paper_variant')}"
                for field in ("mean", "delta", "p_value"):
                    if isinstance(r.get(field), float) and math.isfinite(r[field]):
                        run.summary[f"{field}/{name}"] = r[field]
            hint = f"wandb sync {Path(run.dir).parent}" if mode == "offline" else None
        finally:
            run.finish()
        return hint
    except Exception as e:  # noqa: BLE001 - see the docstring
        log.warning("W&B summary run failed (%s: %s); the report files are complete", type(e).__name__, e)
        return None
