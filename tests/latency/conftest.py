"""Shared fixtures for the latency tests: small specs and fast timing settings."""

from __future__ import annotations

import pytest


def conv_spec(width: int = 16, *, input_size: int = 16, stages: int = 2, name: str = "stack") -> dict:
    """A plain conv stack: a stem conv and `stages` stride-1 convs of `width` channels, linear head."""
    return {
        "name": name,
        "in_channels": 3,
        "num_classes": 10,
        "input_size": input_size,
        "act": "relu",
        "norm": "batchnorm",
        "stem": [{"block": "conv", "channels": width}],
        "stages": [{"block": "conv", "channels": width} for _ in range(stages)],
        "head": {"type": "linear", "pool": "avg"},
    }


@pytest.fixture
def fast_cfg(tmp_path) -> dict:
    """Latency settings that keep a measurement to a fraction of a second, with a private table file."""
    return {
        "runtime": "eager",  # the tests of timing itself; tests/latency/test_runtimes.py covers the others
        "threads": 1,
        "warmup": 2,
        "warmup_s": 0.0,
        "min_repeats": 5,
        "max_repeats": 30,
        "rel_ci": 0.05,
        "max_time_s": 0.2,
        "cache": str(tmp_path / "latency.sqlite"),
    }
