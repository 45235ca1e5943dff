"""The training identity: what decides a run's result is in it, presentation and paths are not, and the
device the run trains on is (a cache shared by CPU and GPU machines must keep their runs apart)."""

import copy

import pytest
import torch

from experiments.ablation.config import composer, config_key, keyed_part, plain, run_config
from nas.identity import identity_key, resolved_device, training_identity

SHARED = ["data=synthetic", "logger=none", "latency.mode=macs"]


@pytest.fixture(scope="module")
def base_run_cfg():
    """The ablation baseline's resolved run config (what one fit() of the baseline takes, seed aside)."""
    with composer() as compose:
        return run_config(plain(compose(SHARED)))


def changed(cfg, section, key, value):
    out = copy.deepcopy(cfg)
    out[section][key] = value
    return out


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("data", "root", "/somewhere/else"),
        ("data", "download", False),
        ("data", "device", "cpu"),
        ("trainer", "num_sanity_val_steps", 2),
        ("trainer", "enable_progress_bar", True),
        ("trainer", "log_every_n_steps", 7),
    ],
)
def test_keys_that_do_not_change_results_do_not_change_the_ablation_key(base_run_cfg, section, key, value):
    assert config_key(changed(base_run_cfg, section, key, value)) == config_key(base_run_cfg)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("trainer", "precision", "bf16-mixed"),
        ("trainer", "gradient_clip_val", 1.0),
        ("trainer", "limit_train_batches", 0.5),
        ("trainer", "accumulate_grad_batches", 2),
        ("trainer", "deterministic", True),
        ("data", "batch_size", 64),
        ("data", "fraction", 0.5),
        ("data", "label_noise", 0.1),
        ("optim", "lr", 0.1),
    ],
)
def test_every_key_that_decides_training_changes_the_key(base_run_cfg, section, key, value):
    assert base_run_cfg[section].get(key) != value
    assert config_key(changed(base_run_cfg, section, key, value)) != config_key(base_run_cfg)


def test_the_resolved_device_is_part_of_the_key(base_run_cfg, monkeypatch):
    """accelerator=auto trains on the GPU where there is one: those runs must not be reused on a CPU."""
    assert base_run_cfg["trainer"]["accelerator"] == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = config_key(base_run_cfg)
    assert keyed_part(base_run_cfg)["device"] == "cpu"
    # the same device spelt another way is the same run
    assert config_key(changed(base_run_cfg, "trainer", "accelerator", "cpu")) == on_cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolved_device(base_run_cfg["trainer"]) == "cuda"
    assert config_key(base_run_cfg) != on_cpu
    assert config_key(changed(base_run_cfg, "trainer", "accelerator", "gpu")) == config_key(base_run_cfg)


def test_the_identity_drops_output_and_logging_and_keeps_unknown_keys():
    cfg = {
        "data": {"name": "synthetic", "root": "/r", "batch_size": 8},
        "model": {"name": "m"},
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "some_new_option": 3},
        "logger": {"name": "wandb"},
        "output_dir": "/out",
        "name": "run-1",
        "checkpoint": True,
        "seed": 4,
    }
    ident = training_identity(cfg)
    assert ident == {
        "data": {"name": "synthetic", "batch_size": 8},
        "model": {"name": "m"},
        "trainer": {"max_epochs": 1, "some_new_option": 3},
        "seed": 4,
        "device": "cpu",
    }
    assert identity_key({**cfg, "seed": 5}) != identity_key(cfg)  # the seed, when given, decides the result
    assert identity_key(cfg, device="cuda") != identity_key(cfg)
