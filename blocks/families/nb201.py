"""NAS-Bench-201 (Dong & Yang, ICLR 2020): its searched cell and the residual block that reduces between stages.

A cell is a 4-node DAG: node 0 is the cell input, node j (1..3) sums op(node i) over i < j, node 3 is the
output. Each of the six edges carries one of `OPS`: "none" (zero: the edge is absent), "skip_connect"
(identity), "nor_conv_1x1" / "nor_conv_3x3" (act -> conv -> norm, ReLU-conv-BN in the benchmark) and
"avg_pool_3x3" (3x3 / 1 average pooling, padding not counted). The cell is written either as the benchmark's
string `|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|...~0|...~1|...~2|` or as its six-digit code,
one digit per edge in that order, each the index of the edge's op in `OPS` (`421211`).

With the benchmark's 16-32-64 stages, 5 cells each, the reduction block between stages and its stem and head
(conf/model/nb201.yaml), a network built here has exactly the benchmark table's parameter count.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from blocks.layers import act_expansion, create_act, create_norm
from blocks.registry import register_block

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in the order of the cell string and of the code's digits.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def parse_cell(cell: Any) -> tuple[str, ...]:
    """The six edge ops of a cell given as the benchmark's string or six-digit code (ValueError otherwise)."""
    hint = (
        "a NAS-Bench-201 cell is a string like '|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+"
        "|avg_pool_3x3~0|none~1|nor_conv_3x3~2|' or a six-digit code like '421211' (digits index "
        f"{', '.join(f'{i}={op}' for i, op in enumerate(OPS))}; quote codes in YAML, where a leading 0 "
        "reads as octal)"
    )
    if isinstance(cell, int) and not isinstance(cell, bool) and 0 <= cell <= 444444:
        cell = f"{cell:06d}"  # a code that reached us as a number (Hydra overrides parse digits as ints)
    if not isinstance(cell, str):
        raise ValueError(f"{hint}; got {cell!r}")
    text = cell.strip()
    if len(text) == 6 and text.isdigit():
        if any(int(d) >= len(OPS) for d in text):
            raise ValueError(f"{hint}; got the code {cell!r}, with a digit above {len(OPS) - 1}")
        return tuple(OPS[int(d)] for d in text)
    nodes = [part.strip("|").split("|") for part in text.split("+")]
    ops: list[str] = []
    ok = len(nodes) == 3
    for j, node in enumerate(nodes if ok else [], start=1):
        ok = ok and len(node) == j
        for i, item in enumerate(node if ok else []):
            op, _, src = item.partition("~")
            ok = ok and op in OPS and src == str(i)
            ops.append(op)
    if not ok:
        raise ValueError(f"{hint}; got {cell!r}")
    return tuple(ops)


def cell_string(ops: tuple[str, ...] | list[str]) -> str:
    """The benchmark's string of six edge ops."""
    nodes = [[f"{ops[e]}~{src}" for e, (dst, src) in enumerate(EDGES) if dst == j] for j in (1, 2, 3)]
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


class ActConvNorm(nn.Sequential):
    """act -> conv -> norm (the benchmark's ReLUConvBN); the conv is biased only when there is no norm.

    The activation is not in place: the node it reads feeds other edges too. A maxout act divides the
    channels the conv reads by its pieces.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, *, act: str, norm: str
    ) -> None:
        pieces = act_expansion(act)
        if in_channels % pieces:
            raise ValueError(f"activation {act!r} needs channels divisible by {pieces}, got {in_channels}")
        conv = nn.Conv2d(
            in_channels // pieces, out_channels, kernel, stride, kernel // 2, bias=norm == "none"
        )
        layers = [create_act(act, in_channels), conv, create_norm(norm, out_channels)]
        super().__init__(*[m for m in layers if not isinstance(m, nn.Identity)])


def edge_op(name: str, in_channels: int, out_channels: int, stride: int, *, act: str, norm: str) -> nn.Module:
    """One edge's op (never "none": absent edges get no module). Shape changes (only possible on edges
    from the cell input, outside the benchmark's network) go through a 1x1 act-conv-norm."""
    reshape = in_channels != out_channels or stride != 1
    if name == "nor_conv_1x1":
        return ActConvNorm(in_channels, out_channels, 1, stride, act=act, norm=norm)
    if name == "nor_conv_3x3":
        return ActConvNorm(in_channels, out_channels, 3, stride, act=act, norm=norm)
    if name == "skip_connect":
        return (
            ActConvNorm(in_channels, out_channels, 1, stride, act=act, norm=norm)
            if reshape
            else nn.Identity()
        )
    if name == "avg_pool_3x3":
        pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        if in_channels == out_channels:
            return pool
        return nn.Sequential(ActConvNorm(in_channels, out_channels, 1, 1, act=act, norm=norm), pool)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; valid ops: {', '.join(OPS)}")


@register_block("nb201_cell")
class NB201Cell(nn.Module):
    """The NAS-Bench-201 cell (see the module docstring); `cell`: the benchmark's string or six-digit code.

    Edges from the cell input take the stride and the channel change (the benchmark's cells keep both).
    A node with only "none" inputs is zero, and a cell whose output node is cut off from its input outputs
    zeros (as in the benchmark, which counts such cells too); that is finite, and what follows still trains.
    """

    example_params: ClassVar[dict[str, Any]] = {
        "cell": "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    }

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        cell: Any = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ) -> None:
        super().__init__()
        self.ops_by_edge = parse_cell(cell)
        self.cell = cell_string(self.ops_by_edge)
        self.out_channels, self.stride = out_channels, stride
        self.edges = nn.ModuleDict()
        for (dst, src), name in zip(EDGES, self.ops_by_edge, strict=True):
            if name != "none":
                cin, s = (in_channels, stride) if src == 0 else (out_channels, 1)
                self.edges[f"{dst}<-{src}"] = edge_op(name, cin, out_channels, s, act=act, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.edges[f"{j}<-{i}"](nodes[i]) for i in range(j) if f"{j}<-{i}" in self.edges]
            if terms:
                nodes.append(torch.stack(terms).sum(dim=0) if len(terms) > 1 else terms[0])
            else:
                n, _, h, w = x.shape
                size = (n, self.out_channels, math.ceil(h / self.stride), math.ceil(w / self.stride))
                nodes.append(x.new_zeros(size))
        return nodes[3]

    def extra_repr(self) -> str:
        return self.cell


@register_block("nb201_reduction")
class NB201Reduction(nn.Module):
    """NAS-Bench-201's residual reduction block (its ResNet basic block): act-conv3x3-norm with the stride,
    act-conv3x3-norm, plus a shortcut: 2x2 / 2 average pooling then a bias-free 1x1 conv when strided,
    a 1x1 act-conv-norm when only the channels change, else the identity. Ceil-mode pooling keeps the two
    paths the same size on odd inputs (the benchmark's even sizes are unaffected)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
    ) -> None:
        super().__init__()
        self.conv_a = ActConvNorm(in_channels, out_channels, 3, stride, act=act, norm=norm)
        self.conv_b = ActConvNorm(out_channels, out_channels, 3, 1, act=act, norm=norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
            )
        elif in_channels != out_channels:
            self.shortcut = ActConvNorm(in_channels, out_channels, 1, 1, act=act, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
