"""Synthetic surrogate data for tests: a small space with every kind of parameter (a stage count, a per-stage log
range, a conditional float, categoricals), and data files of the real format whose accuracies a known function
gives, so a test knows what a good surrogate must find."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nas.space import Space

SPACE: dict[str, Any] = {
    "name": "cond",
    "family": ["plain"],
    "description": "one or two conv stages, a log width each, dropout when the head max-pools",
    "stages": "$n_stages",
    "params": {
        "n_stages": {"choices": [1, 2]},
        "act": {"choices": ["relu", "silu"]},
        "pool": {"choices": ["avg", "max"]},
        "drop": {"type": "float", "low": 0.0, "high": 0.5, "when": {"pool": "max"}},
        "width": {"type": "int", "low": 4, "high": 64, "log": True, "per_stage": True},
    },
    "spec": {
        "name": "cond",
        "act": "$act",
        "norm": "batchnorm",
        "stem": [{"block": "conv", "channels": 4}],
        "stages": [{"for_each_stage": {"block": "conv", "channels": "$width", "stride": 2}}],
        "head": {"type": "linear", "pool": "$pool", "dropout": "$drop"},
    },
}


# The same without dropout and with two widths: 24 networks, so that a search of 30 trials meets repeats.
SMALL: dict[str, Any] = {
    **SPACE,
    "name": "small",
    "params": {**{k: v for k, v in SPACE["params"].items() if k not in ("drop", "width")},
               "width": {"choices": [4, 8], "per_stage": True}},
    "spec": {**SPACE["spec"], "name": "small", "head": {"type": "linear", "pool": "$pool"}},
}  # fmt: skip


def space(raw: dict[str, Any] = SPACE) -> Space:
    return Space.from_dict(raw)


def costs(params: dict[str, Any]) -> tuple[int, int]:
    """Made-up (MACs, parameter count) growing with the widths, as a real count does."""
    widths = [params[f"width_{i}"] for i in range(params["n_stages"])]
    macs = 1000 * sum(w * w for w in widths) + 500
    return macs, 10 * sum(widths) + 50


def truth(params: dict[str, Any]) -> float:
    """The mean accuracy the synthetic fidelity measures: best at middling cost (a curve, so a linear model
    misses it), silu helping only the two-stage networks, dropout hurting."""
    macs, _ = costs(params)
    return (0.85 - 0.04 * (math.log10(macs) - 5.5) ** 2 + 0.02 * (params["act"] == "silu" and params["n_stages"] == 2)
            - 0.08 * (params.get("drop") or 0.0))  # fmt: skip


def doc(
    n: int = 40, *, seeded: int = 12, noise: float = 0.004, seed: int = 0, raw: dict[str, Any] = SPACE
) -> dict[str, Any]:
    """A data file's content: `n` distinct random architectures of space `raw`, seed 0 for all, seed 1 for
    `seeded`."""
    sp, rng = space(raw), np.random.default_rng(seed)
    archs, seen, draw = [], set(), 0
    while len(archs) < n:
        if draw > 100 * n:
            raise ValueError(f"space {sp.name!r} has fewer than {n} networks")
        params = sp.sample_random(draw).params
        draw += 1
        key = json.dumps(params, sort_keys=True)
        if key not in seen:
            seen.add(key)
            macs, n_params = costs(params)
            archs.append({"params": params, "macs": macs, "n_params": n_params, "reference": None})
    runs = {}
    for i, a in enumerate(archs):
        for s in (0, 1) if i < seeded else (0,):
            acc = truth(a["params"]) + noise * rng.standard_normal()
            runs[f"run-{i}-{s}"] = {
                "arch": i,
                "seed": s,
                "accuracy": acc,
                "val_accuracy": acc,
                "seconds": 1.0,
            }
    return {"space": sp.name, "data": "synthetic", "fidelity": {"epochs": 1}, "metric": "val/acc",
            "signature": {"space": sp.name, "epochs": 1}, "archs": archs, "runs": runs, "status": "complete"}  # fmt: skip


def write(folder: Path, content: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """(data file, space YAML) written into `folder`."""
    import yaml

    data = folder / "cond-synthetic.json"
    data.write_text(json.dumps(content or doc()))
    yaml_path = folder / "cond.yaml"
    yaml_path.write_text(yaml.safe_dump(SPACE, sort_keys=False))
    return data, yaml_path
