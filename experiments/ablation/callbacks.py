"""Hydra callback: after `-m axis=a,b,c` finishes, one table for the whole sweep (baseline once, every variant)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def collect_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """Combine the jobs' results under `sweep_dir`: one result per baseline (jobs sharing a baseline merge).

    Variants appear once each, in job order; suite jobs keep their own reports and are not merged.
    """
    from experiments.ablate import RESULT_FILE

    jobs = []
    for path in sweep_dir.glob(f"*/{RESULT_FILE}"):
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("skipping unreadable job result %s", path)
            continue
        num = int(path.parent.name) if path.parent.name.isdigit() else 1 << 30
        jobs.append((num, path.parent.name, res))
    combined: dict[Any, dict[str, Any]] = {}
    for _, _, res in sorted(jobs, key=lambda j: (j[0], j[1])):
        if res.get("suite"):
            continue
        base_key = res["baseline"].get("key") or json.dumps(res.get("shared"))
        merged = combined.setdefault(base_key, {**res, "variants": []})
        labels = {v["label"] for v in merged["variants"]}
        merged["variants"] += [v for v in res["variants"] if v["label"] not in labels]
    return list(combined.values())


def write_sweep_reports(sweep_dir: Path, logger_cfg: dict[str, Any] | None = None) -> list[Path]:
    """Write sweep.{csv,md,png} (sweep-<i>.* when the sweep had several baselines); returns the Markdown paths."""
    from experiments.ablation.report import COLUMNS, table_rows, write_report
    from experiments.ablation.tracking import log_summary

    results = collect_sweep(sweep_dir)
    written = []
    for i, res in enumerate(results):
        stem = "sweep" if len(results) == 1 else f"sweep-{i}"
        paths = write_report(res, sweep_dir, stem=stem, title=res.get("name", ""))
        written.append(paths["md"])
        print(paths["md"].read_text())
        print(f"sweep report: {paths['md']} (+ .csv, .png)")
        hint = log_summary(
            table_rows(res), COLUMNS, logger_cfg=logger_cfg or {}, group=res.get("name", "ablate"),
            out_dir=sweep_dir, plot=paths["png"],
            config={"ablation": {k: res.get(k) for k in ("metric", "confidence", "seeds", "shared")}},
        )  # fmt: skip
        if hint:
            print(f"W&B is offline: upload with `{hint}`")
    return written


class SweepReport(Callback):
    """Writes the combined table of a multirun into its sweep folder (`hydra.callbacks` in conf/ablate.yaml)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from nas.config import to_plain

        sweep_dir = Path(str(config.hydra.sweep.dir))
        logger_cfg = to_plain(config.logger) if "logger" in config else {}
        write_sweep_reports(sweep_dir, logger_cfg)
