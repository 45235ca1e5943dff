"""Training speed: each network's memory format (NCHW or channels_last) chosen by timing it, cached per machine.

Which layout trains a network faster depends on its widths and ops: on CPU, oneDNN's channels_last kernels
make pooling, batch norm and convolutions of odd widths several times faster on most of the search spaces'
networks, and slower on a few (README: Benchmarks, training throughput). So `trainer.channels_last: auto`
times a few forward + backward passes of a throw-away copy of the network in each layout, on a random batch
of the training shape, and trains the real one in the faster layout. The probe never touches the trained
network, its data or the global RNG state, so a run trains exactly what a run with that layout fixed
would. The choice is cached (in memory and in `<cache>/memory_format.json`, keyed by spec, batch shape,
threads, torch build and CPU), so ablation seeds, reruns and resumed searches probe a network only once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS_LAST_CHOICES = ("auto", "true", "false")
# Probe passes per layout: the first is warm-up (oneDNN builds its kernels on the first call of each shape),
# the median of the rest decides. 1 + 2 each is ~6 training steps' worth, a few % of a 1-epoch trial.
PROBE_WARMUP = 1
PROBE_TIMED = 2

# NCHW is kept only when it is clearly faster: channels_last won on every search-space network measured
# (README), and a probe on a busy machine can be noisy, while its choice is cached for good.
NCHW_MARGIN = 0.1

_decisions: dict[str, bool] = {}


def parse_channels_last(value: Any) -> bool | None:
    """`trainer.channels_last` as True / False, or None for "auto" (ValueError listing the choices)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(
        f"trainer.channels_last must be one of {', '.join(CHANNELS_LAST_CHOICES)}, got {value!r} "
        "(auto: the faster memory format per network, measured on CPU)"
    )


def cache_file() -> Path:
    """Where the measured choices live: next to the dataset cache (`$CNN_NAS_CACHE`, else ~/.cache/cnn-nas)."""
    from nas.data.download import cache_root

    return cache_root() / "memory_format.json"


def probe_key(spec: dict[str, Any], shape: tuple[int, ...]) -> str:
    """What the faster layout depends on: the network, the batch shape, threads, torch build and CPU."""
    machine = {
        "shape": list(shape),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": torch.backends.cpu.get_cpu_capability(),
    }
    text = json.dumps({"spec": spec, **machine}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_cache(path: Path) -> dict[str, bool]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, bool)} if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, value: bool) -> None:
    """Merge one choice into the cache file; a replace, so concurrent writers lose entries, never the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read_cache(path), key: value}
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only home: the choice is still kept for this process
        pass


def time_layouts(model: nn.Module, shape: tuple[int, ...], num_classes: int) -> dict[bool, float]:
    """Median seconds of one forward + backward pass of a copy of `model` per layout {channels_last: s}.

    Inputs and labels come from a private generator and the global RNG state is restored afterwards, so
    the probe changes nothing a training run draws later (dropout masks, stochastic pooling).
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen)
    y = torch.randint(0, num_classes, (shape[0],), generator=gen)
    times: dict[bool, list[float]] = {False: [], True: []}
    with torch.random.fork_rng(devices=[]):
        probes = {}
        for cl in (False, True):
            probe = copy.deepcopy(model).train()
            probes[cl] = probe.to(memory_format=torch.channels_last) if cl else probe
        # alternate the layouts so that machine noise hits both alike
        for i in range(PROBE_WARMUP + PROBE_TIMED):
            for cl in (False, True):
                inp = x.contiguous(memory_format=torch.channels_last) if cl else x
                start = time.perf_counter()
                F.cross_entropy(probes[cl](inp), y).backward()
                if i >= PROBE_WARMUP:
                    times[cl].append(time.perf_counter() - start)
    return {cl: statistics.median(t) for cl, t in times.items()}


def choose_channels_last(
    model: nn.Module, spec: dict[str, Any], shape: tuple[int, ...], *, use_cache: bool = True
) -> bool:
    """Whether `model` (built from `spec`) trains faster in channels_last at input `shape` (N, C, H, W) on CPU."""
    key = probe_key(spec, shape)
    path = cache_file()
    if use_cache:
        if key not in _decisions:
            cached = _read_cache(path).get(key)
            if cached is not None:
                _decisions[key] = cached
        if key in _decisions:
            return _decisions[key]
    times = time_layouts(model, shape, int(spec["num_classes"]))
    choice = times[False] * (1 + NCHW_MARGIN) > times[True]
    _decisions[key] = choice
    if use_cache:
        _write_cache(path, key, choice)
    return choice


def compile_model(model: nn.Module) -> nn.Module:
    """`torch.compile(model)` with Inductor's caches in `<cache>/inductor`, shared by every run of this user.

    Compiling fuses batch norm, activations and residual adds, but a cold compile costs minutes on 2 cores
    (seconds from a warm cache: ablation seeds, retraining), so it can pay only in long runs; its steady-state
    gain on CPU is not established yet (README: Benchmarks), hence opt-in.
    """
    from nas.data.download import cache_root

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
    return torch.compile(model)


def convert_optimizer_state(optimizer: torch.optim.Optimizer, memory_format: torch.memory_format) -> None:
    """Give the optimiser's per-parameter buffers (momentum, Adam moments) the parameters' memory format."""
    for p, state in optimizer.state.items():
        for k, v in state.items():
            if torch.is_tensor(v) and v.dim() == 4 and v.shape == p.shape:
                state[k] = v.contiguous(memory_format=memory_format)
