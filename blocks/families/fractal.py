"""FractalNet (Larsson et al. 2017): self-similar blocks of C columns joined by element-wise means, drop-path.

The expansion rule: f_1(z) = conv(z); f_{C+1}(z) = join(f_C(f_C(z)), conv(z)). The deepest column has 2^(C-1)
convs, the block 2^C - 1; every join averages its inputs. There are no residual connections: every signal
passes through a conv and a non-linearity.

Drop-path (training only) mixes the paper's two samplings per batch: local (each join drops each input
independently per sample, at least one kept) and global (one column, the same in every block of the
network, for the whole batch). The blocks of one network share the per-batch draw: `Network` links them
through `link_network`, and the first block in forward order draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from blocks.common import channel_keeping_pool
from blocks.layers import ConvNormAct
from blocks.registry import register_block


class _BatchDraw:
    """The per-batch drop-path draw shared by the fractal blocks of one network (a plain object, not a module).

    `mode` is "local" or "global"; `column` is a fraction in [0, 1): block with C columns uses column
    floor(column * C), so blocks of equal C use the same column.
    """

    def __init__(self) -> None:
        self.mode = "local"
        self.column = 0.0


class _Fractal(nn.Module):
    """f_C as a module whose forward returns the (unjoined) outputs of its columns, deepest first."""

    def __init__(self, in_channels: int, out_channels: int, columns: int, make_conv) -> None:
        super().__init__()
        self.short = make_conv(in_channels, out_channels)
        self.first = _Fractal(in_channels, out_channels, columns - 1, make_conv) if columns > 1 else None
        self.second = _Fractal(out_channels, out_channels, columns - 1, make_conv) if columns > 1 else None

    def column(self, x: torch.Tensor, depth_rank: int) -> torch.Tensor:
        """Only the column `depth_rank` (0 = the deepest) of this fractal: global drop-path's one column."""
        if self.first is None or depth_rank == self.levels - 1:
            return self.short(x)
        return self.second.column(self.first.column(x, depth_rank), depth_rank)

    @property
    def levels(self) -> int:
        """C, the number of columns."""
        return 1 if self.first is None else 1 + self.first.levels

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
    reach 1x1 after five blocks), `global_drop` (the share of training batches that use global drop-path:
    one column, drawn uniformly, for every block of the network; the paper mixes 50 % global and 50 % local;
    0 = local only; in a network the first fractal block's share decides for all). Evaluation is deterministic (plain means).
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
        global_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if columns < 1:
            raise ValueError(f"fractal needs columns >= 1, got {columns}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"fractal drop_path must be in [0, 1), got {drop_path}")
        if not 0.0 <= global_drop <= 1.0:
            raise ValueError(f"fractal global_drop must be in [0, 1], got {global_drop}")

        def make_conv(cin: int, cout: int) -> nn.Module:
            unit = ConvNormAct(cin, cout, kernel, act=act, norm=norm)
            return nn.Sequential(*unit, nn.Dropout(dropout)) if dropout else unit

        self.columns = columns
        self.drop_path = float(drop_path)
        self.global_drop = float(global_drop)
        # A block on its own draws for itself; Network.link_network makes the first block draw for all.
        self.draw = _BatchDraw()
        self.draws = True
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

    @staticmethod
    def link_network(blocks: Sequence[FractalBlock]) -> None:
        """Share one per-batch draw among a network's fractal blocks (in forward order): the first draws."""
        shared = _BatchDraw()
        for i, block in enumerate(blocks):
            block.draw, block.draws = shared, i == 0

    def global_column(self) -> int | None:
        """The column (0 = deepest) this training batch uses under global drop-path, else None (local)."""
        if self.draws:
            # No random draw at all when global drop-path is off, so local-only training is unchanged.
            glob = self.global_drop > 0 and float(torch.rand((), device="cpu")) < self.global_drop
            self.draw.mode = "global" if glob else "local"
            self.draw.column = float(torch.rand((), device="cpu")) if glob else 0.0
        if self.draw.mode != "global":
            return None
        return min(int(self.draw.column * self.columns), self.columns - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        column = self.global_column() if self.training else None
        if column is not None:
            return self.pool(self.fractal.column(x, column))
        return self.pool(self.join(self.fractal(x, self.join)))
