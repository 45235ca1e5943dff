"""What the search, scale-out and tracking tests share: the tiny search space (a two-stage conv net) and the
options of a fast end-to-end search."""

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


# Search options every tiny end-to-end search shares: random sampler, one epoch on all the (tiny) data, a
# latency measurement cut to milliseconds, and no baselines / HTML / progress bar. One epoch on 96 images leaves
# the tiny networks at chance on ~10 validation images: no chance test, or every front would be empty.
FAST_SEARCH = [
    "sampler=random",
    "workers=1",  # one process: a test of several workers says so
    "chance_alpha=null",
    "fidelity.fraction=1.0",
    "fidelity.epochs=1",
    "latency.warmup=1",
    "latency.warmup_s=0.0",
    "latency.min_repeats=3",
    "latency.max_repeats=5",
    "latency.max_time_s=0.05",
    "latency.min_sample_ms=0.0",
    "baselines.enabled=false",
    "html=false",
    "onnx=false",  # ~0.3 s a front network; the export tests ask for it
    "progress=false",
]
