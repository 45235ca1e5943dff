"""Pooling layers by name (`create_pool2d`), and the `pool` block.

Every pooling takes a window (`kernel`, `stride`, `padding`, `ceil`): 2x2 stride 2 is the classic
non-overlapping window, 3x3 stride 2 the overlapping one of AlexNet / CaffeNet (Caffe rounds pooled sizes up:
`ceil=True` matches it). Names: max, avg, avg_max (element-wise sum of the two), avg_max_cat (the two
concatenated along channels: 2x the channels, avg first), stochastic (Zeiler & Fergus), lp (power `p`) and
strided_conv (a learned conv-norm-act with the window's kernel and stride, channels kept).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from blocks.layers import ConvNormAct
from blocks.registry import Registry, register_block

POOLS = Registry("pooling")

# Poolings whose output has this many times the input channels (all others keep the channel count).
CHANNEL_MULTIPLIER = {"avg_max_cat": 2}


def pooled_size(size: int, kernel: int, stride: int, padding: int, ceil: bool) -> int:
    """Output length of a pooling window along one axis, with PyTorch's (and Caffe's) rounding rules."""
    span = size + 2 * padding - kernel
    if span < 0:
        raise ValueError(f"pooling window {kernel} (padding {padding}) is larger than the input ({size})")
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    # In ceil mode the last window must start inside the input or its left padding.
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _window_pad(x: torch.Tensor, kernel: int, stride: int, padding: int, ceil: bool) -> torch.Tensor:
    """Zero-pad `x` so that an unpadded, floor-mode window gives the pooled size of the requested window."""
    h, w = x.shape[-2:]
    oh, ow = (pooled_size(s, kernel, stride, padding, ceil) for s in (h, w))
    extra_h = max(0, (oh - 1) * stride + kernel - (h + 2 * padding))
    extra_w = max(0, (ow - 1) * stride + kernel - (w + 2 * padding))
    if padding or extra_h or extra_w:
        x = F.pad(x, (padding, padding + extra_w, padding, padding + extra_h))
    return x


class AvgMaxPool2d(nn.Module):
    """max pooling + average pooling, element-wise (Mishkin et al.'s "avg + max"), or concatenated (`cat`)."""

    def __init__(
        self, kernel: int, stride: int, padding: int = 0, ceil: bool = False, cat: bool = False
    ) -> None:
        super().__init__()
        self.max = nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil)
        self.avg = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil, count_include_pad=False)
        self.cat = cat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cat:
            return torch.cat([self.avg(x), self.max(x)], dim=1)
        return self.avg(x) + self.max(x)


class StochasticPool2d(nn.Module):
    """Stochastic pooling (Zeiler & Fergus 2013).

    Each window's activations a_i >= 0 define probabilities p_i = a_i / sum_j a_j. Training picks one
    activation per window with those probabilities; evaluation returns the probability-weighted average
    sum_i p_i a_i (deterministic). Meant for non-negative inputs (after ReLU): negative values count as 0,
    and an all-zero window gives 0.
    """

    def __init__(self, kernel: int, stride: int, padding: int = 0, ceil: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding, self.ceil = kernel, stride, padding, ceil

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = _window_pad(x.clamp(min=0), self.kernel, self.stride, self.padding, self.ceil)
        if not self.training:
            # sum a^2 / sum a over each window; the average pools' common 1/k^2 factor cancels.
            num = F.avg_pool2d(a * a, self.kernel, self.stride)
            den = F.avg_pool2d(a, self.kernel, self.stride)
            # An all-zero window has num = den = 0: the clamp makes it 0 / tiny = 0.
            return num / den.clamp(min=torch.finfo(den.dtype).tiny)
        n, c, h, w = a.shape
        oh = (h - self.kernel) // self.stride + 1
        ow = (w - self.kernel) // self.stride + 1
        # (N, C*k*k, L) -> (N, C, k*k, L): the activations of each window.
        win = F.unfold(a, self.kernel, stride=self.stride).view(n, c, self.kernel * self.kernel, oh * ow)
        cum = win.detach().cumsum(dim=2)
        # Inverse-CDF sampling: the first position whose cumulative activation exceeds u * total.
        u = torch.rand_like(cum[:, :, -1:]) * cum[:, :, -1:]
        idx = (cum <= u).sum(dim=2, keepdim=True).clamp(max=self.kernel * self.kernel - 1)
        out = win.gather(2, idx)
        return out.view(n, c, oh, ow)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding={self.padding}, ceil={self.ceil}"


class LpPool2d(nn.Module):
    """Lp pooling, (sum_i |x_i|^p)^(1/p) over each window (p=1: sum of magnitudes, p -> inf: max).

    Unlike nn.LPPool2d it takes padding (zeros add nothing to the sum) and its gradient stays finite on
    all-zero windows.
    """

    def __init__(
        self, kernel: int, stride: int, padding: int = 0, ceil: bool = False, p: float = 2.0
    ) -> None:
        super().__init__()
        if p < 1:
            raise ValueError(f"lp pooling needs a power p >= 1, got {p}")
        self.kernel, self.stride, self.padding, self.ceil, self.p = kernel, stride, padding, ceil, float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _window_pad(x, self.kernel, self.stride, self.padding, self.ceil)
        s = F.avg_pool2d(x.abs().pow(self.p), self.kernel, self.stride) * (self.kernel * self.kernel)
        return s.clamp(min=1e-12).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        window = f"kernel={self.kernel}, stride={self.stride}, padding={self.padding}, ceil={self.ceil}"
        return f"p={self.p}, {window}"


class StridedConvPool(nn.Module):
    """A learned downsampler in place of pooling: a conv-norm-act with the window's kernel and stride."""

    def __init__(
        self,
        channels: int,
        kernel: int,
        stride: int,
        padding: int = 0,
        ceil: bool = False,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding, self.ceil = kernel, stride, padding, ceil
        self.conv = ConvNormAct(channels, channels, kernel, stride, act=act, norm=norm, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_window_pad(x, self.kernel, self.stride, self.padding, self.ceil))


POOLS.register("max")(lambda k, s, pad, ceil, **kw: nn.MaxPool2d(k, s, pad, ceil_mode=ceil))
# Padding is not counted in the average (Caffe and most implementations divide by the real window size).
POOLS.register("avg")(
    lambda k, s, pad, ceil, **kw: nn.AvgPool2d(k, s, pad, ceil_mode=ceil, count_include_pad=False)
)
POOLS.register("avg_max")(lambda k, s, pad, ceil, **kw: AvgMaxPool2d(k, s, pad, ceil))
POOLS.register("avg_max_cat")(lambda k, s, pad, ceil, **kw: AvgMaxPool2d(k, s, pad, ceil, cat=True))
POOLS.register("stochastic")(lambda k, s, pad, ceil, **kw: StochasticPool2d(k, s, pad, ceil))
POOLS.register("lp")(lambda k, s, pad, ceil, **kw: LpPool2d(k, s, pad, ceil, p=kw.get("p", 2.0)))


@POOLS.register("strided_conv")
def _strided_conv(k, s, pad, ceil, *, channels=None, act="relu", norm="batchnorm", **kw):
    if channels is None:
        raise ValueError("strided_conv pooling is learned: create_pool2d needs its `channels`")
    return StridedConvPool(channels, k, s, pad, ceil, act=act, norm=norm)


def create_pool2d(
    kind: str,
    kernel: int = 2,
    stride: int | None = None,
    padding: int = 0,
    ceil: bool = False,
    *,
    channels: int | None = None,
    act: str = "relu",
    norm: str = "batchnorm",
    p: float = 2.0,
) -> nn.Module:
    """Pooling module by name (see the module docstring); KeyError listing the valid names otherwise.

    Args:
        stride: defaults to `kernel` (non-overlapping windows).
        channels, act, norm: only for "strided_conv" (the learned conv's channels, activation and norm).
        p: the power of "lp" pooling.
    """
    factory = POOLS.get(kind)
    stride = kernel if stride is None else stride
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"pooling window needs kernel >= 1, stride >= 1, padding >= 0; got {kernel}/{stride}/{padding}"
        )
    if 2 * padding > kernel:
        raise ValueError(f"pooling padding ({padding}) must be at most half the kernel ({kernel})")
    return factory(kernel, stride, padding, ceil, channels=channels, act=act, norm=norm, p=p)


@register_block("pool")
class Pool(nn.Module):
    """A pooling layer as a block: `type` picks the pooling, `kernel` / `padding` / `ceil` the window.

    The block's stride is the window's stride; `kernel` defaults to the stride (non-overlapping windows).
    A spec entry must say `stride: 2` to downsample: the assembler's default stride is 1, which with the
    default kernel is an identity. Channels are kept (doubled by avg_max_cat): a different `out_channels`
    is a ValueError.
    """

    example_params: ClassVar[dict[str, Any]] = {"type": "max"}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        type: str = "max",
        kernel: int | None = None,
        padding: int = 0,
        ceil: bool = False,
        p: float = 2.0,
    ) -> None:
        super().__init__()
        expected = self.out_channels_for(in_channels, type=type)
        if out_channels != expected:
            raise ValueError(
                f"{type} pooling turns {in_channels} channels into {expected}, not {out_channels}; "
                "omit `channels` for a pool entry or put a conv after it"
            )
        self.pool = create_pool2d(
            type,
            stride if kernel is None else kernel,
            stride,
            padding,
            ceil,
            channels=in_channels,
            act=act,
            norm=norm,
            p=p,
        )

    @classmethod
    def out_channels_for(cls, in_channels: int, *, type: str = "max", **params: Any) -> int:
        POOLS.get(type)
        return in_channels * CHANNEL_MULTIPLIER.get(type, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)
