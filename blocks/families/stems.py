"""Input stems: a learned colour transform and an input normalisation, usable before any network's stem.

Mishkin et al. compare colour spaces and find that a small learned 1x1-conv network on the RGB input
(RGB -> 10 -> 3 with a very leaky ReLU or maxout) beats every fixed transform; `colorspace` is that network,
`input_norm` their "RGB by BatchNorm" baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from blocks.layers import ConvNormAct
from blocks.registry import register_block


@register_block("colorspace")
class ColorSpace(nn.Sequential):
    """A learned colour transform: 1x1 conv-norm-acts through `hidden` widths to `out_channels`.

    Mishkin et al.'s variants: hidden [10] (RGB -> 10 -> 3), [16], [3]; `act` very_leaky_relu, maxout or tanh
    (set per entry); `final_act` False leaves the last 1x1 conv linear. A stride > 1 subsamples (1x1 conv).
    `norm` is honoured like anywhere else; their network has none (`norm: none` in the entry).
    """

    example_params: ClassVar[dict[str, Any]] = {"hidden": [10]}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "very_leaky_relu",
        norm: str = "none",
        hidden: int | Sequence[int] = (10,),
        final_act: bool = True,
    ) -> None:
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"colorspace hidden widths must be positive ints, got {hidden!r}")
        layers: list[nn.Module] = []
        ch = in_channels
        for i, w in enumerate([*widths, out_channels]):
            last = i == len(widths)
            layers.append(
                ConvNormAct(
                    ch,
                    w,
                    1,
                    stride if i == 0 else 1,
                    act=act if final_act or not last else "none",
                    norm=norm if final_act or not last else "none",
                )
            )
            ch = w
        super().__init__(*layers)
        self.out_channels = out_channels

    @classmethod
    def out_channels_for(cls, in_channels: int, **params: Any) -> int:
        """A colour transform keeps the channel count unless `channels` says otherwise."""
        return in_channels


@register_block("input_norm")
class InputNorm(nn.Module):
    """BatchNorm on the raw input (Mishkin et al.'s "RGB by BatchNorm"), learning the input's scale and shift.

    With `out_channels != in_channels` or a stride > 1, a linear 1x1 conv follows (projection, subsampling).
    `act` is not used: normalising the input must not clip it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels, affine=affine)
        self.proj = (
            ConvNormAct(in_channels, out_channels, 1, stride, act="none", norm="none")
            if in_channels != out_channels or stride != 1
            else None
        )

    @classmethod
    def out_channels_for(cls, in_channels: int, **params: Any) -> int:
        return in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return x if self.proj is None else self.proj(x)
