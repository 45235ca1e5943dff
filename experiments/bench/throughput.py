"""`python -m experiments.bench throughput`: training images/s through the platform vs a plain PyTorch loop.

Both train the same spec on the same in-memory batches with the same optimiser and per-step LR schedule;
rounds alternate (platform, plain, platform, ...) in one process so machine noise hits both alike. The
platform round is a real `pytorch_lightning.Trainer.fit` of the platform's `Classifier` (progress bar and
metrics on, as `experiments.train` runs it); the first round of each is warm-up and is dropped.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from nas.config import CONF_DIR, make_trainer
from nas.fit import ThroughputMonitor
from nas.module import Classifier
from nas.optim import build_optimizer, build_scheduler


def load_group(group: str, name: str) -> dict[str, Any]:
    """A config group file as a plain dict (KeyError listing the choices if it does not exist)."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.exists():
        valid = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise KeyError(f"unknown {group} {name!r}; valid: {', '.join(valid)}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def plain_round(model, opt, sched, loader, batches: int) -> float:
    """One hand-written training round over `batches` batches; returns images/s."""
    model.train()
    images, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == batches:
            break
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        images += len(y)
    return images / (time.perf_counter() - start)


def platform_round(module: Classifier, dm, batches: int, progress: bool) -> float:
    """One round through Lightning's Trainer.fit with the platform's module; returns images/s."""
    monitor = ThroughputMonitor()
    trainer = make_trainer(
        {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
        logger=None,
        callbacks=[monitor],
        out=Path("outputs") / "bench",  # relative to the working directory, like every command's outputs
        limit_train_batches=batches,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
    )
    trainer.fit(module, datamodule=dm)
    return monitor.images_per_s


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m experiments.bench throughput", description=__doc__)
    p.add_argument("--data", default="fashion_mnist", help="conf/data/<name>.yaml")
    p.add_argument("--model", default="simple_cnn", help="conf/model/<name>.yaml")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=60, help="training batches per round")
    p.add_argument("--rounds", type=int, default=6, help="rounds of each (the first is warm-up)")
    p.add_argument("--no-progress", action="store_true", help="disable the platform's progress bar")
    args = p.parse_args(argv)
    # Lightning announces every Trainer it builds; one line per round is what a benchmark should print.
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="pytorch_lightning")

    from nas.data import build_datamodule

    data = load_group("data", args.data)
    data.update(batch_size=args.batch_size, augment=False, seed=0)
    spec = load_group("model", args.model)
    spec.update(in_channels=data["channels"], num_classes=data["num_classes"], input_size=data["image_size"])
    optim = load_group("optim", "sgd")
    dm = build_datamodule(data)
    dm.setup("fit")

    pl.seed_everything(0, verbose=False)
    module = Classifier(spec, optim, batch_size=args.batch_size)
    pl.seed_everything(0, verbose=False)
    plain = Classifier(spec, optim, batch_size=args.batch_size).model
    opt = build_optimizer(plain, optim, args.batch_size)
    total = args.batches * args.rounds
    sched = build_scheduler(opt, optim, total, args.batches)

    rates: dict[str, list[float]] = {"platform": [], "plain": []}
    for r in range(args.rounds):
        rates["platform"].append(platform_round(module, dm, args.batches, not args.no_progress))
        rates["plain"].append(plain_round(plain, opt, sched, dm.train_dataloader(), args.batches))
        print(
            f"round {r}: platform {rates['platform'][-1]:8.0f} img/s   plain {rates['plain'][-1]:8.0f} img/s"
        )
    med = {k: statistics.median(v[1:] if len(v) > 1 else v) for k, v in rates.items()}
    print(
        f"\n{args.model} on {args.data}, batch {args.batch_size}, {args.batches} batches x {args.rounds} rounds, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"platform  {med['platform']:8.0f} images/s (median)")
    print(f"plain     {med['plain']:8.0f} images/s (median)")
    print(f"ratio     {med['platform'] / med['plain']:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
