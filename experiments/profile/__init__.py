"""`python -m experiments.profile`: parameters, MACs, latency and throughput of the reference networks.

The practical analysis of Canziani, Paszke and Culurciello ("An analysis of deep neural network models for
practical applications") on this machine: for each network in conf/model/ (or `--models`), its parameters,
MACs per image, and measured latency at batch sizes 1, 2, 4, ..., 64 (per call, per image, images/s).
Writes `profile.csv`, `profile.json` (the device, settings, per-network summaries, the fit and the wall
time, for `python -m experiments.reproduce`) and two plots into `--out`: MACs vs batch-1 latency with a least-squares line over the
dense-convolution networks, and per-image latency vs batch size. The summary says how far the
depthwise-separable networks (MobileNet, Xception: the YAML `family` field) fall from that line.

Each network gets `--budget` seconds: a batch size whose expected timing cost would overrun it is skipped
(with every larger one), and the report lists which networks were capped where.

`--runtimes eager,torchscript,onnxruntime` repeats the analysis in each runtime (into `--out`/<runtime>/)
and ends with one line per runtime: the dense networks' R^2 and the depthwise networks' excess per
operation over the dense median. Without it the device's deployment runtime is used (ONNX Runtime on CPU).
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.cli import user_errors
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


def fit_dense_line(models: list[dict[str, Any]]) -> dict[str, float] | None:
    """Least-squares latency_ms = slope * GMACs + intercept over the dense networks' batch-1 latencies."""
    import numpy as np

    dense = [m for m in models if not m["separable"] and math.isfinite(m.get("latency_bs1_ms", math.nan))]
    if len(dense) < 2:
        return None
    x = np.array([m["macs"] / 1e9 for m in dense])
    y = np.array([m["latency_bs1_ms"] for m in dense])
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_res, ss_tot = float(((y - pred) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {
        "slope_ms_per_gmac": float(slope),
        "intercept_ms": float(intercept),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        "n": len(dense),
    }


def line_ms(fit: dict[str, float], macs: float) -> float:
    return fit["slope_ms_per_gmac"] * macs / 1e9 + fit["intercept_ms"]


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x slower" if ratio >= 1 else f"{1 / ratio:.2f}x faster"


def summarize(models: list[dict[str, Any]], fit: dict[str, float] | None, failed: dict[str, str]) -> str:
    """The readable findings; also adds `ms_per_gmac`, `vs_dense_line` and `vs_dense_per_op` to `models`."""
    import statistics

    for m in models:
        if math.isfinite(m["latency_bs1_ms"]) and m["macs"]:
            m["ms_per_gmac"] = m["latency_bs1_ms"] / (m["macs"] / 1e9)
    dense_cost = [m["ms_per_gmac"] for m in models if not m["separable"] and "ms_per_gmac" in m]
    per_op = statistics.median(dense_cost) if dense_cost else math.nan
    lines = []
    if fit is None:
        lines.append("dense line: fewer than two dense-convolution networks were measured, no fit")
    else:
        lines.append(
            f"dense-convolution line over {fit['n']} networks: "
            f"latency = {fit['slope_ms_per_gmac']:.2f} ms/GMAC x MACs + {fit['intercept_ms']:.2f} ms "
            f"(R^2 = {fit['r2']:.3f}); their median cost {per_op:.1f} ms/GMAC"
        )
    separable = [m for m in models if m["separable"] and "ms_per_gmac" in m]
    for m in separable:
        text = (
            f"  {m['model']} (depthwise-separable, {m['macs'] / 1e9:.3f} GMACs): {m['latency_bs1_ms']:.2f} ms"
        )
        if fit is not None:
            on_line = line_ms(fit, m["macs"])
            if on_line > 0:
                m["vs_dense_line"] = m["latency_bs1_ms"] / on_line
                text += f", {_times(m['vs_dense_line'])} than the dense line at its MACs ({on_line:.2f} ms)"
        if math.isfinite(per_op):
            m["vs_dense_per_op"] = m["ms_per_gmac"] / per_op
            text += (
                f"; {m['ms_per_gmac']:.1f} ms/GMAC, {_times(m['vs_dense_per_op'])} per operation than "
                "the dense networks' median"
            )
        lines.append(text)
    if not separable:
        lines.append("  no depthwise-separable network was profiled")
    capped = [m for m in models if m["capped_at"]]
    if capped:
        lines.append(
            "capped by the time budget (that batch size and larger ones skipped): "
            + ", ".join(f"{m['model']} at {m['capped_at']}" for m in capped)
        )
    else:
        lines.append("no network was capped by the time budget")
    for name, err in failed.items():
        lines.append(f"not profiled: {name}: {err}")
    return "\n".join(lines)


def plot(
    models: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    fit: dict[str, float] | None,
    out: Path,
    title: str,
) -> dict[str, Path]:
    """The two figures as PNG files; returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for sep, marker, label in ((False, "o", "dense convolutions"), (True, "^", "depthwise-separable")):
        pts = [m for m in models if m["separable"] == sep and math.isfinite(m["latency_bs1_ms"])]
        if pts:
            ax.scatter(
                [m["macs"] / 1e9 for m in pts],
                [m["latency_bs1_ms"] for m in pts],
                marker=marker,
                s=50,
                label=label,
                zorder=3,
            )
            for m in pts:
                ax.annotate(
                    m["model"],
                    (m["macs"] / 1e9, m["latency_bs1_ms"]),
                    fontsize=7,
                    xytext=(4, 3),
                    textcoords="offset points",
                )
    if fit is not None:
        xmax = max(m["macs"] for m in models) / 1e9 * 1.05
        ax.plot(
            [0, xmax],
            [fit["intercept_ms"], line_ms(fit, xmax * 1e9)],
            "k--",
            lw=1,
            label=f"dense fit: {fit['slope_ms_per_gmac']:.1f} ms/GMAC (R²={fit['r2']:.2f})",
        )
    ax.set_xlabel("MACs per image (G)")
    ax.set_ylabel("latency at batch 1 (ms)")
    ax.set_title(f"Operations vs latency\n{title}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figures["macs_vs_latency"] = out / "macs_vs_latency.png"
    fig.tight_layout()
    fig.savefig(figures["macs_vs_latency"], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for m in models:
        mine = [r for r in rows if r["model"] == m["model"]]
        ax.plot(
            [r["batch_size"] for r in mine],
            [r["per_image_ms"] for r in mine],
            "^--" if m["separable"] else "o-",
            ms=4,
            label=m["model"] + (" (capped)" if m["capped_at"] else ""),
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency per image (ms)")
    ax.set_title(f"Per-image latency vs batch size\n{title}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    figures["latency_vs_batch"] = out / "latency_vs_batch.png"
    fig.tight_layout()
    fig.savefig(figures["latency_vs_batch"], dpi=120)
    plt.close(fig)
    return figures


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


@user_errors("profile")
def main(argv: list[str] | None = None) -> list[ProfileReport]:
    p = argparse.ArgumentParser(
        prog="python -m experiments.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", default=None, help="comma-separated conf/model/ names (default: all)")
    p.add_argument(
        "--input-size", type=int, default=None, help="input side in pixels (default: each net's own)"
    )
    p.add_argument(
        "--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="comma-separated batch sizes"
    )
    p.add_argument("--budget", type=float, default=30.0, help="timing budget per network, seconds")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads while timing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--runtimes",
        default=None,
        help="comma-separated runtimes, each profiled in turn (default: the device's deployment runtime)",
    )
    p.add_argument("--out", default="outputs/profile", help="output folder for the CSV and the plots")
    p.add_argument("--no-log", action="store_true", help="do not hand the report to experiment tracking")
    args = p.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()] if args.runtimes else [None]
    try:  # bad names and settings: one line, before any timing
        models = load_models(names)
        for runtime in runtimes:
            LatencyConfig.from_cfg(threads=args.threads, device=args.device, runtime=runtime)
    except (KeyError, ValueError) as e:
        p.error(e.args[0] if e.args else str(e))
    reports = []
    for runtime in runtimes:
        out = Path(args.out) / runtime if len(runtimes) > 1 else Path(args.out)
        print(f"== runtime {runtime or 'default'} -> {out}")
        report = run_profile(
            models,
            out=out,
            batches=batches,
            input_size=args.input_size,
            budget_s=args.budget,
            latency={"threads": args.threads, "device": args.device, "runtime": runtime},
            log=not args.no_log,
            command=shlex.join(
                ["python", "-m", "experiments.profile", *(sys.argv[1:] if argv is None else argv)]
            ),
        )
        print()
        print(f"device: {report.device}")
        print(report.summary)
        print(f"wrote {report.csv} and {', '.join(str(p) for p in report.figures.values())}")
        reports.append(report)
    print()
    print(
        f"{'runtime':<12} {'dense R^2':>9} {'n':>3} {'ms/GMAC':>8} {'fixed ms':>8} {'dw excess/op':>12} {'n':>3}"
    )
    for report in reports:
        r = runtime_line(report)
        print(
            f"{r['runtime']:<12} {r['dense_r2']:>9.3f} {r['dense_n']:>3} {r['slope_ms_per_gmac']:>8.2f} "
            f"{r['intercept_ms']:>8.2f} {r['separable_excess_per_op']:>11.2f}x {r['separable_n']:>3}"
        )
    return reports


if __name__ == "__main__":
    main()
