"""The latency profile's W&B run (`python -m experiments.profile`): its tables, plots and the dense-line fit."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.tracking.runs import finish_run, init_run, offline_mark, sync_command

log = logging.getLogger("experiments.profile")


def default_logger_cfg() -> dict[str, Any]:
    """conf/logger/wandb.yaml, resolved (its defaults read WANDB_PROJECT / WANDB_DIR ...): commands without a
    Hydra config (the profile) log as the others do by default."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from nas.config import CONF_DIR

    try:
        return dict(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "logger" / "wandb.yaml"), resolve=True))
    except (OSError, OmegaConfBaseException):
        return {"name": "wandb", "mode": "auto"}


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict | list | tuple):
        return str(v)
    return v


def _table(rows: list[Mapping[str, Any]]) -> Any:
    import wandb

    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    return wandb.Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows])


def log_profile(report: Any, logger_cfg: Mapping[str, Any] | None = None, *, echo: Any = print) -> bool:
    """One run (job_type "profile", group "profile"): the per-batch rows and per-network summaries as Tables,
    MACs vs batch-1 latency as a W&B scatter plot, the report's figures as images, the fit and the device in
    the summary. Prints the `wandb sync` command when offline. Never raises; True when a run was written."""
    cfg = dict(logger_cfg or default_logger_cfg())
    out = Path(report.csv).parent
    device = dict(report.device or {})
    mark = offline_mark()
    try:
        run = init_run(
            cfg,
            dir=out,
            name=f"profile-{device.get('device', 'cpu')}-{device.get('runtime', 'eager')}",
            job_type="profile",
            group="profile",
            tags=[
                f"device:{device.get('device', 'cpu')}",
                f"runtime:{device.get('runtime', 'eager')}",
                *(f"model:{m['model']}" for m in report.models),
            ][:20],
            config={"device": device, "models": [m["model"] for m in report.models]},
        )
    except Exception as e:  # noqa: BLE001
        log.warning("W&B profile run failed to start: %s", e)
        return False
    if run is None:
        return False
    try:
        import wandb

        models = _table(list(report.models))
        payload: dict[str, Any] = {"profile/rows": _table(list(report.rows)), "profile/models": models}
        if any(_cell(m.get("latency_bs1_ms")) is not None for m in report.models):
            payload["profile/macs_vs_latency"] = wandb.plot.scatter(
                models, "macs", "latency_bs1_ms", title="MACs per image vs batch-1 latency (ms)"
            )
        for name, path in (report.figures or {}).items():
            if Path(path).is_file():
                payload[f"figures/{name}"] = wandb.Image(str(path))
        run.log(payload)
        run.summary.update(
            {
                "device": device,
                "fit": dict(report.fit) if report.fit else None,
                "n_models": len(report.models),
                "summary_text": report.summary,
            }
        )
        finish_run(run, state="COMPLETE")
    except Exception as e:  # noqa: BLE001
        log.warning("W&B profile run is incomplete: %s", e)
        finish_run(run, state="FAIL", reason=f"{type(e).__name__}: {e}")
    hint = sync_command(since=mark)
    if hint:
        echo(f"W&B is offline: upload with `{hint}`")
    return True
