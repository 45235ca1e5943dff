"""`python -m experiments.bench throughput`: training speed, against a plain loop and against the machine's peak.

Two modes. `--model NAME` (the plain-loop comparison): the platform and a hand-written PyTorch loop train the
same spec on the same in-memory batches with the same optimiser and per-step LR schedule; rounds alternate
(platform, plain, platform, ...) in one process so machine noise hits both alike. The platform round is a
real `pytorch_lightning.Trainer.fit` of the platform's `Classifier` (progress bar and metrics on, as
`experiments.train` runs it); the first round of each is warm-up and is dropped.

`--space NAME --count N` (efficiency): N random architectures of a search
space, within its constraints, at the search's training settings, each trained through `Trainer.fit` by
today's path (NCHW) and the optimised default (`trainer.channels_last: auto`) in alternating rounds; per
network and as the median: images/s, achieved GFLOP/s (6 x MACs x batch / step time) and the share of the
machine's peak (a 2048 x 2048 sgemm, measured between networks in the same run; the best is the peak).
`--ceiling` adds the efficiency the step could reach if only its convolutions and linear layers cost time
(each timed alone on its real shapes): how far the rest of the step is from what the kernels allow.
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import os
import random
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
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


def platform_round(
    module: Classifier, dm, batches: int, progress: bool, trainer_cfg: dict[str, Any] | None = None
) -> float:
    """One round through Lightning's Trainer.fit with the platform's module; returns images/s."""
    monitor = ThroughputMonitor()
    cfg = dict(trainer_cfg or {})
    cfg.update({"max_epochs": 1, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0})
    trainer = make_trainer(
        cfg,
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


def sgemm_gflops(n: int = 2048, reps: int = 5) -> float:
    """The machine's dense float32 peak as this process sees it: GFLOP/s of an n x n matrix product."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def space_specs(space: str, count: int, seed: int, shape: dict[str, int]) -> list[dict[str, Any]]:
    """`count` random specs of `space` that pass its params / MACs constraints, as the search would train."""
    from blocks import build_model
    from blocks.cost import count_macs, count_params
    from experiments.bench.latency import spec_sampler
    from nas.space import load_space

    draw = spec_sampler(space, **shape)
    constraints = load_space(space).constraints
    rng, specs = random.Random(seed), []
    for _ in range(100 * count):
        spec = draw(rng)
        model = build_model(spec)
        size = (1, shape["in_channels"], shape["input_size"], shape["input_size"])
        cost = {"params": count_params(model), "macs": count_macs(model, size)}
        if not constraints.violations(cost):
            specs.append(spec)
        if len(specs) == count:
            return specs
    raise ValueError(
        f"space {space!r}: fewer than {count} of {100 * count} random draws pass its constraints"
    )


def dense_seconds(
    model: torch.nn.Module, x_shape: tuple[int, ...], channels_last: bool, reps: int = 3
) -> float:
    """Seconds of one training step's convolutions and linear layers alone: each layer's forward + backward
    (input and weight gradients) timed in isolation on its real input shape, in the network's layout, summed.

    The step can be no faster than this, so 6 x MACs x batch / this is the efficiency a network could reach
    if everything else (normalisation, activations, pooling, adds, the optimiser) cost nothing."""
    net = copy.deepcopy(model)  # the forward below updates batch-norm statistics
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    shapes: dict[int, tuple[torch.Size, torch.Size]] = {}

    def record(m: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        shapes.setdefault(id(m), (inputs[0].shape, output.shape))  # None returned: the output stays

    hooks = [m.register_forward_hook(record) for m in layers]
    with torch.no_grad():
        net(torch.randn(x_shape).contiguous(memory_format=fmt))
    for h in hooks:
        h.remove()
    total = 0.0
    first = next(iter(shapes), None)  # the stem's input is the data: no input gradient in training either
    for m in layers:
        if id(m) not in shapes:
            continue
        x_s, y_s = shapes[id(m)]
        x = torch.randn(x_s)
        g = torch.randn(y_s)
        if len(x_s) == 4:
            x, g = x.contiguous(memory_format=fmt), g.contiguous(memory_format=fmt)
        x.requires_grad_(id(m) != first)
        times = []
        for _ in range(reps + 1):  # the first is warm-up
            start = time.perf_counter()
            m(x).backward(g)
            times.append(time.perf_counter() - start)
            x.grad = None
            m.zero_grad(set_to_none=True)
        total += statistics.median(times[1:])
    return total


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` trainer options (values read as YAML: 16, true, bf16-mixed)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--opt {item!r}: write KEY=VALUE, e.g. --opt precision=bf16-mixed")
        out[key] = yaml.safe_load(value)
    return out


def search_fidelity(space: str, data: str) -> dict:
    """The fidelity a search of `space` on `data` trains at by default (conf/search.yaml + the space's block)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("search", overrides=[f"space={space}", f"data={data}"])
    return dict(OmegaConf.to_container(cfg.fidelity, resolve=True))  # type: ignore[arg-type]


def run_space(args: argparse.Namespace) -> int:
    """Efficiency mode: today's path vs the optimised default on `args.count` random networks of a space."""
    from blocks.cost import count_macs
    from nas.data import build_datamodule
    from nas.speed import choose_channels_last

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    fidelity = search_fidelity(args.space, args.data)  # the space's (or search.yaml's) training fidelity
    data = load_group("data", args.data)
    data["seed"] = 0
    if fidelity.get("image_size"):
        data["image_size"] = int(fidelity["image_size"])
    data["batch_size"] = args.batch_size or int(data["batch_size"])
    steps, rounds = args.batches or 20, max(2, args.rounds or 3)
    trainer = load_group("trainer", "default")
    opt_trainer = {**trainer, **parse_overrides(args.opt)}  # the optimised path's trainer (e.g. precision)
    optimised = opt_trainer.get("channels_last", "auto")
    optim = load_group("optim", "sgd")
    dm = build_datamodule(data)
    dm.setup("fit")
    shape = {
        "input_size": data["image_size"],
        "in_channels": data["channels"],
        "num_classes": data["num_classes"],
    }
    specs = space_specs(args.space, args.count, args.seed, shape)
    batch = int(data["batch_size"])
    x_shape = (batch, shape["in_channels"], shape["input_size"], shape["input_size"])
    print(
        f"{args.space}: {len(specs)} random networks within its constraints, {args.data} {data['image_size']} px, "
        f"batch {batch}, {steps} steps x {rounds} rounds per path (first dropped), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; optimised = channels_last {optimised}"
        f"{''.join(f', {o}' for o in args.opt if not o.startswith('channels_last='))}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = (
        f"{'#':>2} {'block':<18} {'MMACs':>6} {'today img/s':>11} {'GF/s':>5} {'opt img/s':>10} {'GF/s':>5} "
        f"{'speedup':>7} {'NHWC':>5} {'probe s':>7}" + (f" {'dense GF/s':>8}" if args.ceiling else "")
    )
    print(header)
    peaks, rows = [sgemm_gflops()], []
    for i, spec in enumerate(specs):
        pl.seed_everything(0, verbose=False)
        today = Classifier(spec, optim, batch_size=batch, channels_last=False)
        macs = count_macs(today.model, (1, *x_shape[1:]))
        pl.seed_everything(0, verbose=False)
        # The module's own options (layout, compile) are constructor arguments, not Trainer ones: taken from
        # the optimised path's trainer, as `nas.fit` takes them from `trainer.*`.
        fast = Classifier(
            spec,
            optim,
            batch_size=batch,
            channels_last=optimised,
            compile=bool(opt_trainer.get("compile", False)),
        )
        start = time.perf_counter()  # the probe a first-time network pays (its choice is then cached)
        layout = choose_channels_last(fast.model, spec, x_shape, use_cache=False)
        probe_s = time.perf_counter() - start
        rates: dict[str, list[float]] = {"today": [], "opt": []}
        for _ in range(rounds):
            rates["today"].append(
                platform_round(today, dm, steps, False, {**trainer, "channels_last": False})
            )
            rates["opt"].append(platform_round(fast, dm, steps, False, opt_trainer))
        med = {k: statistics.median(v[1:]) for k, v in rates.items()}
        dense_s = dense_seconds(fast.model, x_shape, fast.channels_last) if args.ceiling else None
        peaks.append(sgemm_gflops())
        row = {
            "net": i,
            "block": _blocks(spec),
            "macs": macs,
            "today_img_s": med["today"],
            "opt_img_s": med["opt"],
            "today_gflops": 6 * macs * med["today"] / 1e9,
            "opt_gflops": 6 * macs * med["opt"] / 1e9,
            "channels_last": fast.channels_last,
            "compiled": bool(fast._compiled),
            "probe_choice": layout,
            "probe_s": probe_s,
            "dense_gflops": 6 * macs * batch / dense_s / 1e9 if dense_s else None,
        }
        rows.append(row)
        print(
            f"{i:>2} {row['block']:<18} {macs / 1e6:>6.1f} {med['today']:>11.0f} {row['today_gflops']:>5.1f} "
            f"{med['opt']:>10.0f} {row['opt_gflops']:>5.1f} {med['opt'] / med['today']:>6.2f}x "
            f"{'yes' if row['channels_last'] else 'no':>5} {probe_s:>7.2f}"
            + (f" {row['dense_gflops']:>8.1f}" if dense_s else ""),
            flush=True,
        )
    peak = max(peaks)
    for row in rows:
        row.update(
            peak_gflops=peak,
            today_pct=100 * row["today_gflops"] / peak,
            opt_pct=100 * row["opt_gflops"] / peak,
            dense_pct=100 * row["dense_gflops"] / peak if row["dense_gflops"] else None,
        )
    _summary(rows, peaks)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def _blocks(spec: dict[str, Any]) -> str:
    """The block types of a spec's stages, plus its stem pooling: e.g. "bottleneck+avgpool"."""
    names = sorted({str(s.get("block")) for s in spec.get("stages", [])})
    pools = [str(s.get("type")) for s in spec.get("small_stem", []) if s.get("block") == "pool"]
    return "/".join(names) + "".join(f"+{p}pool" for p in pools)


def _summary(rows: list[dict[str, Any]], peaks: list[float]) -> None:
    """Medians and minima of both paths as shares of the peak."""
    peak = max(peaks)
    print(
        f"\npeak (2048 x 2048 sgemm): {peak:.1f} GFLOP/s best of {len(peaks)} "
        f"(median {statistics.median(peaks):.1f}, min {min(peaks):.1f})"
    )
    for path, label in (("today", "today (NCHW)"), ("opt", "optimised")):
        pct = [r[f"{path}_pct"] for r in rows]
        img = [r[f"{path}_img_s"] for r in rows]
        print(
            f"{label:<13} median {statistics.median(img):7.0f} img/s  {statistics.median(pct):5.1f} % of peak  "
            f"(min {min(pct):5.1f} %, max {max(pct):5.1f} %)"
        )
    dense = [r["dense_pct"] for r in rows if r.get("dense_pct")]
    if dense:  # what the optimised path could reach if only its convolutions and linear layers cost time
        print(
            f"{'ceiling':<13} median {statistics.median(dense):5.1f} % of peak from the dense layers alone "
            f"(min {min(dense):5.1f} %, max {max(dense):5.1f} %)"
        )
    speedup = [r["opt_img_s"] / r["today_img_s"] for r in rows]
    print(
        f"speedup       median {statistics.median(speedup):.2f}x  (min {min(speedup):.2f}x, max {max(speedup):.2f}x)"
    )


def main(argv: list[str] | None = None) -> int | None:
    p = argparse.ArgumentParser(prog="python -m experiments.bench throughput", description=__doc__)
    p.add_argument("--data", default="fashion_mnist", help="conf/data/<name>.yaml")
    p.add_argument("--model", default="simple_cnn", help="conf/model/<name>.yaml")
    p.add_argument("--batch-size", type=int, default=None, help="default 256; --space: the data config's")
    p.add_argument(
        "--batches", type=int, default=None, help="training batches per round (default 60; --space 20)"
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="rounds of each, the first is warm-up (6; --space 3)"
    )
    p.add_argument("--no-progress", action="store_true", help="disable the platform's progress bar")
    p.add_argument("--space", default=None, help="efficiency mode: random networks of conf/space/<name>.yaml")
    p.add_argument("--count", type=int, default=10, help="efficiency mode: networks to train")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="efficiency mode: which random networks")
    p.add_argument("--csv", default=None, help="efficiency mode: also write the per-network rows here")
    p.add_argument(
        "--ceiling", action="store_true",
        help="efficiency mode: also time each network's convolutions and linear layers alone (forward + "
        "backward, in the optimised path's layout): the efficiency the step could reach if nothing else cost time",
    )  # fmt: skip
    p.add_argument(
        "--opt", action="append", default=[], metavar="KEY=VALUE",
        help="efficiency mode: a trainer option of the optimised path only, e.g. --opt precision=bf16-mixed",
    )  # fmt: skip
    args = p.parse_args(argv)
    for name in ("count", "batches", "rounds", "threads", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.space is not None:
        return run_space(args)
    # Lightning announces every Trainer it builds; one line per round is what a benchmark should print.
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="pytorch_lightning")

    from nas.data import build_datamodule

    args.batch_size = args.batch_size or 256
    args.batches = args.batches or 60
    args.rounds = args.rounds or 6
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
    print(f"ratio     {med['platform'] / med['plain']:.3f}  (target >= 0.98)")
    return None


if __name__ == "__main__":
    main()
