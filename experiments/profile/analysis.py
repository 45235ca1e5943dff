"""The profile's analysis of measured networks: the least-squares line of batch-1 latency over the dense
networks' MACs, how far the depthwise-separable ones fall from it, and the two figures. A profile run
(experiments.profile.run) and the reproduction page (experiments.reproduce.profile_section) share it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


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
