"""Optimisers and learning-rate policies (per step), built from a plain `optim` config."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adamw")
POLICIES = ("constant", "step", "linear", "poly", "sqrt", "square", "cosine")
OPTIM_KEYS = {
    "name",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "betas",
    "no_wd_bias_norm",
    "policy",
    "power",
    "milestones",
    "gamma",
    "warmup_epochs",
    "final_lr_fraction",
    "scale_lr",
    "base_batch_size",
}


def validate_optim(cfg: dict[str, Any]) -> None:
    """Raise a clear error for an unknown optimiser, policy or key, before any training starts."""
    unknown = set(cfg) - OPTIM_KEYS
    if unknown:
        raise ValueError(f"unknown optim keys {sorted(unknown)}; valid keys: {', '.join(sorted(OPTIM_KEYS))}")
    if cfg.get("name", "sgd") not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg.get('name')!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    if cfg.get("policy", "cosine") not in POLICIES:
        raise ValueError(f"unknown lr policy {cfg.get('policy')!r}; valid policies: {', '.join(POLICIES)}")
    if float(cfg.get("lr", 0.1)) <= 0:
        raise ValueError(f"optim.lr must be > 0, got {cfg.get('lr')}")
    for m in cfg.get("milestones") or []:
        if not 0 < float(m) < 1:
            raise ValueError(f"optim.milestones are fractions of training in (0, 1), got {m}")


def effective_lr(cfg: dict[str, Any], batch_size: int) -> float:
    """The base LR, linearly scaled by batch_size / base_batch_size when `scale_lr` is on (Goyal et al.)."""
    lr = float(cfg.get("lr", 0.1))
    if cfg.get("scale_lr", False):
        lr *= batch_size / float(cfg.get("base_batch_size", 256))
    return lr


def lr_factor(cfg: dict[str, Any], step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base LR at optimiser step `step` of `total_steps` (0-based).

    Warm-up rises linearly from 1/warmup_steps to 1; the policy then runs over the remaining steps with
    progress p in [0, 1): step -> gamma ** (milestones passed); poly -> (1 - p) ** power (linear = power 1,
    sqrt = 0.5, square = 2); cosine -> (1 + cos(pi p)) / 2. Decaying policies end at `final_lr_fraction`.
    """
    policy = cfg.get("policy", "cosine")
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    p = min(1.0, (step - warmup_steps) / span)
    floor = float(cfg.get("final_lr_fraction", 0.0))
    if policy == "constant":
        return 1.0
    if policy == "step":
        passed = sum(p >= float(m) for m in cfg.get("milestones", (0.5, 0.75)))
        return float(cfg.get("gamma", 0.1)) ** passed
    if policy in ("linear", "poly", "sqrt", "square"):
        power = {"linear": 1.0, "sqrt": 0.5, "square": 2.0}.get(policy, float(cfg.get("power", 1.0)))
        decay = (1.0 - p) ** power
    elif policy == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        raise ValueError(f"unknown lr policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    return floor + (1.0 - floor) * decay


def param_groups(model: nn.Module, weight_decay: float, no_wd_bias_norm: bool) -> list[dict[str, Any]]:
    """One group, or two when biases and norm parameters (all 0-d/1-d tensors) are kept free of decay."""
    if not no_wd_bias_norm:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, free = [], []
    for p in model.parameters():
        if p.requires_grad:
            (free if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": free, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: dict[str, Any], batch_size: int) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over the model's parameters."""
    validate_optim(cfg)
    lr = effective_lr(cfg, batch_size)
    groups = param_groups(model, float(cfg.get("weight_decay", 0.0)), bool(cfg.get("no_wd_bias_norm", False)))
    if cfg.get("name", "sgd") == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=float(cfg.get("momentum", 0.9)), nesterov=bool(cfg.get("nesterov", False))
        )
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.get("betas", (0.9, 0.999))))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR implementing `lr_factor`."""
    warmup = int(round(float(cfg.get("warmup_epochs", 0)) * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, total_steps, warmup)
    )
