"""Depthwise-separable blocks: MobileNet v1 separable conv, MobileNet v2 inverted residual, Xception block.

MobileNet's width multiplier is the spec's `width_mult` (applied by the assembler to every `channels`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from blocks.common import not_inplace, pre_activation, projection, squeeze_excite
from blocks.layers import ConvNormAct
from blocks.registry import register_block

DOWNSAMPLE = ("pool", "conv")


def depthwise(
    channels: int,
    kernel: int,
    stride: int = 1,
    *,
    act: str,
    norm: str,
    dilation: int = 1,
    bias: bool | None = None,
) -> ConvNormAct:
    """A k x k depthwise conv-norm-act (one group per channel)."""
    return ConvNormAct(
        channels, channels, kernel, stride, act=act, norm=norm, groups=channels, dilation=dilation, bias=bias
    )


def bare_depthwise(channels: int, kernel: int, stride: int = 1, dilation: int = 1) -> ConvNormAct:
    """A k x k depthwise conv without norm, act or bias (Xception's SeparableConv2D)."""
    return depthwise(channels, kernel, stride, act="none", norm="none", dilation=dilation, bias=False)


@register_block("separable")
class SeparableConv(nn.Sequential):
    """Depthwise kxk conv (stride) then pointwise 1x1 conv (Howard et al., MobileNet v1).

    Args:
        kernel: depthwise kernel size.
        dilation: depthwise dilation.
        dw_norm_act: norm + act after the depthwise conv, as in MobileNet (True), or straight into the
            pointwise conv, as in Xception's SeparableConv2D (False).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        kernel: int = 3,
        dilation: int = 1,
        dw_norm_act: bool = True,
    ) -> None:
        if dw_norm_act:
            dw = depthwise(in_channels, kernel, stride, act=act, norm=norm, dilation=dilation)
        else:
            dw = bare_depthwise(in_channels, kernel, stride, dilation)
        super().__init__(dw, ConvNormAct(in_channels, out_channels, 1, act=act, norm=norm))
        self.out_channels = out_channels


@register_block("inverted_residual")
class InvertedResidual(nn.Module):
    """MobileNet v2 block (Sandler et al.): 1x1 expand, depthwise kxk (stride), linear 1x1 project.

    The projection has no activation (linear bottleneck); the input is added back when stride is 1
    and in == out channels.

    Args:
        expand_ratio: inner width / input width (6 in MobileNet v2; 1 skips the expansion conv).
        kernel: depthwise kernel size.
        se_ratio: squeeze-excitation on the expanded features, relative to them; 0 = off.
        residual: allow the identity shortcut where shapes match.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        expand_ratio: float = 6.0,
        kernel: int = 3,
        se_ratio: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if expand_ratio <= 0:
            raise ValueError(f"expand_ratio must be > 0, got {expand_ratio}")
        hidden = int(round(in_channels * expand_ratio))
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvNormAct(in_channels, hidden, 1, act=act, norm=norm))
        layers.append(depthwise(hidden, kernel, stride, act=act, norm=norm))
        se = squeeze_excite(hidden, se_ratio, act)
        if not isinstance(se, nn.Identity):
            layers.append(se)
        layers.append(ConvNormAct(hidden, out_channels, 1, act="none", norm=norm))
        self.body = nn.Sequential(*layers)
        self.use_residual = residual and stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.use_residual else out


class _SepConvNorm(nn.Sequential):
    """Xception's unit: depthwise kxk, pointwise 1x1 (no norm between), norm, then `act` ("none": linear)."""

    def __init__(
        self, in_channels: int, out_channels: int, *, act: str, norm: str, kernel: int, stride: int = 1
    ):
        super().__init__(
            bare_depthwise(in_channels, kernel, stride),
            ConvNormAct(in_channels, out_channels, 1, act=act, norm=norm),
        )


@register_block("xception")
class XceptionBlock(nn.Module):
    """Xception block (Chollet): `reps` separable convs in a residual block with a strided 1x1 projection.

    Entry flow: `reps: 2` with stride 2 (the first block after the stem with `act_first: false`); middle
    flow: `reps: 3`, stride 1; exit flow: `reps: 2, grow_first: false`, stride 2.

    Args:
        reps: number of separable convs.
        act_first: an activation before the first separable conv (False where the input just had one).
        grow_first: the first conv goes to out_channels (True) or the last one does (False).
        downsample: "pool" (3x3/2 max pool after the convs, as in the paper) or "conv" (stride on the
            last separable conv) when stride > 1.
        kernel: depthwise kernel size.
        residual: add the (projected) input; False gives a plain stack of separable convs.
    """

    example_params: ClassVar[dict] = {"reps": 2, "grow_first": False}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        reps: int = 3,
        act_first: bool = True,
        grow_first: bool = True,
        downsample: str = "pool",
        kernel: int = 3,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if reps < 1:
            raise ValueError(f"xception reps must be >= 1, got {reps}")
        if downsample not in DOWNSAMPLE:
            raise ValueError(f"unknown xception downsample {downsample!r}; valid: {', '.join(DOWNSAMPLE)}")
        if grow_first:
            widths = [in_channels] + [out_channels] * reps
        else:
            widths = [in_channels] * reps + [out_channels]
        layers: list[nn.Module] = []
        c_in = in_channels
        if act_first:
            # Not in place: the shortcut still needs the block's input.
            pre, c_in = pre_activation(in_channels, act, "none")
            layers.append(not_inplace(pre))
        for i in range(reps):
            last = i == reps - 1
            conv_stride = stride if (last and downsample == "conv") else 1
            layers.append(
                _SepConvNorm(
                    c_in if i == 0 else widths[i],
                    widths[i + 1],
                    act="none" if last else act,
                    norm=norm,
                    kernel=kernel,
                    stride=conv_stride,
                )
            )
        if stride > 1 and downsample == "pool":
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.body = nn.Sequential(*layers)
        self.shortcut = projection(in_channels, out_channels, stride, norm) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)
