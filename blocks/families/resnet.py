"""Residual blocks: ResNet basic / bottleneck, ResNeXt, pre-activation and wide variants, squeeze-excitation.

Layouts follow torchvision ("ResNet v1.5": the stride sits on the 3x3 of a bottleneck), so reference
networks assembled from these blocks match torchvision's parameter counts and MACs exactly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from blocks.common import not_inplace, pre_activation, projection, squeeze_excite
from blocks.layers import ConvNormAct, act_expansion, create_act
from blocks.registry import register_block


def plain_conv(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, *, norm: str, groups: int = 1
) -> nn.Module:
    """A bare conv (no norm, no act) for pre-activation blocks; biased only when no norm follows."""
    return ConvNormAct(
        in_channels, out_channels, kernel, stride, act="none", norm="none", groups=groups, bias=norm == "none"
    )


def bottleneck_width(
    out_channels: int,
    *,
    expansion: float,
    groups: int,
    base_width: int,
    group_width: int | None,
    widen_factor: float,
) -> tuple[int, int]:
    """(inner width, groups) of a bottleneck; torchvision: int(planes * base_width / 64 * widen) * groups.

    `planes = out_channels / expansion`. With `group_width` (pycls style) the inner width is rounded to a
    multiple of it and the group count follows from it instead.
    """
    if expansion <= 0:
        raise ValueError(f"bottleneck expansion must be > 0, got {expansion}")
    if widen_factor <= 0:
        raise ValueError(f"widen_factor must be > 0, got {widen_factor}")
    if groups < 1:
        raise ValueError(f"groups (cardinality) must be >= 1, got {groups}")
    planes = out_channels / expansion
    if group_width is not None:
        if groups != 1:
            raise ValueError("give either groups (cardinality) or group_width, not both")
        if group_width < 1:
            raise ValueError(f"group_width must be >= 1, got {group_width}")
        width = max(group_width, int(round(planes * widen_factor / group_width)) * group_width)
        return width, width // group_width
    # At least one channel per group, so narrow search candidates still build.
    per_group = max(1, int(planes * base_width / 64.0 * widen_factor))
    return per_group * groups, groups


@register_block("basic")
class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 (stride) conv-norm-act, 3x3 conv-norm, + shortcut, act.

    Args:
        se_ratio: squeeze-excitation reduction (SENet uses 1/16); 0 = off.
        dropout: dropout between the two convs (Wide ResNet); 0 = off.
    Wide ResNets widen the block through its `channels`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        se_ratio: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        # A maxout after the sum halves channels, so the sum carries pieces * out channels.
        summed = out_channels * act_expansion(act)
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, stride, act=act, norm=norm)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = ConvNormAct(out_channels, summed, 3, act="none", norm=norm)
        self.se = squeeze_excite(summed, se_ratio, act)
        self.shortcut = projection(in_channels, summed, stride, norm)
        self.act = create_act(act, summed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv2(self.drop(self.conv1(x))))
        return self.act(out + self.shortcut(x))


@register_block("bottleneck")
class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3 (stride, groups), 1x1 expand, + shortcut, act.

    Args:
        expansion: bottleneck ratio, out_channels / planes (4 in ResNet-50).
        groups: cardinality of the grouped 3x3 (ResNeXt); 1 = plain ResNet.
        base_width: channels per group per 64 planes (torchvision's width_per_group; ResNeXt 32x4d: 4).
        group_width: alternative to base_width: fixed channels per group (pycls / RegNet style).
        widen_factor: multiplies the inner width (Wide ResNet-50-2: 2).
        se_ratio: squeeze-excitation reduction (SENet uses 1/16); 0 = off.
    """

    example_params: ClassVar[dict] = {"groups": 2, "base_width": 64, "se_ratio": 0.25}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        expansion: float = 4.0,
        groups: int = 1,
        base_width: int = 64,
        group_width: int | None = None,
        widen_factor: float = 1.0,
        se_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        width, groups = bottleneck_width(
            out_channels,
            expansion=expansion,
            groups=groups,
            base_width=base_width,
            group_width=group_width,
            widen_factor=widen_factor,
        )
        summed = out_channels * act_expansion(act)
        self.width, self.groups = width, groups
        self.conv1 = ConvNormAct(in_channels, width, 1, act=act, norm=norm)
        self.conv2 = ConvNormAct(width, width, 3, stride, act=act, norm=norm, groups=groups)
        self.conv3 = ConvNormAct(width, summed, 1, act="none", norm=norm)
        self.se = squeeze_excite(summed, se_ratio, act)
        self.shortcut = projection(in_channels, summed, stride, norm)
        self.act = create_act(act, summed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv3(self.conv2(self.conv1(x))))
        return self.act(out + self.shortcut(x))


@register_block("resnext")
class ResNeXtBlock(Bottleneck):
    """ResNeXt bottleneck (Xie et al.): split-transform-merge as a grouped 3x3; `cardinality` x `base_width`d.

    Defaults give ResNeXt-50's 32x4d block; every Bottleneck parameter except `groups` also applies.
    """

    example_params: ClassVar[dict] = {"cardinality": 4, "base_width": 16}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        cardinality: int = 32,
        base_width: int = 4,
        expansion: float = 4.0,
        widen_factor: float = 1.0,
        se_ratio: float = 0.0,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            stride,
            act=act,
            norm=norm,
            expansion=expansion,
            groups=cardinality,
            base_width=base_width,
            widen_factor=widen_factor,
            se_ratio=se_ratio,
        )


class _PreActBase(nn.Module):
    """Shared forward of pre-activation blocks: the projection shortcut reads the pre-activated input."""

    pre1: nn.Module
    body: nn.Module
    shortcut: nn.Module
    project: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre1(x)
        shortcut = self.shortcut(pre) if self.project else x
        return self.body(pre) + shortcut


@register_block("preact_basic")
class PreActBasic(_PreActBase):
    """Pre-activation basic block (He et al. 2016, identity mappings): norm-act-3x3, norm-act-3x3, + shortcut.

    No activation after the sum; a network of these ends with a `preact_out` entry. Same parameters as
    `basic`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        se_ratio: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        # Not in place: with norm "none" or "*_after" the activation would overwrite the identity input.
        self.pre1, c_in = pre_activation(in_channels, act, norm)
        not_inplace(self.pre1)
        pre2, c_mid = pre_activation(out_channels, act, norm)
        self.body = nn.Sequential(
            plain_conv(c_in, out_channels, 3, stride, norm=norm),
            pre2,
            nn.Dropout(dropout) if dropout else nn.Identity(),
            plain_conv(c_mid, out_channels, 3, norm=norm),
            squeeze_excite(out_channels, se_ratio, act),
        )
        self.project = in_channels != out_channels or stride != 1
        self.shortcut = (
            plain_conv(c_in, out_channels, 1, stride, norm=norm) if self.project else nn.Identity()
        )


@register_block("preact_bottleneck")
class PreActBottleneck(_PreActBase):
    """Pre-activation bottleneck: norm-act-1x1, norm-act-3x3 (stride, groups), norm-act-1x1, + shortcut.

    Same parameters as `bottleneck`.
    """

    example_params: ClassVar[dict] = {"expansion": 2, "groups": 2}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        expansion: float = 4.0,
        groups: int = 1,
        base_width: int = 64,
        group_width: int | None = None,
        widen_factor: float = 1.0,
        se_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        width, groups = bottleneck_width(
            out_channels,
            expansion=expansion,
            groups=groups,
            base_width=base_width,
            group_width=group_width,
            widen_factor=widen_factor,
        )
        self.width, self.groups = width, groups
        self.pre1, c_in = pre_activation(in_channels, act, norm)
        not_inplace(self.pre1)
        pre2, c2 = pre_activation(width, act, norm)
        pre3, c3 = pre_activation(width, act, norm)
        self.body = nn.Sequential(
            plain_conv(c_in, width, 1, norm=norm),
            pre2,
            plain_conv(c2, width, 3, stride, norm=norm, groups=groups),
            pre3,
            plain_conv(c3, out_channels, 1, norm=norm),
            squeeze_excite(out_channels, se_ratio, act),
        )
        self.project = in_channels != out_channels or stride != 1
        self.shortcut = (
            plain_conv(c_in, out_channels, 1, stride, norm=norm) if self.project else nn.Identity()
        )


@register_block("preact_out")
class PreActOut(nn.Module):
    """The final norm-act of a pre-activation network, whose blocks end in a bare sum.

    Keeps the channel count when the entry gives none (the usual case); other channel counts or a stride
    add a 1x1 conv-norm-act.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
    ) -> None:
        super().__init__()
        pre, c = pre_activation(in_channels, act, norm)
        if c == out_channels and stride == 1:
            self.body = pre
        else:
            self.body = nn.Sequential(pre, ConvNormAct(c, out_channels, 1, stride, act=act, norm=norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
