"""The search's figures: the Pareto plot (trials, front, reference networks) for each pair of front quantities,
the front's hypervolume history, and Optuna's HTML figures."""

from __future__ import annotations

import itertools
import logging
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.pareto import front_indices
from nas.search.objectives import ATTR_OF, OBJECTIVES

log = logging.getLogger(__name__)

LABELS = {"accuracy": "validation accuracy", "latency": "latency", "params": "parameters", "macs": "MACs"}
# A cost axis is drawn on a log scale when its plotted values span more than this ratio: on a linear one the
# cheap networks crowd into a corner beside one costly reference network.
LOG_SPAN = 10.0


def axis_label(dim: str, unit: str = "", px: int | None = None) -> str:
    """The axis label of a front quantity: latency with its unit, and the image size a cost was measured at."""
    extra = [*([unit] if dim == "latency" and unit else []), *([f"{px} px"] if px else [])]
    return f"{LABELS[dim]} ({', '.join(extra)})" if extra else LABELS[dim]


def pareto_pairs(dims: Sequence[str]) -> list[tuple[str, str]]:
    """The (y, x) pairs a study's Pareto plots show: accuracy against the other quantity for two; for more,
    every pair of quantities, accuracy on the y axis where it is one of them."""
    return [
        (a, b) if a == "accuracy" or b != "accuracy" else (b, a) for a, b in itertools.combinations(dims, 2)
    ]


def pareto_file(ydim: str, xdim: str, dims: Sequence[str]) -> str:
    """File name of a pair's plot: pareto.png for the study's first pair, pareto_<y>_<x>.png for the others."""
    return "pareto.png" if (ydim, xdim) == pareto_pairs(dims)[0] else f"pareto_{ydim}_{xdim}.png"


def pareto_figure(
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    ydim: str,
    xdim: str,
    *,
    title: str,
    unit: str = "",
    px: Mapping[str, int | None] | None = None,
) -> Any:
    """One pair of front quantities (`ydim` against `xdim`): every trial, the front (its members in blue, the
    pair's own front as a staircase), trials that came from a textbook reference network (green diamonds,
    named), and the reference networks trained at the same fidelity (red stars). `px`: the image size each
    quantity was measured at, for the axis labels. Returns the matplotlib Figure."""
    import matplotlib  # local: heavy optional plotting stack, loaded only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local: after choosing the Agg backend

    xk, yk = ATTR_OF[xdim], ATTR_OF[ydim]

    def pts(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
        ok = [r for r in rows if _finite(r.get(xk)) and _finite(r.get(yk))]
        return [float(r[xk]) for r in ok], [float(r[yk]) for r in ok]

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    done = [r for r in recs if r.get("state") == "COMPLETE" and not r.get("not_trained")]
    x, y = pts(done)
    drawn_x, drawn_y = list(x), list(y)
    ax.scatter(x, y, s=18, c="0.7", label=f"trials ({len(x)})", zorder=2)
    # Networks at chance accuracy: drawn apart, never part of the front (nas.search.records.front).
    ux, uy = pts([r for r in recs if r.get("state") == "COMPLETE" and r.get("not_trained")])
    if ux:
        ax.scatter(
            ux, uy, s=22, marker="x", c="tab:orange", label=f"not trained: at chance ({len(ux)})", zorder=2
        )
        drawn_x += ux
        drawn_y += uy
    fx, fy = pts(front)
    if fx:
        # The staircase is the pair's own front; with more than two quantities a front member may be beaten in
        # this pair (and better in another), so it is a blue point off the staircase.
        dirs = [OBJECTIVES[xdim], OBJECTIVES[ydim]]
        stair = sorted((fx[i], fy[i]) for i in front_indices(list(zip(fx, fy, strict=True)), dirs))
        ax.step([p[0] for p in stair], [p[1] for p in stair], where="post", c="tab:blue", lw=1.2, zorder=3)
        ax.scatter(fx, fy, s=36, c="tab:blue", label=f"Pareto front ({len(fx)})", zorder=4)
        for r in front:
            if _finite(r.get(xk)) and _finite(r.get(yk)):
                ax.annotate(f"t{r['trial']}", (r[xk], r[yk]), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color="tab:blue")  # fmt: skip
    refs = [r for r in recs if r.get("reference") and _finite(r.get(xk)) and _finite(r.get(yk))]
    if refs:
        ax.scatter([r[xk] for r in refs], [r[yk] for r in refs], marker="D", s=50, facecolors="none",
                   edgecolors="tab:green", linewidths=1.5, zorder=5,
                   label=f"trials from reference networks ({len(refs)})")  # fmt: skip
        for r in refs:
            ax.annotate(str(r["reference"]), (r[xk], r[yk]), textcoords="offset points", xytext=(6, 4),
                        fontsize=8, color="tab:green")  # fmt: skip
    bx = [b for b in baselines if _finite(b.get(xk)) and _finite(b.get(yk))]
    if bx:
        ax.scatter([b[xk] for b in bx], [b[yk] for b in bx], marker="*", s=140, c="tab:red", zorder=5,
                   label="reference networks (baselines)")  # fmt: skip
        for b in bx:
            ax.annotate(b["name"], (b[xk], b[yk]), textcoords="offset points", xytext=(6, 4), fontsize=8,
                        color="tab:red")  # fmt: skip
        drawn_x += [float(b[xk]) for b in bx]
        drawn_y += [float(b[yk]) for b in bx]
    for dim, values, set_scale in ((xdim, drawn_x, ax.set_xscale), (ydim, drawn_y, ax.set_yscale)):
        if dim != "accuracy" and log_scale(values):
            set_scale("log")
    px = px or {}
    ax.set_xlabel(axis_label(xdim, unit, px.get(xdim)))
    ax.set_ylabel(axis_label(ydim, unit, px.get(ydim)))
    ax.grid(alpha=0.3)
    skipped = [b["name"] for b in baselines if "skipped" in b]
    if skipped:  # say so on the figure, or a reader assumes there were no reference networks to compare with
        ax.text(0.01, 0.01, f"not trained (see the report): {', '.join(skipped)}", transform=ax.transAxes,
                fontsize=7, color="0.4", va="bottom")  # fmt: skip
    ax.legend(fontsize=8, loc="best")
    fit_title(fig, ax, title)
    return fig


def pareto_plot(
    path: Path,
    recs: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    dims: Sequence[str],
    *,
    title: str,
    unit: str = "",
    px: Mapping[str, int | None] | None = None,
    pair: tuple[str, str] | None = None,
) -> Path:
    """`pareto_figure` of `pair` (y, x; default: the study's first, accuracy against the other quantity)
    saved to `path`."""
    ydim, xdim = pair or pareto_pairs(dims)[0]
    return _save(pareto_figure(recs, front, baselines, ydim, xdim, title=title, unit=unit, px=px), path)


def hypervolume_figure(
    history: Mapping[int, float], *, title: str, ylabel: str, marks: Mapping[int, str]
) -> Any:
    """The front's hypervolume after each trial (a staircase over trial numbers); `marks`: trial -> a name
    written at its step (the trials that came from reference networks)."""
    import matplotlib  # local: heavy optional plotting stack, loaded only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local: after choosing the Agg backend
    from matplotlib.ticker import MaxNLocator  # local: as above

    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    trials = sorted(history)
    values = [history[t] for t in trials]
    ax.step(trials, values, where="post", c="tab:blue", lw=1.4)
    ax.scatter(trials, values, s=10, c="tab:blue", zorder=3)
    for t, name in marks.items():
        if t in history:
            ax.scatter(
                [t], [history[t]], marker="D", s=40, facecolors="none", edgecolors="tab:green", zorder=4
            )
            ax.annotate(name, (t, history[t]), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color="tab:green")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.12 * max(values, default=0.0) or 1.0)  # room above the last step for its name
    ax.grid(alpha=0.3)
    fit_title(fig, ax, title)
    return fig


def hypervolume_plot(
    path: Path, history: Mapping[int, float], *, title: str, ylabel: str, marks: Mapping[int, str]
) -> Path:
    """`hypervolume_figure` saved to `path`."""
    return _save(hypervolume_figure(history, title=title, ylabel=ylabel, marks=marks), path)


def fit_title(fig: Any, ax: Any, text: str, *, fontsize: float = 9) -> Any:
    """Set `text` as the axes' title, wrapped until it fits inside the figure (a title wider than the
    figure is cut at both edges), and lay the figure out around it. Returns the title."""
    lines = text.splitlines() or [""]
    width = max(len(line) for line in lines)
    while True:
        wrapped = "\n".join(textwrap.fill(line, width) if line else line for line in lines)
        title = ax.set_title(wrapped, fontsize=fontsize)
        fig.tight_layout()
        box = title.get_window_extent(fig.canvas.get_renderer())
        if (box.x0 >= 0 and box.x1 <= fig.bbox.width) or width <= 20:
            return title
        width = max(20, min(width - 1, int(width * 0.95 * fig.bbox.width / box.width)))


def log_scale(values: Sequence[float]) -> bool:
    """Whether a cost axis holding `values` is drawn on a log scale: all positive and spanning > LOG_SPAN."""
    vals = [v for v in values if _finite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > LOG_SPAN


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt  # local: loaded by the figure that is saved

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def optuna_html(study: optuna.Study, out_dir: Path, objectives: Sequence[str]) -> dict[str, Path]:
    """Optuna's interactive figures (Pareto front, history, parameter importances) as HTML files.

    plotly.js is written once next to them (`plotly.min.js`), so the pages open offline. A figure Optuna
    cannot draw yet (too few trials) is skipped with a log line. (The hypervolume history is the report's own
    figure, hypervolume.png: Optuna's would count the networks at chance that the front leaves out.)
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
