"""Device fingerprints: which hardware and software a latency figure was measured on."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from dataclasses import dataclass
from typing import Any

import torch

from nas.latency.config import LatencyConfig
from nas.latency.runtimes import default_runtime, runtime_version


@dataclass(frozen=True)
class Fingerprint:
    """A short stable `key` (hash of `info`) and the readable `info` it was made from."""

    key: str
    info: dict[str, Any]

    def label(self) -> str:
        """One line for tables and plot titles: processor, threads, runtime and its version."""
        proc = self.info.get("gpu") or self.info.get("cpu")
        runtime = self.info.get("runtime", "eager")
        version = self.info.get("runtime_version") or f"torch {self.info['torch']}"
        return f"{proc} | {self.info['threads']} thread(s) | {runtime} ({version})"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                # x86: "model name"; some ARM kernels: "Hardware" / "Processor"
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_info(cfg: LatencyConfig) -> dict[str, Any]:
    """Everything that makes a latency figure comparable: processor(s), thread count, torch and CUDA, and
    the runtime that executes the network with its version (figures of two runtimes never share a key)."""
    info: dict[str, Any] = {
        "device": cfg.torch_device.type,
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "threads": cfg.threads,
        "torch": torch.__version__,
        "runtime": cfg.runtime or default_runtime(cfg.torch_device.type),
    }
    info["runtime_version"] = runtime_version(info["runtime"])
    if cfg.torch_device.type == "cuda":
        index = cfg.torch_device.index if cfg.torch_device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(gpu=props.name, cuda=torch.version.cuda, capability=f"{props.major}.{props.minor}")
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def device_fingerprint(cfg: LatencyConfig) -> Fingerprint:
    """The fingerprint of the device `cfg` measures on (the config must be validated)."""
    info = device_info(cfg)
    blob = json.dumps(info, sort_keys=True, separators=(",", ":"))
    return Fingerprint(hashlib.sha256(blob.encode()).hexdigest()[:16], info)
