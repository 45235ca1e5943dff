"""Hydra callback: after `-m axis=a,b,c` finishes, one table for the whole sweep (baseline once, every variant)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def comparison_key(res: dict[str, Any]) -> str:
    """What a job compares against: its baseline's config and the options that set up the comparison.

    Jobs agree on it exactly when their variants can share one table: the same baseline runs (key), judged by
    the same metric, confidence and seeds, under the same shared overrides. `-m metric=test/acc,val/acc`
    gives two comparisons of one baseline, not one table that keeps the first metric.
    """
    what = {k: res.get(k) for k in ("metric", "confidence", "seeds", "shared")}
    return json.dumps({"baseline": res["baseline"].get("key"), **what}, sort_keys=True, default=str)


def collect_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """Combine the jobs' results under `sweep_dir`: one result per comparison (see `comparison_key`).

    Variants appear once each (a repeated job is the same runs), in job order; suite jobs keep their own
    reports and are not merged.
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
    combined: dict[str, dict[str, Any]] = {}
    for _, _, res in sorted(jobs, key=lambda j: (j[0], j[1])):
        if res.get("suite"):
            continue
        merged = combined.setdefault(comparison_key(res), {**res, "variants": []})
        seen = {(v["label"], v.get("key")) for v in merged["variants"]}
        merged["variants"] += [v for v in res["variants"] if (v["label"], v.get("key")) not in seen]
    return list(combined.values())


def write_sweep_reports(sweep_dir: Path, logger_cfg: dict[str, Any] | None = None) -> list[Path]:
    """Write sweep.{csv,md,json,png} (sweep-<i>.* when the sweep made several comparisons); returns the Markdown
    paths."""
    from experiments.ablation.report import COLUMNS, table_rows, write_report
    from experiments.ablation.tracking import log_summary

    results = collect_sweep(sweep_dir)
    if len(results) > 1:
        print(
            f"the sweep made {len(results)} comparisons (different baselines or shared options): one table each"
        )
    written = []
    for i, res in enumerate(results):
        stem = "sweep" if len(results) == 1 else f"sweep-{i}"
        shared = " ".join(res.get("shared") or [])
        title = f"{res.get('name', '')} ({shared})" if shared and len(results) > 1 else res.get("name", "")
        paths = write_report(res, sweep_dir, stem=stem, title=title)
        written.append(paths["md"])
        print(paths["md"].read_text())
        print(f"sweep report: {paths['md']} (+ .csv, .json, .png)")
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
