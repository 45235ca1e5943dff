"""The textbook networks a space holds: each one's parameters, and the check that they render to that network.

A space file lists its family's reference networks that are points of it (`references: {resnet20: {...}}`, the
space's parameter values of conf/model/resnet20.yaml). `to_params` is the map from such a network to the
space's parameters; `mismatch` says how the rendered point differs from the network (nothing, when it is the
same network: equal parameter count, MACs and every layer's type, weight shapes and output shape at the
given input size). A new study enqueues the references that also meet its constraints (nas.search.study).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import OmegaConf

from blocks.assemble import build_model
from blocks.cost import count_macs, count_params
from nas.config import CONF_DIR, to_plain
from nas.space import Space

__all__ = ["layers", "mismatch", "model_spec", "to_params"]


def to_params(space: Space, model: str) -> dict[str, Any]:
    """The space's parameter values of the reference network `model` (a conf/model name the space holds)."""
    if model not in space.references:
        held = ", ".join(space.references) or "none"
        raise KeyError(
            f"space {space.name!r} does not hold {model!r} as a point; the references it holds: {held}"
        )
    return dict(space.references[model])


def model_spec(model: str) -> dict[str, Any]:
    """conf/model/<model>.yaml as a plain spec (Hydra's YAML dialect, as `model=<name>` reads it)."""
    path = CONF_DIR / "model" / f"{model}.yaml"
    if not path.is_file():
        raise KeyError(f"no reference network {model!r} in {path.parent}")
    return to_plain(OmegaConf.load(path))


def sized(spec: Mapping[str, Any], *, channels: int, classes: int, size: int) -> dict[str, Any]:
    """`spec` with the data's input channels, classes and image size (as the engine sizes every spec)."""
    return {**dict(spec), "in_channels": channels, "num_classes": classes, "input_size": size}


def layers(spec: Mapping[str, Any]) -> list[tuple[str, tuple[tuple[int, ...], ...], tuple[int, ...]]]:
    """(module type, weight shapes, output shape) of every leaf module of the sized `spec`, in call order."""
    net = build_model(dict(spec)).eval()
    seen: list[tuple[str, tuple[tuple[int, ...], ...], tuple[int, ...]]] = []

    def hook(module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            shapes = tuple(tuple(p.shape) for p in module.parameters(recurse=False))
            seen.append((type(module).__name__, shapes, tuple(output.shape[1:])))

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(torch.zeros(1, spec["in_channels"], spec["input_size"], spec["input_size"]))
    finally:
        for h in handles:
            h.remove()
    return seen


def mismatch(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """How two sized specs differ as networks (empty: the same parameter count, MACs and layers)."""
    out = []
    na, nb = build_model(dict(a)), build_model(dict(b))
    shape = (a["in_channels"], a["input_size"], a["input_size"])
    for what, fa, fb in (("parameters", count_params(na), count_params(nb)),
                         ("MACs", count_macs(na, shape), count_macs(nb, shape))):  # fmt: skip
        if fa != fb:
            out.append(f"{what} {fa:,} vs {fb:,}")
    la, lb = layers(a), layers(b)
    if len(la) != len(lb):
        out.append(f"{len(la)} vs {len(lb)} layers")
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            out.append(f"layer {i}: {x} vs {y}")
            break
    return out
