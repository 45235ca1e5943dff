"""Classic plain-network blocks: LeNet's conv + subsampling, VGG's 3x3 stacks, NiN's mlpconv.

AlexNet / CaffeNet / OverFeat layers need no block of their own: they are the `conv` block with a large
`kernel`, a `stride`, `padding: valid` and `groups: 2` (CaffeNet's two towers), followed by `pool` entries
with overlapping 3x3 / 2 windows (`ceil: true` reproduces Caffe's rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from blocks.common import channel_keeping_pool, norm_act
from blocks.layers import ConvNormAct, act_expansion, create_act, norm_after_act, resolve_padding
from blocks.registry import register_block


class SparseConv2d(nn.Module):
    """A conv where output map i reads only the input maps `connections[i]` (LeNet-5's C3 table).

    Only the connected weights exist, so the parameter count is the paper's (C3: 1,516 instead of 2,416).
    """

    def __init__(
        self,
        in_channels: int,
        connections: Sequence[Sequence[int]],
        kernel: int,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        maps_per_output: int = 1,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for i, inputs in enumerate(connections):
            idx = list(inputs)
            if not idx or len(set(idx)) != len(idx) or any(not 0 <= j < in_channels for j in idx):
                raise ValueError(
                    f"connections[{i}] = {inputs!r}: needs distinct input map indices in [0, {in_channels})"
                )
            self.register_buffer(f"idx{i}", torch.tensor(idx, dtype=torch.long), persistent=False)
            self.convs.append(nn.Conv2d(len(idx), maps_per_output, kernel, stride, padding, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [conv(x.index_select(1, getattr(self, f"idx{i}"))) for i, conv in enumerate(self.convs)], 1
        )


class TrainableSubsampling(nn.Module):
    """LeNet-5's S layer: the s x s window average times a learned per-map coefficient, plus a bias."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.stride) * self.weight + self.bias


@register_block("subsample")
class Subsample(nn.Module):
    """LeNet's C + S layer pair: a k x k conv -> act, then s x s average subsampling (s = the stride).

    Params: `kernel` (5), `padding` ("valid" as in LeNet; "same" keeps the size), `trainable` (LeNet-5's
    subsampling: average x learned coefficient + learned bias per map, then the activation again, except a
    channel-reducing one like maxout, whose pieces the C layer already used; False: plain average pooling),
    `connections` (LeNet-5's C3 connection table: for each output map, the input maps it reads; None = fully
    connected). A stride of 1 is the conv alone. `norm` sits between conv and act.
    """

    example_params: ClassVar[dict[str, Any]] = {"kernel": 3, "padding": "same", "trainable": True}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "scaled_tanh",
        norm: str = "none",
        kernel: int = 5,
        padding: int | str = "valid",
        trainable: bool = False,
        connections: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"subsample stride must be >= 1, got {stride}")
        pad = resolve_padding(padding, kernel)
        if connections is None:
            self.conv = ConvNormAct(in_channels, out_channels, kernel, 1, act=act, norm=norm, padding=pad)
        else:
            if len(connections) != out_channels:
                raise ValueError(
                    f"subsample connections list {len(connections)} output maps, the block has {out_channels}"
                )
            bias = norm == "none" or norm_after_act(norm)
            sparse = SparseConv2d(in_channels, connections, kernel, 1, pad, bias, act_expansion(act))
            self.conv = nn.Sequential(
                sparse, *norm_act(out_channels * act_expansion(act), act=act, norm=norm)
            )
        self.pool: nn.Module = nn.Identity()
        if stride > 1 and trainable:
            squash = create_act(act, out_channels) if act_expansion(act) == 1 else nn.Identity()
            self.pool = nn.Sequential(TrainableSubsampling(out_channels, stride), squash)
        elif stride > 1:
            self.pool = nn.AvgPool2d(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


@register_block("vgg")
class VGGStack(nn.Sequential):
    """A VGG stage: `convs` k x k conv-norm-acts, then (stride > 1) a `pool` window of size and stride s.

    Two 3x3 convs see a 5x5 field and three a 7x7 one, with fewer weights and more non-linearities than one
    large kernel. `pool`: any channel-keeping pooling name (max, as VGG), or "none" to put the stride on the
    first conv instead. `kernel` (3) and `dilation` are exposed for ablations.
    """

    example_params: ClassVar[dict[str, Any]] = {"convs": 2}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        convs: int = 2,
        kernel: int = 3,
        dilation: int = 1,
        pool: str = "max",
        ceil: bool = False,
    ) -> None:
        if convs < 1:
            raise ValueError(f"vgg needs at least one conv, got convs={convs}")
        conv_stride = stride if pool == "none" else 1
        layers: list[nn.Module] = [
            ConvNormAct(
                in_channels if i == 0 else out_channels,
                out_channels,
                kernel,
                conv_stride if i == 0 else 1,
                act=act,
                norm=norm,
                dilation=dilation,
            )
            for i in range(convs)
        ]
        if stride > 1 and pool != "none":
            layers.append(
                channel_keeping_pool(pool, stride, stride, 0, ceil, channels=out_channels, act=act, norm=norm)
            )
        super().__init__(*layers)


@register_block("mlpconv")
class MLPConv(nn.Sequential):
    """NiN's mlpconv: a k x k conv then `mlp` 1x1 convs (a small MLP slid over the map), all conv-norm-act.

    The k x k conv takes the stride and `padding` ("same" by default, "valid" for NiN's first layer);
    every conv has `out_channels` filters; `dropout` (probability) follows the block.
    """

    example_params: ClassVar[dict[str, Any]] = {"kernel": 3, "mlp": 2}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        kernel: int = 3,
        mlp: int = 2,
        padding: int | str | None = None,
        dropout: float = 0.0,
    ) -> None:
        if mlp < 0:
            raise ValueError(f"mlpconv needs mlp >= 0 1x1 convs, got {mlp}")
        layers: list[nn.Module] = [
            ConvNormAct(in_channels, out_channels, kernel, stride, act=act, norm=norm, padding=padding)
        ]
        layers += [ConvNormAct(out_channels, out_channels, 1, act=act, norm=norm) for _ in range(mlp)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
