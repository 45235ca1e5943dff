"""LR policies against their formulas; optimiser construction and validation."""

import math

import pytest
import torch
from torch import nn

from nas.optim import build_optimizer, build_scheduler, effective_lr, lr_factor, validate_optim

T = 100


@pytest.mark.parametrize(
    ("policy", "extra", "formula"),
    [
        ("constant", {}, lambda p: 1.0),
        ("linear", {}, lambda p: 1 - p),
        ("sqrt", {}, lambda p: (1 - p) ** 0.5),
        ("square", {}, lambda p: (1 - p) ** 2),
        ("poly", {"power": 3.0}, lambda p: (1 - p) ** 3),
        ("cosine", {}, lambda p: 0.5 * (1 + math.cos(math.pi * p))),
        ("step", {"milestones": [0.3, 0.6], "gamma": 0.5}, lambda p: 0.5 ** ((p >= 0.3) + (p >= 0.6))),
    ],
)
def test_policy_matches_formula(policy, extra, formula):
    cfg = {"policy": policy, **extra}
    for step in range(T):
        assert lr_factor(cfg, step, T) == pytest.approx(formula(step / T)), (policy, step)


def test_warmup_then_policy_over_the_rest():
    cfg = {"policy": "linear"}
    factors = [lr_factor(cfg, s, T, warmup_steps=10) for s in range(T)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(1 - 45 / 90)


def test_final_lr_fraction_is_the_floor():
    cfg = {"policy": "cosine", "final_lr_fraction": 0.1}
    assert lr_factor(cfg, 0, T) == pytest.approx(1.0)
    assert lr_factor(cfg, T, T) == pytest.approx(0.1)


def test_linear_lr_scaling_with_batch_size():
    assert effective_lr({"lr": 0.1, "scale_lr": True, "base_batch_size": 256}, 1024) == pytest.approx(0.4)
    assert effective_lr({"lr": 0.1, "scale_lr": False}, 1024) == pytest.approx(0.1)


def test_scheduler_drives_optimizer_lr():
    model = nn.Linear(3, 2)
    cfg = {"name": "sgd", "lr": 0.2, "policy": "linear"}
    opt = build_optimizer(model, cfg, batch_size=32)
    sched = build_scheduler(opt, cfg, total_steps=10, steps_per_epoch=5)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.2 * (1 - s / 10) for s in range(10)])


def test_sgd_nesterov_adamw_and_no_decay_groups():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    sgd = build_optimizer(
        model, {"name": "sgd", "nesterov": True, "weight_decay": 1e-4, "no_wd_bias_norm": True}, 8
    )
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["nesterov"]
    decay, free = sgd.param_groups
    assert decay["weight_decay"] == 1e-4 and [p.ndim for p in decay["params"]] == [4]
    assert free["weight_decay"] == 0.0 and len(free["params"]) == 3  # conv bias, BN weight, BN bias
    adamw = build_optimizer(model, {"name": "adamw", "lr": 1e-3}, 8)
    assert isinstance(adamw, torch.optim.AdamW) and len(adamw.param_groups) == 1


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"name": "rmsprop"}, "valid optimizers: sgd, adamw"),
        ({"policy": "exp"}, "valid policies"),
        ({"lr": 0}, "lr must be > 0"),
        ({"milestones": [1.5]}, "fractions of training"),
        ({"momentun": 0.9}, "unknown optim keys"),
    ],
)
def test_bad_optim_config_is_refused(cfg, message):
    with pytest.raises(ValueError, match=message):
        validate_optim(cfg)
