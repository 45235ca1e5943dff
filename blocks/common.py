"""Helpers shared by several block families (norm/act pairs, shortcuts, pooling inside blocks, SE).

Families import from here, never from each other, so each family module depends only on the layer factories.
"""

from __future__ import annotations

import torch
from torch import nn

from blocks.layers import ConvNormAct, act_expansion, create_act, create_norm, norm_after_act
from blocks.pooling import Pool, create_pool2d


def channel_keeping_pool(
    kind: str,
    kernel: int,
    stride: int,
    padding: int = 0,
    ceil: bool = False,
    *,
    channels: int,
    act: str = "relu",
    norm: str = "batchnorm",
) -> nn.Module:
    """A pooling by name that must keep the channel count (ValueError for e.g. avg_max_cat inside a block)."""
    if Pool.out_channels_for(channels, type=kind) != channels:
        raise ValueError(
            f"{kind!r} pooling changes the channel count, which this block cannot absorb; "
            "use max, avg, avg_max, stochastic, lp or strided_conv here"
        )
    return create_pool2d(kind, kernel, stride, padding, ceil, channels=channels, act=act, norm=norm)


def norm_act(channels: int, *, act: str, norm: str) -> nn.Sequential:
    """Norm and act for a tensor of `channels` channels, in the order `norm` asks for (maxout halves them)."""
    after = norm_after_act(norm)
    out = channels // act_expansion(act)
    layers = (
        [create_act(act, channels), create_norm(norm, out)]
        if after
        else [create_norm(norm, channels), create_act(act, channels)]
    )
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


def not_inplace(module: nn.Module) -> nn.Module:
    """Turn off `inplace` on every activation inside `module`.

    Needed where an activation reads a block's input that the shortcut also uses: an in-place ReLU
    would silently overwrite the identity branch.
    """
    for m in module.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return module


def projection(in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 conv + norm (He et al.'s option B shortcut)."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return ConvNormAct(in_channels, out_channels, 1, stride, act="none", norm=norm)


def pre_activation(channels: int, act: str, norm: str) -> tuple[nn.Module, int]:
    """Norm -> act (act -> norm for `*_after` norms) of a pre-activation unit, and its output channels.

    A maxout activation halves the channels, so the conv that follows reads `channels // 2`.
    """
    pieces = act_expansion(act)
    if channels % pieces:
        raise ValueError(f"activation {act!r} needs channels divisible by {pieces}, got {channels}")
    out = channels // pieces
    if norm_after_act(norm):
        layers = [create_act(act, channels), create_norm(norm, out)]
    else:
        layers = [create_norm(norm, channels), create_act(act, channels)]
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)]), out


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al.): pool, 1x1 to `se_ratio` x channels, act, 1x1, sigmoid gate."""

    def __init__(self, channels: int, se_ratio: float, act: str = "relu") -> None:
        super().__init__()
        if not 0.0 < se_ratio <= 1.0:
            raise ValueError(f"se_ratio must be in (0, 1] (0 turns SE off), got {se_ratio}")
        reduced = max(1, int(round(channels * se_ratio)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = ConvNormAct(channels, reduced, 1, act=act, norm="none")
        self.expand = ConvNormAct(reduced, channels, 1, act="sigmoid", norm="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.expand(self.reduce(self.pool(x)))


def squeeze_excite(channels: int, se_ratio: float, act: str) -> nn.Module:
    """SE module, or identity when `se_ratio` is 0 (off)."""
    if se_ratio < 0:
        raise ValueError(f"se_ratio must be >= 0 (0 = off), got {se_ratio}")
    return SqueezeExcite(channels, se_ratio, act) if se_ratio else nn.Identity()
