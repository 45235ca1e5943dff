"""What a search leaves behind: the Pareto plot, Optuna's HTML figures, and the front exported as model configs."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.pareto import ATTR_OF

log = logging.getLogger(__name__)

LABELS = {"accuracy": "validation accuracy", "latency": "latency", "params": "parameters", "macs": "MACs"}


def axis_label(dim: str, unit: str = "") -> str:
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ydim = "accuracy"
    xdim = next(d for d in dims if d != "accuracy")
    xk, yk = ATTR_OF[xdim], ATTR_OF[ydim]

    def pts(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
        ok = [r for r in rows if _finite(r.get(xk)) and _finite(r.get(yk))]
        return [float(r[xk]) for r in ok], [float(r[yk]) for r in ok]

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    done = [r for r in recs if r.get("state") == "COMPLETE"]
    x, y = pts(done)
    ax.scatter(x, y, s=18, c="0.7", label=f"trials ({len(x)})", zorder=2)
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
    import optuna.visualization as vis

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


def export_name(study_name: str, number: int) -> str:
    """The model-config name of a front trial: <study>-t<number>."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}-t{number:04d}"


def export_front(
    front: Sequence[Mapping[str, Any]],
    *,
    study_name: str,
    space: Any,
    data: Mapping[str, Any],
    fidelity: Mapping[str, Any],
    dirs: Sequence[Path],
    latency_unit: str = "",
    input_size: int | None = None,
) -> list[dict[str, Any]]:
    """Write every front architecture as a conf/model-style YAML into each of `dirs`.

    `data` is the search's data at its fidelity; `input_size` the size the networks are deployed (and their
    latency measured) at, when the fidelity trained them smaller.

    Earlier exports of this study that are no longer on the front are removed, so a folder always holds
    exactly the current front. Returns [{trial, name, paths}].
    """
    import yaml

    prefix = export_name(study_name, 0)[: -len("0000")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob(f"{prefix}[0-9][0-9][0-9][0-9].yaml"):
            old.unlink()
    out = []
    for r in front:
        name = export_name(study_name, r["trial"])
        spec = dict(r["spec"])
        spec["name"] = name
        spec.setdefault("family", space.family[0] if space.family else space.name)
        spec.update(
            in_channels=int(data["channels"]),
            num_classes=int(data["num_classes"]),
            input_size=int(input_size or data["image_size"]),
        )
        lat = r.get("latency")
        header = [
            f"# Exported by nas.search from study {study_name!r}, trial {r['trial']} (space {space.name!r}).",
            f"# At the search fidelity ({fidelity.get('epochs')} epoch(s), data fraction {data.get('fraction')}, "
            f"{data.get('image_size')} px, {data.get('name')}): accuracy {_fmt(r.get('accuracy'), '.4f')}, "
            f"latency {_fmt(lat, '.4g')} {latency_unit}, {_fmt((r.get('n_params') or 0) / 1e6, '.3f')} M params, "
            f"{_fmt((r.get('macs') or 0) / 1e6, '.1f')} M MACs.",
            "# in_channels / num_classes / input_size are the search data's; the engine resets them from `data`.",
            f"# Train it: python -m experiments.train model=exported/{name}",
        ]
        text = (
            "\n".join(header) + "\n" + yaml.safe_dump(_plain(spec), sort_keys=False, default_flow_style=None)
        )
        paths = []
        for d in dirs:
            p = d / f"{name}.yaml"
            p.write_text(text)
            paths.append(p)
        out.append({"trial": r["trial"], "name": name, "paths": [str(p) for p in paths]})
    return out


def _plain(obj: Any) -> Any:
    """Plain containers with the spec's key order (yaml.safe_dump refuses tuples and other types)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _fmt(v: Any, spec: str) -> str:
    return "?" if v is None else format(v, spec)
