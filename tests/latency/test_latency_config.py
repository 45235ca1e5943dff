"""Device configs: validation with clear messages, the YAML files, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from nas.latency import LatencyConfig, device_fingerprint
from nas.latency import fingerprint as fpmod

CONF = Path(__file__).resolve().parents[2] / "conf" / "latency"


def test_defaults_resolve_threads():
    cfg = LatencyConfig.from_cfg({"threads": None})
    assert cfg.threads == torch.get_num_threads()
    assert LatencyConfig.from_cfg().mode == "measured"


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"no CUDA GPU is available.*latency=cpu"):
        LatencyConfig.from_cfg({"device": "cuda"})
    with pytest.raises(ValueError, match="no CUDA GPU"):
        LatencyConfig.from_cfg({"device": "cuda:1"})


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"mode": "flops"}, "valid modes: measured, predicted, macs, params"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"threads": -2}, "threads must be an integer >= 1"),
        ({"threads": 1.5}, "threads must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"device": "tpu"}, "valid devices: cpu, cuda"),
        ({"device": "cuda-ish"}, "valid devices: cpu, cuda"),
        ({"min_repeats": 2}, "min_repeats must be an integer >= 3"),
        ({"min_repeats": 10, "max_repeats": 5}, "max_repeats must be an integer >= 10"),
        ({"rel_ci": 0}, "rel_ci must be in"),
        ({"max_time_s": 0}, "max_time_s must be > 0"),
        ({"repeats": 3}, "unknown latency config keys.*valid keys: device, mode, runtime, threads"),
    ],
)
def test_bad_config_is_a_clear_error(cfg, message):
    with pytest.raises(ValueError, match=message):
        LatencyConfig.from_cfg(cfg)


def test_hydra_dictconfig_is_accepted():
    cfg = LatencyConfig.from_cfg(OmegaConf.create({"threads": 2, "mode": "macs"}))
    assert (cfg.threads, cfg.mode) == (2, "macs")


def test_yaml_files_are_valid():
    cpu = LatencyConfig.from_cfg(yaml.safe_load((CONF / "cpu.yaml").read_text()))
    assert cpu.device == "cpu" and cpu.batch_size == 1 and cpu.threads >= 1
    cuda = yaml.safe_load((CONF / "cuda.yaml").read_text())
    assert cuda["device"] == "cuda"
    # Every key is a known one (validated here with the device swapped, as the build machine has no GPU).
    assert LatencyConfig.from_cfg({**cuda, "device": "cpu"}).warmup >= cpu.warmup


def test_fingerprint_is_stable_and_separates_devices(monkeypatch):
    one = LatencyConfig.from_cfg({"threads": 1})
    a, b = device_fingerprint(one), device_fingerprint(LatencyConfig.from_cfg({"threads": 1}))
    assert a.key == b.key and a.info == b.info
    assert {"cpu", "threads", "torch", "device"} <= set(a.info)
    assert device_fingerprint(LatencyConfig.from_cfg({"threads": 2})).key != a.key
    monkeypatch.setattr(fpmod, "cpu_model", lambda: "Some Other CPU 9000")
    other = device_fingerprint(one)
    assert other.key != a.key and other.info["cpu"] == "Some Other CPU 9000"
    monkeypatch.setattr(fpmod.torch, "__version__", "0.0.0-test")
    assert device_fingerprint(one).key not in (a.key, other.key)
