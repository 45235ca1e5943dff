"""Plain conv-norm-act blocks (the VGG / AlexNet / LeNet layer)."""

from __future__ import annotations

from typing import Any, ClassVar

from blocks.layers import ConvNormAct
from blocks.registry import register_block


@register_block("conv")
class Conv(ConvNormAct):
    """One conv-norm-act.

    Params: `kernel` (int or pair), `groups` (AlexNet's two towers: 2), `dilation`, `padding` (int, pair,
    "same" = default, "valid" = 0 as in LeNet / AlexNet), `bias` (None: only when no norm directly follows).
    """

    example_params: ClassVar[dict[str, Any]] = {"kernel": 3}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        kernel: int | tuple[int, int] = 3,
        groups: int = 1,
        dilation: int = 1,
        padding: int | tuple[int, int] | str | None = None,
        bias: bool | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel,
            stride,
            act=act,
            norm=norm,
            groups=groups,
            dilation=dilation,
            padding=padding,
            bias=bias,
        )
