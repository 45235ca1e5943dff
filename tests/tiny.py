"""The tiny search space the search, scale-out and tracking tests share: a two-stage conv net."""

from __future__ import annotations

from typing import Any


def tiny_space(name: str = "tiny", *, max_width: int = 8, description: str = "a two-stage conv net for tests"
               ) -> dict[str, Any]:  # fmt: skip
    """A fresh space dict: stem conv 4, two strided conv stages of width 4..`max_width` (step 4) each,
    relu / silu, avg / max head pooling: 2 x (max_width / 4)^2 x 2 architectures."""
    return {
        "name": name,
        "family": ["plain"],
        "description": description,
        "stages": 2,
        "params": {
            "act": {"choices": ["relu", "silu"]},
            "width": {"type": "int", "low": 4, "high": max_width, "step": 4, "per_stage": True},
            "pool": {"choices": ["avg", "max"]},
        },
        "spec": {
            "name": name,
            "act": "$act",
            "norm": "batchnorm",
            "stem": [{"block": "conv", "channels": 4}],
            "stages": [{"for_each_stage": {"block": "conv", "channels": "$width", "stride": 2}}],
            "head": {"type": "linear", "pool": "$pool"},
        },
    }
