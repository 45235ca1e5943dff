"""Parameter and MAC counts of a spec without allocating its weights (built on the meta device)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from blocks.cost import count_macs, count_params

__all__ = ["build_meta", "count_macs", "count_params", "spec_costs"]


def build_meta(spec: Mapping[str, Any]) -> nn.Module:
    """The spec's network in eval mode with shapes but no storage (milliseconds even for VGG's FC layers)."""
    from blocks import build_model

    try:
        with torch.device("meta"):
            return build_model(dict(spec)).eval()
    except (NotImplementedError, RuntimeError):
        # A block using an op without a meta kernel: build for real (slower, same shapes and counts).
        return build_model(dict(spec)).eval()


def spec_costs(spec: Mapping[str, Any]) -> dict[str, int]:
    """{"params", "macs"} of a spec at its own input size; MACs per image, counted by FlopCounterMode."""
    from nas.latency.measure import input_shape_of

    model = build_meta(spec)
    return {"params": count_params(model), "macs": count_macs(model, input_shape_of(spec))}
