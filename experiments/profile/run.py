"""One profile run: the reference networks' parameters, MACs and latency across batch sizes, under a time
budget per network, written as profile.csv / profile.json / summary.txt and the figures, and logged."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.profile.analysis import fit_dense_line, plot, summarize
from nas.latency import LatencyConfig, device_fingerprint, measure_latency
from nas.latency.costs import build_meta, count_macs, count_params
from nas.latency.measure import input_shape_of
from nas.tracking import write_json

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)
# Families built from depthwise-separable convolutions (the YAML `family` field); a network with a
# depthwise conv counts as separable too, whatever its family says.
SEPARABLE_FAMILIES = frozenset({"mobilenet", "mobilenet_v1", "mobilenet_v2", "xception", "separable"})


@dataclass
class ProfileReport:
    """Everything the profile produced, as data: rows (one per network and batch size), one summary per
    network, figure and CSV paths, the dense-line fit and a readable summary (for printing and logging)."""

    rows: list[dict[str, Any]]
    models: list[dict[str, Any]]
    figures: dict[str, Path]
    csv: Path
    fit: dict[str, float] | None
    summary: str
    device: dict[str, Any] = field(default_factory=dict)


def model_dir() -> Path:
    from nas.config import CONF_DIR

    return CONF_DIR / "model"


def load_models(
    names: Sequence[str] | None = None, directory: Path | None = None
) -> dict[str, dict[str, Any]]:
    """name -> spec of the reference networks (all YAMLs in conf/model/, or just `names`)."""
    directory = directory or model_dir()
    available = {p.stem: p for p in sorted(directory.glob("*.yaml"))}
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise KeyError(f"unknown models {unknown}; valid models: {', '.join(available)}")
        available = {n: available[n] for n in names}
    return {name: yaml.safe_load(path.read_text()) for name, path in available.items()}


def is_separable(spec: dict[str, Any], model: Any) -> bool:
    """Whether a network is depthwise-separable: by its family, or by having a depthwise convolution."""
    from torch import nn

    if str(spec.get("family", "")).lower() in SEPARABLE_FAMILIES:
        return True
    return any(
        isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules()
    )


def profile_model(
    name: str, spec: dict[str, Any], batches: Sequence[int], base: LatencyConfig, budget_s: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (one per measured batch size) and a summary for one network under a time budget."""
    from blocks import build_model

    meta = build_meta(spec)
    shape = input_shape_of(spec)
    info: dict[str, Any] = {
        "model": name,
        "family": spec.get("family", ""),
        "separable": is_separable(spec, meta),
        "input_size": shape[-1],
        "params": count_params(meta),
        "macs": count_macs(meta, shape),
        "capped_at": None,
    }
    model = build_model(spec)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    per_call_ms, prev_batch = None, None
    for batch in batches:
        spent = time.perf_counter() - start
        if per_call_ms is not None:
            # Expected cost: warm-up + the minimum repeats at a per-call time growing linearly with the batch.
            expected = (base.warmup + base.min_repeats) * per_call_ms * batch / prev_batch / 1e3
            if spent + expected > budget_s:
                info["capped_at"] = batch
                break
        remaining = max(budget_s - spent, 0.0)
        cfg = LatencyConfig.from_cfg(
            base, batch_size=batch, max_time_s=max(min(base.max_time_s, remaining), 1e-3)
        )
        result = measure_latency(model, shape, cfg)
        per_call_ms, prev_batch = result.median_ms, batch
        rows.append(
            {
                **{k: info[k] for k in ("model", "family", "separable", "input_size", "params", "macs")},
                "batch_size": batch,
                "latency_ms": result.median_ms,
                "iqr_ms": result.iqr_ms,
                "per_image_ms": result.per_image_ms,
                "images_per_s": 1e3 * batch / result.median_ms,
                "repeats": result.repeats,
                "fingerprint": result.fingerprint,
            }
        )
    info["latency_bs1_ms"] = rows[0]["latency_ms"] if rows and rows[0]["batch_size"] == 1 else math.nan
    info["best_images_per_s"] = max(r["images_per_s"] for r in rows)
    info["max_batch"] = rows[-1]["batch_size"]
    return rows, info


def run_profile(
    models: dict[str, dict[str, Any]],
    *,
    out: Path,
    batches: Sequence[int] = DEFAULT_BATCHES,
    input_size: int | None = None,
    budget_s: float = 60.0,
    latency: dict[str, Any] | None = None,
    log: bool = True,
    command: str | None = None,
) -> ProfileReport:
    """Profile `models` (name -> spec); writes the CSV, JSON and plots into `out` and returns the report."""
    base = LatencyConfig.from_cfg(
        {
            "min_repeats": 6,  # the fewest samples whose median has a 95 % interval
            "max_repeats": 50,
            "rel_ci": 0.05,
            "warmup": 1,
            "warmup_s": 0.0,
            "max_time_s": 10.0,
            **(latency or {}),
        }
    )
    if not batches or any(int(b) < 1 for b in batches):
        raise ValueError(f"batch sizes must be positive integers, got {list(batches)}")
    if budget_s <= 0:
        raise ValueError(f"the per-model time budget must be > 0 seconds, got {budget_s}")
    out.mkdir(parents=True, exist_ok=True)
    fp = device_fingerprint(base)
    started = time.time()
    rows: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for name, spec in models.items():
        spec = dict(spec)
        if input_size is not None:
            spec["input_size"] = int(input_size)
        t0 = time.perf_counter()
        try:
            model_rows, info = profile_model(name, spec, sorted(set(map(int, batches))), base, budget_s)
        except (ValueError, KeyError, RuntimeError) as e:  # a network that cannot be built or run here
            failed[name] = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"{name:<22} FAILED: {failed[name]}")
            continue
        rows += model_rows
        infos.append(info)
        print(
            f"{name:<22} {info['params'] / 1e6:>7.2f} M params {info['macs'] / 1e9:>7.2f} GMACs  "
            f"bs1 {info['latency_bs1_ms']:>9.2f} ms  best {info['best_images_per_s']:>8.1f} img/s "
            f"(batch <= {info['max_batch']}{', capped' if info['capped_at'] else ''}; "
            f"{time.perf_counter() - t0:.0f} s)"
        )
    if not infos:
        raise ValueError(f"no network could be profiled: {failed}")
    fit = fit_dense_line(infos)
    summary = summarize(infos, fit, failed)
    csv_path = out / "profile.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figures = plot(infos, rows, fit, out, fp.label())
    (out / "summary.txt").write_text(summary + "\n")
    write_json(
        out / "profile.json",
        {
            "device": fp.info,
            "fingerprint": fp.key,
            "batches": sorted(set(map(int, batches))),
            "input_size": input_size,
            "budget_s": budget_s,
            "models": infos,
            "fit": fit,
            "failed": failed,
            "started": started,
            "wall_s": time.time() - started,
            "command": command,
        },
    )
    report = ProfileReport(rows, infos, figures, csv_path, fit, summary, fp.info)
    if log:
        log_report(report)
    return report


def log_report(report: ProfileReport) -> None:
    """The one place the profile goes to experiment tracking (its W&B run: experiments.profile.tracking)."""
    from experiments.profile.tracking import log_profile  # wandb is imported only when logging

    log_profile(report)


def runtime_line(report: ProfileReport) -> dict[str, Any]:
    """One runtime's headline: dense-line R^2, slope and intercept, and the depthwise networks' excess."""
    import statistics

    fit = report.fit or {}
    excess = [m["vs_dense_per_op"] for m in report.models if "vs_dense_per_op" in m]
    return {
        "runtime": report.device.get("runtime", "eager"),
        "dense_r2": fit.get("r2", math.nan),
        "dense_n": fit.get("n", 0),
        "slope_ms_per_gmac": fit.get("slope_ms_per_gmac", math.nan),
        "intercept_ms": fit.get("intercept_ms", math.nan),
        "separable_excess_per_op": statistics.median(excess) if excess else math.nan,
        "separable_n": len(excess),
    }
