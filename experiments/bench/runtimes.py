"""`python -m experiments.bench runtimes STUDY_DIR STUDY_DIR ...`: how the latency runtime shapes the front.

Compares the Pareto fronts of searches that differ only in `latency.runtime` (same space, budget, fidelity
and seed), e.g. the pair written by

    python -m nas.search +space=resnet_like latency.runtime=eager study_name=rtcmp-eager \\
        n_trials=20 seed=0 fidelity.fraction=0.03 data.val_size=1000 baselines.enabled=false logger=none
    python -m nas.search +space=resnet_like latency.runtime=onnxruntime study_name=rtcmp-onnxruntime \\
        n_trials=20 seed=0 fidelity.fraction=0.03 data.val_size=1000 baselines.enabled=false logger=none
    python -m experiments.bench runtimes outputs/search/rtcmp-eager outputs/search/rtcmp-onnxruntime

Per study: its front's architectures (stages, residual blocks, conv layers, channel widths, MACs, params,
latency in its own runtime) and their medians. With `--measure` (the default) every front architecture of
every study is also timed now in each study's runtime, so one front can be judged in the other's runtime:
which architectures would each runtime's deployment choose. Only the first `--trials` counted trials of
each study are read, so studies of unequal length compare at the same budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from nas.latency import latency_objective
from nas.search.records import front, records

CONV_LAYERS = {"basic": 2, "bottleneck": 3, "preact": 2, "conv": 1}  # conv layers on a block's main path


def load_front(study_dir: Path, trials: int | None) -> dict[str, Any]:
    """The study in `study_dir` (its study.db, named after the folder): runtime, latency config, front."""
    db = study_dir / "study.db"
    if not db.is_file():
        raise ValueError(
            f"{study_dir} holds no study.db: pass the folder of a search (outputs/search/<study>)"
        )
    storage = f"sqlite:///{db.resolve()}"
    names = optuna.get_all_study_names(storage)
    name = study_dir.name if study_dir.name in names else names[0]
    study = optuna.load_study(study_name=name, storage=storage)
    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished()
        and not t.user_attrs.get("rejected")
        and t.user_attrs.get("state") != "SURPLUS"
    ]
    done = sorted(done, key=lambda t: t.number)[:trials]
    recs = records(done)
    device = next((t.user_attrs["device"] for t in done if t.user_attrs.get("device")), {})
    return {
        "study": name,
        "runtime": device.get("runtime", "?"),
        "trials": len(done),
        "completed": sum(r["state"] == "COMPLETE" for r in recs),
        "front": front(recs, ["accuracy", "latency"]),
    }


def shape(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Depth and width of a rendered spec: stages, residual blocks, conv layers, per-stage channels."""
    stages = list(spec.get("stages") or [])
    blocks = sum(int(s.get("repeat", 1)) for s in stages)
    convs = sum(int(s.get("repeat", 1)) * CONV_LAYERS.get(s.get("block"), 1) for s in stages)
    widths = [int(s.get("channels", 0)) for s in stages]
    return {
        "stages": len(stages),
        "blocks": blocks,
        "conv_layers": convs + len([x for x in spec.get("small_stem") or [] if x.get("block") == "conv"]),
        "block": stages[0].get("block") if stages else None,
        "widths": widths,
        "mean_width": statistics.fmean(widths) if widths else 0.0,
    }


def describe(entry: dict[str, Any]) -> dict[str, Any]:
    """Per front architecture: trial, accuracy, latency, MACs, params and its shape; plus the medians."""
    rows = []
    for r in entry["front"]:
        rows.append(
            {
                "trial": r["trial"],
                "accuracy": r["accuracy"],
                "latency_ms": r["latency"],
                "macs_m": (r.get("macs") or 0) / 1e6,
                "params_m": (r.get("n_params") or 0) / 1e6,
                **shape(r["spec"] or {}),
            }
        )
    med = {
        k: statistics.median(x[k] for x in rows) if rows else None
        for k in ("blocks", "conv_layers", "mean_width", "macs_m", "params_m", "latency_ms")
    }
    return {**{k: v for k, v in entry.items() if k != "front"}, "rows": rows, "median": med}


def cross_measure(
    entries: Sequence[dict[str, Any]], study_dirs: Sequence[Path], cfg: Mapping[str, Any]
) -> None:
    """Time every front architecture in every study's runtime (latency_ms_<runtime> on each row)."""
    runtimes = sorted({e["runtime"] for e in entries})
    for e, d in zip(entries, study_dirs, strict=True):
        specs = {r["trial"]: r["spec"] for r in load_front(d, e["trials"])["front"]}
        sizes = _deployed_sizes(d)
        for row in e["rows"]:
            spec = {**specs[row["trial"]], **sizes}
            for rt in runtimes:
                value, _ = latency_objective(spec, {**cfg, "runtime": rt, "mode": "measured"})
                row[f"latency_ms_{rt}"] = value
        for rt in runtimes:
            e["median"][f"latency_ms_{rt}"] = statistics.median(r[f"latency_ms_{rt}"] for r in e["rows"])


def _deployed_sizes(study_dir: Path) -> dict[str, int]:
    """in_channels / num_classes / input_size the study deploys at, from one of its exported configs."""
    for path in sorted((study_dir / "models").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        return {k: int(spec[k]) for k in ("in_channels", "num_classes", "input_size")}
    raise ValueError(
        f"{study_dir}/models holds no exported config: the search's report writes them (re-run the search "
        "command at its budget to report again), or pass --no-measure"
    )


def table(entries: Sequence[dict[str, Any]]) -> str:
    """The fronts side by side as text (one block per study, then the medians)."""
    runtimes = sorted({e["runtime"] for e in entries})
    cross = [
        f"ms@{rt}" for rt in runtimes if any(f"latency_ms_{rt}" in r for e in entries for r in e["rows"])
    ]
    head = ["trial", "acc", "ms(own)", *cross, "MMACs", "Mparams", "blocks", "convs", "block", "widths"]
    lines = []
    for e in entries:
        lines.append(
            f"\n{e['study']} (runtime {e['runtime']}): {len(e['rows'])} on the front of {e['completed']} "
            f"completed / {e['trials']} trials"
        )
        lines.append("  ".join(f"{h:>9}" for h in head))
        for r in sorted(e["rows"], key=lambda r: r["latency_ms"]):
            cells = [r["trial"], f"{r['accuracy']:.4f}", f"{r['latency_ms']:.3g}"]
            cells += [f"{r[f'latency_ms_{c[3:]}']:.3g}" for c in cross]
            cells += [f"{r['macs_m']:.1f}", f"{r['params_m']:.3f}", r["blocks"], r["conv_layers"], r["block"]]
            lines.append("  ".join(f"{c!s:>9}" for c in cells) + "  " + "/".join(map(str, r["widths"])))
    lines.append("\nmedians over the front:")
    keys = [k for k in entries[0]["median"]]
    lines.append(f"{'study':>24}  " + "  ".join(f"{k:>20}" for k in keys))
    for e in entries:
        vals = [e["median"].get(k) for k in keys]
        lines.append(
            f"{e['study']:>24}  " + "  ".join(f"{'-' if v is None else format(v, '.3g'):>20}" for v in vals)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Compare the fronts of the given search folders; print a table, optionally write JSON."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench runtimes", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "studies", nargs="+", type=Path, help="search folders (outputs/search/<study>), two or more"
    )
    p.add_argument("--trials", type=int, default=None, help="compare the first N counted trials of each")
    p.add_argument("--no-measure", action="store_true", help="do not time the fronts in each other's runtime")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for the cross timing")
    p.add_argument("--max-time-s", type=float, default=2.0, help="timing per architecture and runtime (s)")
    p.add_argument("--json", type=Path, default=None, help="also write the comparison to this file")
    args = p.parse_args(argv)
    if len(args.studies) < 2:
        raise ValueError("pass two or more search folders to compare, e.g. outputs/search/rtcmp-eager ...")
    entries = [describe(load_front(d, args.trials)) for d in args.studies]
    if not args.no_measure:
        cross_measure(
            entries, args.studies, {"device": "cpu", "threads": args.threads, "max_time_s": args.max_time_s}
        )
    print(table(entries))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(entries, indent=1, default=str))
    return 0
