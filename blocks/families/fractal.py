"""FractalNet (Larsson et al. 2017): self-similar blocks of C columns joined by element-wise means, drop-path.

The expansion rule: f_1(z) = conv(z); f_{C+1}(z) = join(f_C(f_C(z)), conv(z)). The deepest column has 2^(C-1)
convs, the block 2^C - 1; every join averages its inputs. There are no residual connections: every signal
passes through a conv and a non-linearity.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from blocks.families.classic import channel_keeping_pool
from blocks.layers import ConvNormAct
from blocks.registry import register_block


class _Fractal(nn.Module):
    """f_C as a module whose forward returns the (unjoined) outputs of its columns, deepest first."""

    def __init__(self, in_channels: int, out_channels: int, columns: int, make_conv) -> None:
        super().__init__()
        self.short = make_conv(in_channels, out_channels)
        self.first = _Fractal(in_channels, out_channels, columns - 1, make_conv) if columns > 1 else None
        self.second = _Fractal(out_channels, out_channels, columns - 1, make_conv) if columns > 1 else None

    def forward(self, x: torch.Tensor, join) -> list[torch.Tensor]:
        paths = [self.short(x)]
        if self.first is not None:
            # The join inside f_C(f_C(z)) is taken; the outer one merges with this level's columns.
            paths = self.second(join(self.first(x, join)), join) + paths
        return paths


@register_block("fractal")
class FractalBlock(nn.Module):
    """A FractalNet block: `columns` (C) columns of 3x3 conv-norm-acts, mean joins, then pooling (stride > 1).

    Params: `columns` (C: 3 for the 20-layer CIFAR net, 4 for the 40-layer one), `drop_path` (local drop-path:
    in training each input of a join is dropped with this probability, independently per sample, at least
    one kept; the survivors are averaged; the paper uses 0.15), `dropout` (after each conv unit; the paper's
    per-block rates 0, 0.1, 0.2, 0.3, 0.4), `kernel` (3), `pool` (the downsampling after the block, window =
    stride; max as in the paper), `ceil` (ceil-mode pooling: identical on even sizes, and 28 px inputs still
    reach 1x1 after five blocks). Evaluation is deterministic (plain means). Global drop-path (one column
    for the whole network) is not implemented: it couples all blocks of a network.
    """

    example_params: ClassVar[dict[str, Any]] = {"columns": 3, "drop_path": 0.15}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        columns: int = 3,
        drop_path: float = 0.15,
        dropout: float = 0.0,
        kernel: int = 3,
        pool: str = "max",
        ceil: bool = True,
    ) -> None:
        super().__init__()
        if columns < 1:
            raise ValueError(f"fractal needs columns >= 1, got {columns}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"fractal drop_path must be in [0, 1), got {drop_path}")

        def make_conv(cin: int, cout: int) -> nn.Module:
            unit = ConvNormAct(cin, cout, kernel, act=act, norm=norm)
            return nn.Sequential(*unit, nn.Dropout(dropout)) if dropout else unit

        self.columns = columns
        self.drop_path = float(drop_path)
        self.fractal = _Fractal(in_channels, out_channels, columns, make_conv)
        self.pool: nn.Module = nn.Identity()
        if stride > 1:
            self.pool = channel_keeping_pool(
                pool, stride, stride, 0, ceil, channels=out_channels, act=act, norm=norm
            )

    def join(self, paths: list[torch.Tensor]) -> torch.Tensor:
        """Mean of the paths; in training (drop_path > 0) the mean of a random non-empty subset per sample."""
        if len(paths) == 1:
            return paths[0]
        stacked = torch.stack(paths)  # (paths, N, C, H, W)
        if not self.training or self.drop_path == 0.0:
            return stacked.mean(dim=0)
        n_paths, n = stacked.shape[:2]
        keep = torch.rand(n_paths, n, device=stacked.device) >= self.drop_path
        # A sample that dropped every path keeps one chosen uniformly at random.
        rescue = torch.randint(n_paths, (n,), device=stacked.device)
        keep[rescue, torch.arange(n, device=stacked.device)] |= ~keep.any(dim=0)
        weights = keep.to(stacked.dtype)
        weights = (weights / weights.sum(dim=0, keepdim=True)).view(n_paths, n, 1, 1, 1)
        return (stacked * weights).sum(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.join(self.fractal(x, self.join)))
