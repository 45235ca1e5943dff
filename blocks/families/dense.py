"""DenseNet: the dense block (every layer sees all earlier feature maps) and the compressing transition.

Layers are pre-activation (norm -> act -> conv, as in the paper and torchvision), so the spec's `norm` and
`act` are applied before each conv; the convs have no bias when a norm is used.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from blocks.common import channel_keeping_pool, norm_act
from blocks.layers import act_expansion
from blocks.registry import register_block


def preact_conv(in_channels: int, out_channels: int, kernel: int, *, act: str, norm: str) -> nn.Sequential:
    """norm -> act -> k x k conv ("same" padding); a maxout activation halves the channels the conv reads."""
    pieces = act_expansion(act)
    if in_channels % pieces:
        raise ValueError(f"activation {act!r} needs channels divisible by {pieces}, got {in_channels}")
    conv = nn.Conv2d(in_channels // pieces, out_channels, kernel, padding=kernel // 2, bias=norm == "none")
    return nn.Sequential(*norm_act(in_channels, act=act, norm=norm), conv)


class DenseLayer(nn.Module):
    """One dense layer: [norm-act-1x1 conv to bottleneck * growth] -> norm-act-3x3 conv to `growth` maps."""

    def __init__(
        self, in_channels: int, growth: int, bottleneck: int, dropout: float, *, act: str, norm: str
    ):
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        if bottleneck:
            layers.append(preact_conv(ch, bottleneck * growth, 1, act=act, norm=norm))
            ch = bottleneck * growth
        layers.append(preact_conv(ch, growth, 3, act=act, norm=norm))
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_block("dense_block")
class DenseBlock(nn.Module):
    """A DenseNet dense block: `layers` dense layers, each adding `growth` (k) maps to the concatenation.

    Params: `layers`, `growth` (k, 32 in DenseNet-121), `bottleneck` (the 1x1 conv's width in units of k: 4 in
    DenseNet-B / -BC, 0 for the plain DenseNet layer), `dropout` (after each layer), `out_norm` (a final
    norm-act on the output: DenseNet's norm5 after its last block). Output channels: in + layers * growth
    (`out_channels_for`). A stride > 1 average-pools the input first (dense blocks keep their grid;
    DenseNet downsamples in the transitions).
    """

    example_params: ClassVar[dict[str, Any]] = {"layers": 2, "growth": 4}
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        layers: int = 6,
        growth: int = 32,
        bottleneck: int = 4,
        dropout: float = 0.0,
        out_norm: bool = False,
    ) -> None:
        super().__init__()
        if layers < 1 or growth < 1 or bottleneck < 0:
            raise ValueError(
                f"dense_block needs layers >= 1, growth >= 1, bottleneck >= 0; got {layers} / {growth} / "
                f"{bottleneck}"
            )
        expected = self.out_channels_for(in_channels, layers=layers, growth=growth)
        if out_channels != expected:
            raise ValueError(
                f"dense_block: {in_channels} + {layers} layers x growth {growth} = {expected} channels, not "
                f"{out_channels}; omit `channels` in the spec entry or change layers / growth"
            )
        if out_norm and act_expansion(act) != 1:
            raise ValueError(f"dense_block out_norm with {act!r} would change the block's channel count")
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth, growth, bottleneck, dropout, act=act, norm=norm)
            for i in range(layers)
        )
        self.out_norm = norm_act(expected, act=act, norm=norm) if out_norm else nn.Identity()

    @classmethod
    def out_channels_for(cls, in_channels: int, *, layers: int = 6, growth: int = 32, **_: Any) -> int:
        return in_channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.pool(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return self.out_norm(torch.cat(features, dim=1))


@register_block("dense_transition")
class DenseTransition(nn.Sequential):
    """DenseNet transition: norm-act-1x1 conv to floor(compression * in) maps, then a 2x2 average pool.

    `compression` (theta; 0.5 in DenseNet-BC, 1 in plain DenseNet) sets the width when the spec gives no
    `channels` (an explicit `channels` wins). The pooling window is the stride (no pooling at stride 1);
    `pool` picks the pooling (avg as in the paper).
    """

    example_params: ClassVar[dict[str, Any]] = {"compression": 0.5}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        compression: float = 0.5,
        pool: str = "avg",
    ) -> None:
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"dense_transition compression must be in (0, 1], got {compression}")
        layers: list[nn.Module] = [preact_conv(in_channels, out_channels, 1, act=act, norm=norm)]
        if stride > 1:
            layers.append(
                channel_keeping_pool(pool, stride, stride, channels=out_channels, act=act, norm=norm)
            )
        super().__init__(*layers)

    @classmethod
    def out_channels_for(cls, in_channels: int, *, compression: float = 0.5, **_: Any) -> int:
        return max(1, math.floor(compression * in_channels))
