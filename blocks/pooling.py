"""Pooling layers by name, and the `pool` block."""

from __future__ import annotations

from torch import nn

from blocks.registry import Registry, register_block

POOLS = Registry("pooling")
POOLS.register("max")(lambda k, s, p, ceil: nn.MaxPool2d(k, s, p, ceil_mode=ceil))
POOLS.register("avg")(lambda k, s, p, ceil: nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=False))


def create_pool2d(kind: str, kernel: int = 2, stride: int | None = None, padding: int = 0, ceil: bool = False):
    """Pooling module by name."""
    return POOLS.get(kind)(kernel, kernel if stride is None else stride, padding, ceil)


@register_block("pool")
class Pool(nn.Module):
    """A pooling layer as a block; `type` picks the pooling, the window is `kernel` / `stride` / `padding`."""

    def __init__(self, in_channels, out_channels, stride=2, *, act="relu", norm="batchnorm", type="max",
                 kernel=None, padding=0, ceil=False):
        super().__init__()
        if out_channels != in_channels:
            raise ValueError(f"pool keeps channels: in {in_channels} != out {out_channels}")
        self.pool = create_pool2d(type, stride if kernel is None else kernel, stride, padding, ceil)

    def forward(self, x):
        return self.pool(x)
