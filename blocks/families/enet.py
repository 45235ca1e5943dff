"""ENet (Paszke et al. 2016): the initial block and the bottleneck (regular, dilated, asymmetric, strided).

ENet's encoder is built for speed: it downsamples early and hard, keeps the bottlenecks narrow (a quarter of
the output width inside), and widens the receptive field with dilated and asymmetric (n x 1 then 1 x n)
convs instead of depth. PReLU is its default activation (`act: prelu` in the spec).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from blocks.common import norm_act
from blocks.layers import ConvNormAct, act_expansion, create_act
from blocks.registry import register_block


@register_block("enet_initial")
class ENetInitial(nn.Module):
    """ENet's initial block: a 3x3 strided conv (out - in maps) beside a max pool (the in maps), concatenated,
    then norm and act. At stride s the pool window is s x s (ceil mode, so both halves agree on odd sizes;
    the paper's 2x2 / 2); at stride 1 it is 3x3 / 1 padded. Needs out_channels > in_channels (with maxout,
    the concatenation has pieces x out channels).
    """

    example_channels: ClassVar[tuple[int, int]] = (3, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "prelu",
        norm: str = "batchnorm",
    ) -> None:
        super().__init__()
        if out_channels <= in_channels:
            raise ValueError(
                f"enet_initial concatenates a conv with the pooled input, so it needs more output channels "
                "than "
                f"input channels (got {in_channels} -> {out_channels}); ENet uses 3 -> 16"
            )
        cat = out_channels * act_expansion(act)
        self.conv = nn.Conv2d(in_channels, cat - in_channels, 3, stride, 1, bias=norm == "none")
        self.pool = nn.MaxPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.MaxPool2d(3, 1, 1)
        self.norm_act = norm_act(cat, act=act, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_act(torch.cat([self.conv(x), self.pool(x)], dim=1))


@register_block("enet_bottleneck")
class ENetBottleneck(nn.Module):
    """ENet's bottleneck: projection -> main conv -> 1x1 expansion -> spatial dropout, + shortcut, act.

    Params: `ratio` (4: the inside width is out / ratio), `kernel` (3), `dilation` (1; 2-16 for ENet's dilated
    bottlenecks), `asymmetric` (n > 0: an n x 1 then 1 x n conv instead of the square one; ENet uses 5),
    `dropout` (spatial dropout probability: 0.01 in stage 1, 0.1 later).
    With a stride s the bottleneck downsamples: the projection is an s x s / s conv and the shortcut an s x s
    max pool. Extra output channels on the shortcut are zero-padded (ENet's rule); fewer (not in ENet) take a
    1x1 conv + norm. The expansion has a norm but no activation; the activation follows the sum (with
    maxout, the sum has pieces x out channels).
    """

    example_params: ClassVar[dict[str, Any]] = {"dilation": 2}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "prelu",
        norm: str = "batchnorm",
        ratio: int = 4,
        kernel: int = 3,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if ratio < 1 or asymmetric < 0 or dilation < 1:
            raise ValueError(
                f"enet_bottleneck needs ratio >= 1, dilation >= 1, asymmetric >= 0; got {ratio}/{dilation}/"
                f"{asymmetric}"
            )
        summed = out_channels * act_expansion(act)
        inside = max(1, out_channels // ratio)
        kw = {"act": act, "norm": norm}
        reduce = ConvNormAct(in_channels, inside, stride if stride > 1 else 1, stride, padding=0, **kw)
        if asymmetric:
            # ENet's asymmetric conv: n x 1 without norm / act, then 1 x n with them.
            main = nn.Sequential(
                ConvNormAct(inside, inside, (asymmetric, 1), act="none", norm="none", bias=False),
                ConvNormAct(inside, inside, (1, asymmetric), **kw),
            )
        else:
            main = ConvNormAct(inside, inside, kernel, dilation=dilation, **kw)
        expand = ConvNormAct(inside, summed, 1, act="none", norm=norm)
        self.ext = nn.Sequential(reduce, main, expand, nn.Dropout2d(dropout))
        self.pool = nn.MaxPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.pad = max(0, summed - in_channels)
        self.project: nn.Module = nn.Identity()
        if summed < in_channels:
            self.project = ConvNormAct(in_channels, summed, 1, act="none", norm=norm)
        self.act = create_act(act, summed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.project(self.pool(x))
        if self.pad:
            main = F.pad(main, (0, 0, 0, 0, 0, self.pad))
        return self.act(main + self.ext(x))
