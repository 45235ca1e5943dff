"""SqueezeNet's Fire module (Iandola et al.): squeeze 1x1, then expand 1x1 and 3x3 side by side, concat."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from blocks.common import projection
from blocks.layers import ConvNormAct
from blocks.registry import register_block


def fire_widths(
    out_channels: int | None,
    *,
    squeeze: int | None,
    expand1x1: int | None,
    expand3x3: int | None,
    squeeze_ratio: float,
    pct3x3: float,
) -> tuple[int, int, int]:
    """(squeeze, expand 1x1, expand 3x3) widths from explicit widths or the paper's SR / pct3x3 ratios."""
    if expand1x1 is not None and expand3x3 is not None:
        e1, e3 = int(expand1x1), int(expand3x3)
        if out_channels is not None and e1 + e3 != out_channels:
            raise ValueError(
                f"fire: expand1x1 + expand3x3 = {e1 + e3} but channels = {out_channels}; give matching "
                "widths or drop one of them (out_channels of a fire module is expand1x1 + expand3x3)"
            )
    elif out_channels is None:
        raise ValueError("fire needs `channels` or both expand1x1 and expand3x3")
    elif expand1x1 is not None:
        e1, e3 = int(expand1x1), out_channels - int(expand1x1)
    elif expand3x3 is not None:
        e1, e3 = out_channels - int(expand3x3), int(expand3x3)
    else:
        if not 0.0 <= pct3x3 <= 1.0:
            raise ValueError(f"fire pct3x3 must be in [0, 1], got {pct3x3}")
        e3 = int(round(out_channels * pct3x3))
        e1 = out_channels - e3
    if e1 < 0 or e3 < 0 or e1 + e3 < 1:
        raise ValueError(f"fire expand widths must be >= 0 with a positive sum, got {e1} and {e3}")
    if squeeze is None:
        if squeeze_ratio <= 0:
            raise ValueError(f"fire squeeze_ratio must be > 0, got {squeeze_ratio}")
        squeeze = max(1, int(round((e1 + e3) * squeeze_ratio)))
    if squeeze < 1:
        raise ValueError(f"fire squeeze width must be >= 1, got {squeeze}")
    return int(squeeze), e1, e3


@register_block("fire")
class Fire(nn.Module):
    """Fire module; out_channels = expand1x1 + expand3x3.

    Args:
        squeeze: squeeze 1x1 width (default: `squeeze_ratio` x out channels, the paper's SR = 0.125).
        expand1x1, expand3x3: expand widths (default: split out channels by `pct3x3`, the paper's 0.5).
        bypass: add the input (identity when shapes match, else a 1x1 projection: the paper's simple /
            complex bypass).
    With stride > 1 both expand convs are strided, so the 3x3 still sees every position.
    """

    example_params: ClassVar[dict] = {"squeeze_ratio": 0.25, "pct3x3": 0.75, "bypass": True}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        squeeze: int | None = None,
        expand1x1: int | None = None,
        expand3x3: int | None = None,
        squeeze_ratio: float = 0.125,
        pct3x3: float = 0.5,
        bypass: bool = False,
    ) -> None:
        super().__init__()
        s, e1, e3 = fire_widths(
            out_channels,
            squeeze=squeeze,
            expand1x1=expand1x1,
            expand3x3=expand3x3,
            squeeze_ratio=squeeze_ratio,
            pct3x3=pct3x3,
        )
        self.widths = (s, e1, e3)
        self.squeeze = ConvNormAct(in_channels, s, 1, act=act, norm=norm)
        self.expand = nn.ModuleList(
            ConvNormAct(s, width, kernel, stride, act=act, norm=norm)
            for width, kernel in ((e1, 1), (e3, 3))
            if width
        )
        self.shortcut = projection(in_channels, out_channels, stride, norm) if bypass else None

    @classmethod
    def out_channels_for(cls, in_channels: int, **params: Any) -> int:
        """expand1x1 + expand3x3 (both must be given when the entry has no `channels`)."""
        e1, e3 = params.get("expand1x1"), params.get("expand3x3")
        if e1 is None or e3 is None:
            raise ValueError("fire needs `channels` or both expand1x1 and expand3x3")
        return int(e1) + int(e3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        out = torch.cat([branch(s) for branch in self.expand], dim=1)
        return out if self.shortcut is None else out + self.shortcut(x)
