"""The latency device config (`conf/latency/*.yaml`): validated once, with the valid choices on bad input."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.latency.runtimes import check_runtime, default_runtime

MODES = ("measured", "predicted", "macs", "params")
DEVICES = ("cpu", "cuda", "cuda:<index>")


def default_cache_path() -> Path:
    """Where the per-layer latency table lives unless the config names a file: the user's cache folder."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cnn-nas" / "latency.sqlite"


@dataclass(frozen=True)
class LatencyConfig:
    """How latency is obtained: on which device, in which mode, and how long to time.

    The timing loop warms up (`warmup` calls and at least `warmup_s` seconds), then takes samples until
    the distribution-free 95 % confidence interval of the median is narrower than `rel_ci` of the median
    (after at least `min_repeats` samples), or `max_repeats` samples, or `max_time_s` seconds of timing.
    A sample is one call, or the mean of several when one call is shorter than `min_sample_ms` (timer and
    Python overhead would otherwise dominate tiny layers). `runtime` is what executes the network
    (`nas.latency.runtimes.RUNTIMES`); None resolves to the device's deployment runtime (ONNX Runtime on the
    CPU, eager on CUDA).
    """

    device: str = "cpu"
    mode: str = "measured"
    runtime: str | None = None  # eager | torchscript | onnxruntime | compiled; None = default_runtime(device)
    threads: int | None = 1  # intra-op threads; None = what torch uses now (resolved by `resolved`)
    batch_size: int = 1
    warmup: int = 3
    warmup_s: float = 0.05
    min_repeats: int = 10
    max_repeats: int = 200
    rel_ci: float = 0.02
    max_time_s: float = 2.0
    min_sample_ms: float = 0.5
    cache: str | None = None  # SQLite file of the per-layer table; None = default_cache_path()

    @classmethod
    def from_cfg(
        cls, cfg: Mapping[str, Any] | LatencyConfig | None = None, **overrides: Any
    ) -> LatencyConfig:
        """Validate a config mapping (plain dict or Hydra DictConfig); unknown keys are an error."""
        if isinstance(cfg, LatencyConfig):
            data = dataclasses.asdict(cfg)
        else:
            data = _plain(cfg)
        data.update(overrides)
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown latency config keys {unknown}; valid keys: {', '.join(valid)}")
        return cls(**data).validated()

    def validated(self) -> LatencyConfig:
        """This config with `threads` resolved, or a ValueError saying what is wrong and what is valid."""
        if self.mode not in MODES:
            raise ValueError(f"unknown latency mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        _check_device(self.device)
        runtime = default_runtime(self.torch_device.type) if self.runtime is None else self.runtime
        check_runtime(runtime, self.torch_device.type)
        threads = torch.get_num_threads() if self.threads is None else self.threads
        _check_int("threads", threads, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("warmup", self.warmup, 0)
        _check_int("min_repeats", self.min_repeats, 3)
        _check_int("max_repeats", self.max_repeats, self.min_repeats)
        if not 0 < float(self.rel_ci) < 1:
            raise ValueError(f"latency rel_ci must be in (0, 1) (e.g. 0.02 for 2 %), got {self.rel_ci!r}")
        if not float(self.max_time_s) > 0:
            raise ValueError(f"latency max_time_s must be > 0 seconds, got {self.max_time_s!r}")
        for name in ("warmup_s", "min_sample_ms"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"latency {name} must be >= 0, got {getattr(self, name)!r}")
        return dataclasses.replace(self, threads=int(threads), runtime=runtime)

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache).expanduser() if self.cache else default_cache_path()


def _plain(cfg: Any) -> dict[str, Any]:
    """A plain dict from None, a mapping or a Hydra DictConfig (interpolations resolved)."""
    if cfg is None:
        return {}
    try:  # omegaconf ships with hydra-core; a DictConfig is converted, not read key by key
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ImportError:
        pass
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ValueError(f"latency config must be a mapping, got {type(cfg).__name__}")


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"latency {name} must be an integer >= {low}, got {value!r}")


def _check_device(device: Any) -> None:
    """Accept cpu / cuda / cuda:N; cuda only where a GPU is actually usable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown latency device {device!r}; valid devices: {', '.join(DEVICES)}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"latency device {device!r} was requested but no CUDA GPU is available (torch "
                f"{torch.__version__}, built with CUDA {torch.version.cuda}); use latency=cpu, or run on a "
                "machine with a GPU and a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"latency device {device!r}: only {count} CUDA device(s), valid: cuda:0..{count - 1}"
            )
