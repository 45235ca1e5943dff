"""Model cost without training: parameters, and multiply-accumulates (MACs) counted on a real forward pass.

`count_macs` runs the model once under PyTorch's FlopCounterMode, which counts the matrix work of
convolutions and matrix products (2 FLOPs per MAC: we report MACs); elementwise ops, norms, activations and
pooling are not counted, as in torchvision's and fvcore's figures. On the "meta" device the pass does no
arithmetic (`nas.latency.costs.spec_costs` counts a spec that way, without allocating its weights): the one
MAC counter of the project.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Shape = Sequence[int]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); `trainable_only` skips frozen ones."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def default_input_shape(model: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) of the input a spec-built Network expects (from its spec); ValueError for other models."""
    spec = getattr(model, "spec", None)
    if not isinstance(spec, dict):
        raise ValueError(f"{type(model).__name__} has no spec: pass input_shape=(channels, height, width)")
    size = int(spec.get("input_size", 32))
    return int(spec.get("in_channels", 3)), size, size


def example_input(model: nn.Module, input_shape: Shape | None = None) -> torch.Tensor:
    """Zeros of `input_shape` ((C, H, W) -> batch 1, or (N, C, H, W)) on the model's device and dtype."""
    shape = tuple(int(s) for s in (default_input_shape(model) if input_shape is None else input_shape))
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            f"input_shape must be (C, H, W) or (N, C, H, W) with positive sizes, got {input_shape}"
        )
    ref = next(iter(model.parameters()), None)
    if ref is None:
        ref = next(iter(model.buffers()), torch.zeros(()))
    dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
    return torch.zeros(shape, device=ref.device, dtype=dtype)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode without gradients (deterministic: no dropout, BN statistics untouched)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was)


def _flop_counts(model: nn.Module, input_shape: Shape | None) -> FlopCounterMode:
    x = example_input(model, input_shape)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), counter:
        model(x)
    return counter


def count_macs(model: nn.Module, input_shape: Shape | None = None) -> int:
    """MACs of one forward pass on `input_shape` ((C, H, W): one image), counted by FlopCounterMode.

    `input_shape` defaults to the spec's input for a spec-built Network.
    """
    return _flop_counts(model, input_shape).get_total_flops() // 2


def count_macs_per_module(model: nn.Module, input_shape: Shape | None = None) -> dict[str, int]:
    """Counted MACs per module that did matrix work, keyed as in `model.named_modules()` ("" = the model).

    Each module's count includes its submodules'.
    """
    counts = _flop_counts(model, input_shape).get_flop_counts()
    # FlopCounterMode names the root module by its class and submodules "<Class>.<path>"; "Global" is the
    # total (the same as the root's when the model is the only thing run).
    root = type(model).__name__
    out: dict[str, int] = {}
    for key, per_op in counts.items():
        if key == "Global":
            continue
        if key == root:
            name = ""
        elif key.startswith(root + "."):
            name = key[len(root) + 1 :]
        else:  # not below the model (cannot happen for a plain forward); keep it visible
            name = key
        out[name] = out.get(name, 0) + sum(per_op.values()) // 2
    return out
