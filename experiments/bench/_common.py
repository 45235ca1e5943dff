"""What the training benchmarks (search, fidelity) share: their command-line options and the search config of
one run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from nas.config import CONF_DIR, to_plain


def training_options(p: argparse.ArgumentParser) -> None:
    """The options every training benchmark shares: space, data, validation size, batch size, latency mode."""
    p.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    p.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    p.add_argument("--val-size", type=int, default=1000, help="validation images (fixed, for every run)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (small data: more steps)")
    p.add_argument(
        "--latency", default="predicted", help="latency mode: measured | predicted | macs | params"
    )


def compose(args: argparse.Namespace, sampler: str, seed: int) -> dict[str, Any]:
    """The search config of one benchmark run: `args` carries the training options above plus `trials`,
    `fraction`, `epochs`, `startup` (TPE start-up trials / NSGA population), `out` and `overrides`."""
    overrides = [
        f"space={args.space}", f"data={args.data}", f"sampler={sampler}", f"sampler.seed={seed}", "seed=0",
        f"study_name=bench-{args.space}-{sampler}-s{seed}", f"n_trials={args.trials}",
        f"fidelity.fraction={args.fraction}", f"fidelity.epochs={args.epochs}", f"data.val_size={args.val_size}",
        "fidelity.image_size=null",  # the data's size unless an override says otherwise (not the space's default)
        f"latency.mode={args.latency}", f"data.batch_size={args.batch_size}", "logger=none", "html=false",
        "progress=false", "baselines.enabled=false",
        # One storage for every run, so an architecture any run has trained is reused, not retrained (the
        # samplers' random start-up designs coincide for a seed: that is most of the saving).
        f"storage.url=sqlite:///{Path(args.out).resolve() / 'bench.db'}", "reuse=storage",
    ]  # fmt: skip
    if sampler == "tpe":
        overrides.append(f"sampler.n_startup_trials={args.startup}")
    if sampler in ("nsga2", "nsga3"):
        overrides.append(f"sampler.population_size={args.startup}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(hydra_compose("search", overrides=[*overrides, *args.overrides]))
    cfg["export_dir"] = str(Path(args.out) / "exports")  # a copy of the front beside the benchmark's outputs
    return cfg
