"""Plain conv-norm-act blocks (VGG / AlexNet / LeNet layers)."""

from __future__ import annotations

from blocks.layers import ConvNormAct
from blocks.registry import register_block


@register_block("conv")
class Conv(ConvNormAct):
    """One conv-norm-act; `kernel`, `groups`, `dilation`, `padding`, `bias` are parameters."""

    def __init__(self, in_channels, out_channels, stride=1, *, act="relu", norm="batchnorm", kernel=3,
                 groups=1, dilation=1, padding=None, bias=None):
        super().__init__(in_channels, out_channels, kernel, stride, act=act, norm=norm, groups=groups,
                         dilation=dilation, padding=padding, bias=bias)
