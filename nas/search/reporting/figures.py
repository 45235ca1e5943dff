"""The search's figures: the Pareto plot (trials, front, reference networks) and Optuna's HTML figures."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.search.objectives import ATTR_OF

log = logging.getLogger(__name__)

LABELS = {"accuracy": "validation accuracy", "latency": "latency", "params": "parameters", "macs": "MACs"}


def axis_label(dim: str, unit: str = "") -> str:
    """The axis label of a front quantity (latency with its unit)."""
    return f"{LABELS[dim]} ({unit})" if dim == "latency" and unit else LABELS[dim]


def pareto_plot(
    path: Path,
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    dims: Sequence[str],
    *,
    title: str,
    unit: str = "",
) -> Path:
    """Accuracy (y) against the other front quantity (x): every trial, the front as a staircase, and the
    reference networks as labelled stars (trained at the same fidelity)."""
    import matplotlib  # local: heavy optional plotting stack, loaded only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local: after choosing the Agg backend

    ydim = "accuracy"
    xdim = next(d for d in dims if d != "accuracy")
    xk, yk = ATTR_OF[xdim], ATTR_OF[ydim]

    def pts(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
        ok = [r for r in rows if _finite(r.get(xk)) and _finite(r.get(yk))]
        return [float(r[xk]) for r in ok], [float(r[yk]) for r in ok]

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    done = [r for r in recs if r.get("state") == "COMPLETE" and not r.get("not_trained")]
    x, y = pts(done)
    ax.scatter(x, y, s=18, c="0.7", label=f"trials ({len(x)})", zorder=2)
    # Networks at chance accuracy: drawn apart, never part of the front (nas.search.pareto.front).
    ux, uy = pts([r for r in recs if r.get("state") == "COMPLETE" and r.get("not_trained")])
    if ux:
        ax.scatter(
            ux, uy, s=22, marker="x", c="tab:orange", label=f"not trained: at chance ({len(ux)})", zorder=2
        )
    fx, fy = pts(front)
    if fx:
        order = sorted(range(len(fx)), key=lambda i: fx[i])
        ax.step([fx[i] for i in order], [fy[i] for i in order], where="post", c="tab:blue", lw=1.2, zorder=3)
        ax.scatter(fx, fy, s=36, c="tab:blue", label=f"Pareto front ({len(fx)})", zorder=4)
        for r in front:
            if _finite(r.get(xk)) and _finite(r.get(yk)):
                ax.annotate(
                    f"t{r['trial']}",
                    (r[xk], r[yk]),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=7,
                    color="tab:blue",
                )
    bx = [b for b in baselines if _finite(b.get(xk)) and _finite(b.get(yk))]
    if bx:
        ax.scatter(
            [b[xk] for b in bx],
            [b[yk] for b in bx],
            marker="*",
            s=140,
            c="tab:red",
            zorder=5,
            label="reference networks",
        )
        for b in bx:
            ax.annotate(
                b["name"],
                (b[xk], b[yk]),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color="tab:red",
            )
    if xdim in ("params", "macs") or (x and min(x) > 0 and max(x) / max(min(x), 1e-12) > 30):
        ax.set_xscale("log")
    ax.set_xlabel(axis_label(xdim, unit))
    ax.set_ylabel(axis_label(ydim))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    skipped = [b["name"] for b in baselines if "skipped" in b]
    if skipped:  # say so on the figure, or a reader assumes there were no reference networks to compare with
        ax.text(0.01, 0.01, f"not trained (see the report): {', '.join(skipped)}", transform=ax.transAxes,
                fontsize=7, color="0.4", va="bottom")  # fmt: skip
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def optuna_html(study: optuna.Study, out_dir: Path, objectives: Sequence[str]) -> dict[str, Path]:
    """Optuna's interactive figures (Pareto front, history, parameter importances) as HTML files.

    plotly.js is written once next to them (`plotly.min.js`), so the pages open offline. A figure Optuna
    cannot draw yet (too few trials) is skipped with a log line.
    """
    import optuna.visualization as vis  # local: pulls in plotly: only when figures are written

    out_dir.mkdir(parents=True, exist_ok=True)
    acc = objectives.index("accuracy")
    single = len(objectives) == 1

    def target(t: optuna.trial.FrozenTrial) -> float:
        return t.values[acc]

    figures: dict[str, Any] = {}
    makers = {
        "pareto_front": (lambda: vis.plot_pareto_front(study, target_names=list(objectives)))
        if not single
        else None,
        "history": lambda: vis.plot_optimization_history(
            study, target=None if single else target, target_name="accuracy"
        ),
        "param_importances": lambda: vis.plot_param_importances(
            study, target=None if single else target, target_name="accuracy"
        ),
    }
    written: dict[str, Path] = {}
    for name, make in makers.items():
        if make is None:
            continue
        try:
            figures[name] = make()
        except Exception as e:  # too few trials, a single distinct value, ...: a figure is not worth a crash
            log.info("optuna figure %s skipped: %s", name, e)
            continue
        path = out_dir / f"{name}.html"
        figures[name].write_html(str(path), include_plotlyjs="directory")
        written[name] = path
    return written


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)
