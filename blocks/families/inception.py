"""Inception blocks: GoogLeNet's module, the Inception v3 modules, grid reduction and Inception-ResNet.

Names follow the Inception-v4 paper: `inception_a` / `inception_b` / `inception_c` are the 35x35 / 17x17 /
8x8 modules of Inception v3 (torchvision's InceptionA / InceptionC / InceptionE), `inception_reduction` the
grid reduction (InceptionB / InceptionD), `inception_mixed` any module written as branch data (Inception
v4's modules), `inception_resnet` the residual Inception block. Every branch
conv is a conv-norm-act. A branch width of 0 removes that branch.

With a stride > 1 every branch downsamples itself (its first conv and its pooling take the stride), so a
module can also reduce the grid; channel counts are fixed by the branch widths (`out_channels_for`), and a
different `channels` in the spec is a ValueError.

Branch lists (`branches` of `inception_reduction` and `inception_resnet`) are written as data: a list of
branches, each a list of convs `[channels, kernel]`, the kernel an int or `[kh, kw]` (e.g. `[160, [1, 7]]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from blocks.common import channel_keeping_pool
from blocks.layers import ConvNormAct, act_expansion, create_act
from blocks.registry import register_block

Kernel = int | tuple[int, int]


class Parallel(nn.ModuleList):
    """Apply every child to the same input and concatenate the results along channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self], dim=1)


def parse_branches(branches: Any, where: str) -> list[list[tuple[int, Kernel]]]:
    """`[[[channels, kernel], ...], ...]` -> branches of (channels, kernel); ValueError if malformed."""
    hint = f"{where}: branches must be a list of branches, each a list of [channels, kernel] convs"
    if not isinstance(branches, Sequence) or not branches:
        raise ValueError(f"{hint}; got {branches!r}")
    parsed = []
    for branch in branches:
        if not isinstance(branch, Sequence) or not branch:
            raise ValueError(f"{hint}; got the branch {branch!r}")
        convs = []
        for item in branch:
            ok = isinstance(item, Sequence) and len(item) == 2 and isinstance(item[0], int) and item[0] >= 1
            kernel = item[1] if ok else None
            if isinstance(kernel, Sequence) and len(kernel) == 2 and all(isinstance(k, int) for k in kernel):
                kernel = (int(kernel[0]), int(kernel[1]))
            elif not isinstance(kernel, int):
                ok = False
            if not ok:
                raise ValueError(f"{hint} (kernel an int or [kh, kw]); got the conv {item!r}")
            convs.append((int(item[0]), kernel))
        parsed.append(convs)
    return parsed


def conv_chain(
    in_channels: int,
    convs: Sequence[tuple[int, Kernel]],
    *,
    act: str,
    norm: str,
    stride: int = 1,
    stride_last: bool = False,
    padding: str = "same",
) -> nn.Sequential:
    """Sequential conv-norm-acts; the stride goes on the first conv (or the last with `stride_last`, which
    also gets `padding`: "valid" for the grid reductions of Inception v3)."""
    layers = []
    ch = in_channels
    last = len(convs) - 1
    for i, (out, kernel) in enumerate(convs):
        strided = i == (last if stride_last else 0)
        pad = padding if (stride_last and i == last) else "same"
        layers.append(ConvNormAct(ch, out, kernel, stride if strided else 1, act=act, norm=norm, padding=pad))
        ch = out
    return nn.Sequential(*layers)


def pool_branch(in_channels: int, proj: int, pool: str, stride: int, *, act: str, norm: str) -> nn.Sequential:
    """3x3 pooling (padded: the size is kept at stride 1) followed by a 1x1 projection to `proj` channels."""
    return nn.Sequential(
        channel_keeping_pool(pool, 3, stride, 1, channels=in_channels, act=act, norm=norm),
        ConvNormAct(in_channels, proj, 1, act=act, norm=norm),
    )


def check_out(name: str, out_channels: int, expected: int) -> None:
    """ValueError unless the spec's `out_channels` is what the branch widths produce."""
    if out_channels != expected:
        raise ValueError(
            f"{name}: its branches concatenate to {expected} channels, not {out_channels}; omit `channels` "
            "in the spec entry (it follows from the branch widths) or change the widths"
        )


class _Module(nn.Module):
    """An Inception module: parallel branches, concatenated."""

    def __init__(self, name: str, branches: list[nn.Module], out_channels: int, expected: int) -> None:
        super().__init__()
        if not branches:
            raise ValueError(f"{name}: every branch width is 0; at least one branch is needed")
        check_out(name, out_channels, expected)
        self.branches = Parallel(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branches(x)


def _reduced(reduce: int, convs: list[tuple[int, Kernel]]) -> list[tuple[int, Kernel]]:
    """Prefix a 1x1 bottleneck reduction to `reduce` channels (none when 0)."""
    return ([(reduce, 1)] if reduce else []) + convs


def _branches(
    in_channels: int, chains: list[list[tuple[int, Kernel]]], pool_proj: int, pool: str, stride: int, *,
    act: str, norm: str,
) -> list[nn.Module]:  # fmt: skip
    """A conv-chain branch for every chain whose output width is not 0, then the pool branch (unless
    `pool_proj` is 0); each branch's first conv (or pooling) takes the stride."""
    mods: list[nn.Module] = [
        conv_chain(in_channels, convs, act=act, norm=norm, stride=stride) for convs in chains if convs[-1][0]
    ]
    if pool_proj:
        mods.append(pool_branch(in_channels, pool_proj, pool, stride, act=act, norm=norm))
    return mods


@register_block("inception")
class Inception(_Module):
    """GoogLeNet's Inception module (v1): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 pool -> 1x1, concatenated.

    Params (defaults: inception 3a): `c1`; `c3r`, `c3` (reduction and 3x3 widths); `c5r`, `c5`; `pool_proj`;
    `pool` (the pool branch's pooling, max). `c3r` / `c5r` = 0 drops the 1x1 bottleneck (the paper's naive
    module). `kernel5` (5) is the large branch's kernel (torchvision's GoogLeNet uses 3 there);
    `factorize5` replaces it by (kernel5 - 1) / 2 stacked 3x3 convs (Inception v2 / v3's factorisation).
    Output channels: c1 + c3 + c5 + pool_proj.
    """

    example_params: ClassVar[dict[str, Any]] = {"c1": 4, "c3r": 4, "c3": 4, "c5r": 2, "c5": 4, "pool_proj": 4}
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        c1: int = 64,
        c3r: int = 96,
        c3: int = 128,
        c5r: int = 16,
        c5: int = 32,
        pool_proj: int = 32,
        pool: str = "max",
        kernel5: int = 5,
        factorize5: bool = False,
    ) -> None:
        if kernel5 < 1 or kernel5 % 2 == 0:
            raise ValueError(f"inception kernel5 must be odd, got {kernel5}")
        if factorize5 and kernel5 < 3:
            raise ValueError(f"factorize5 needs kernel5 >= 3, got {kernel5}")
        big = [(c5, 3)] * ((kernel5 - 1) // 2) if factorize5 else [(c5, kernel5)]
        chains = [[(c1, 1)], _reduced(c3r, [(c3, 3)]), _reduced(c5r, big)]
        branches = _branches(in_channels, chains, pool_proj, pool, stride, act=act, norm=norm)
        super().__init__("inception", branches, out_channels, c1 + c3 + c5 + pool_proj)

    @classmethod
    def out_channels_for(
        cls, in_channels: int, *, c1: int = 64, c3: int = 128, c5: int = 32, pool_proj: int = 32, **_: Any
    ) -> int:
        return c1 + c3 + c5 + pool_proj


@register_block("inception_a")
class InceptionA(_Module):
    """Inception v3's 35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 (a 5x5 as two 3x3) | avg pool -> 1x1.

    Params (defaults: torchvision's Mixed_5b): `c1`; `c5r`, `c5` (the 5x5 branch of the released model; set
    `c5` 0 for the paper's figure-5 module); `c3r`, `c3` (the double-3x3 branch); `pool_proj`; `pool` (avg).
    Output channels: c1 + c5 + c3 + pool_proj.
    """

    example_params: ClassVar[dict[str, Any]] = {"c1": 4, "c5r": 2, "c5": 4, "c3r": 2, "c3": 4, "pool_proj": 4}
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        c1: int = 64,
        c5r: int = 48,
        c5: int = 64,
        c3r: int = 64,
        c3: int = 96,
        pool_proj: int = 32,
        pool: str = "avg",
    ) -> None:
        chains = [[(c1, 1)], _reduced(c5r, [(c5, 5)]), _reduced(c3r, [(c3, 3), (c3, 3)])]
        branches = _branches(in_channels, chains, pool_proj, pool, stride, act=act, norm=norm)
        super().__init__("inception_a", branches, out_channels, c1 + c5 + c3 + pool_proj)

    @classmethod
    def out_channels_for(
        cls, in_channels: int, *, c1: int = 64, c5: int = 64, c3: int = 96, pool_proj: int = 32, **_: Any
    ) -> int:
        return c1 + c5 + c3 + pool_proj


@register_block("inception_b")
class InceptionB(_Module):
    """Inception v3's 17x17 module: n x n convs factorised into 1 x n followed by n x 1.

    Branches: 1x1 (`c1`) | 1x1 (`c7r`) -> 1xn -> nx1 (`c7`) | 1x1 -> nx1 -> 1xn -> nx1 -> 1xn (`c7r` inside,
    `c7` out) | avg pool -> 1x1 (`pool_proj`). `n` is the factorised kernel (7). Defaults: torchvision's
    Mixed_6b.
    Output channels: c1 + 2 * c7 + pool_proj.
    """

    example_params: ClassVar[dict[str, Any]] = {"c1": 4, "c7r": 2, "c7": 4, "pool_proj": 4, "n": 3}
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        c1: int = 192,
        c7r: int = 128,
        c7: int = 192,
        pool_proj: int = 192,
        n: int = 7,
        pool: str = "avg",
    ) -> None:
        if n < 1 or n % 2 == 0:
            raise ValueError(f"inception_b n must be odd, got {n}")
        row, col = (1, n), (n, 1)
        chains = [
            [(c1, 1)],
            [(c7r, 1), (c7r, row), (c7, col)],
            [(c7r, 1), (c7r, col), (c7r, row), (c7r, col), (c7, row)],
        ]
        branches = _branches(in_channels, chains, pool_proj, pool, stride, act=act, norm=norm)
        super().__init__("inception_b", branches, out_channels, c1 + 2 * c7 + pool_proj)

    @classmethod
    def out_channels_for(
        cls, in_channels: int, *, c1: int = 192, c7: int = 192, pool_proj: int = 192, **_: Any
    ) -> int:
        return c1 + 2 * c7 + pool_proj


@register_block("inception_c")
class InceptionC(_Module):
    """Inception v3's 8x8 module with the expanded filter bank: 1x3 and 3x1 side by side on the same input.

    Branches: 1x1 (`c1`) | 1x1 (`c3r`) -> [1x3, 3x1] (`c3` each) | 1x1 (`c3dr`) -> 3x3 (`c3d`) -> [1x3, 3x1]
    (`c3d` each) | avg pool -> 1x1 (`pool_proj`). Defaults: torchvision's Mixed_7b.
    Output channels: c1 + 2 * c3 + 2 * c3d + pool_proj.
    """

    example_params: ClassVar[dict[str, Any]] = {
        "c1": 2,
        "c3r": 2,
        "c3": 2,
        "c3dr": 2,
        "c3d": 3,
        "pool_proj": 4,
    }
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        c1: int = 320,
        c3r: int = 384,
        c3: int = 384,
        c3dr: int = 448,
        c3d: int = 384,
        pool_proj: int = 192,
        pool: str = "avg",
    ) -> None:
        kw = {"act": act, "norm": norm}

        def fan(ch_in: int, ch_out: int) -> Parallel:
            return Parallel(
                [ConvNormAct(ch_in, ch_out, (1, 3), **kw), ConvNormAct(ch_in, ch_out, (3, 1), **kw)]
            )

        branches: list[nn.Module] = []
        if c1:
            branches.append(conv_chain(in_channels, [(c1, 1)], stride=stride, **kw))
        if c3:
            stem = conv_chain(in_channels, [(c3r, 1)], stride=stride, **kw)
            branches.append(nn.Sequential(*stem, fan(c3r, c3)))
        if c3d:
            stem = conv_chain(in_channels, [(c3dr, 1), (c3d, 3)], stride=stride, **kw)
            branches.append(nn.Sequential(*stem, fan(c3d, c3d)))
        if pool_proj:
            branches.append(pool_branch(in_channels, pool_proj, pool, stride, **kw))
        super().__init__("inception_c", branches, out_channels, c1 + 2 * c3 + 2 * c3d + pool_proj)

    @classmethod
    def out_channels_for(
        cls, in_channels: int, *, c1: int = 320, c3: int = 384, c3d: int = 384, pool_proj: int = 192, **_: Any
    ) -> int:
        return c1 + 2 * c3 + 2 * c3d + pool_proj


def parse_mixed(branches: Any, where: str) -> list[tuple[list[tuple[int, Kernel]], list[tuple[int, Kernel]]]]:
    """Branches whose last item may be a fan (a list of convs side by side) -> (chain, fan) pairs."""
    if not isinstance(branches, Sequence) or not branches:
        raise ValueError(f"{where}: branches must be a non-empty list of branches; got {branches!r}")
    parsed = []
    for branch in branches:
        last = branch[-1] if isinstance(branch, Sequence) and branch else None
        fanned = isinstance(last, Sequence) and bool(last) and isinstance(last[0], Sequence)
        chain = list(branch[:-1]) if fanned else branch
        convs = parse_branches([chain], where)[0] if chain else []
        fan = parse_branches([last], where)[0] if fanned else []
        if not convs and not fan:
            raise ValueError(f"{where}: every branch of `branches` needs at least one conv; got {branch!r}")
        parsed.append((convs, fan))
    return parsed


@register_block("inception_mixed")
class InceptionMixed(_Module):
    """A general Inception module written as data: conv-chain branches and a pooling branch, concatenated.

    Inception v4's 35x35 / 17x17 / 8x8 modules (its A / B / C) are this block with their branch widths.
    `branches`: conv lists (see the module docstring) where the last item of a branch may instead be a fan,
    a list of convs applied side by side to the branch so far (the 8x8 module's expanded filter bank, e.g.
    `[[384, 1], [[256, [1, 3]], [256, [3, 1]]]]`); `pool_proj`: the 3x3 pooling branch's 1x1 projection (0:
    no pooling branch); `pool` (avg). Each branch's first conv (or the pooling) takes the stride. Output
    channels: the last widths of the branches (every fan width) + pool_proj.
    """

    example_params: ClassVar[dict[str, Any]] = {
        "branches": [[[4, 1]], [[2, 1], [4, 3]], [[2, 1], [[2, [1, 3]], [2, [3, 1]]]]],
        "pool_proj": 4,
    }
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        branches: Any = None,
        pool_proj: int = 0,
        pool: str = "avg",
    ) -> None:
        kw = {"act": act, "norm": norm}
        mods: list[nn.Module] = []
        for convs, fan in parse_mixed(branches, "inception_mixed"):
            chain = conv_chain(in_channels, convs, stride=stride, **kw)
            if fan:
                ch, fan_stride = (convs[-1][0], 1) if convs else (in_channels, stride)
                side = Parallel(ConvNormAct(ch, c, k, fan_stride, **kw) for c, k in fan)
                chain = nn.Sequential(*chain, side)
            mods.append(chain)
        if pool_proj:
            mods.append(pool_branch(in_channels, pool_proj, pool, stride, **kw))
        expected = self.out_channels_for(in_channels, branches=branches, pool_proj=pool_proj)
        super().__init__("inception_mixed", mods, out_channels, expected)

    @classmethod
    def out_channels_for(cls, in_channels: int, *, branches: Any = None, pool_proj: int = 0, **_: Any) -> int:
        parsed = parse_mixed(branches, "inception_mixed")
        return sum(sum(c for c, _ in fan) if fan else convs[-1][0] for convs, fan in parsed) + pool_proj


# Inception v3's first grid reduction (torchvision's Mixed_6a, InceptionB): 35x35x288 -> 17x17x768.
V3_REDUCTION = [[[384, 3]], [[64, 1], [96, 3], [96, 3]]]


@register_block("inception_reduction")
class InceptionReduction(nn.Module):
    """Grid reduction: strided conv branches in parallel with a strided pooling, concatenated.

    Reducing the grid this way avoids both the representational bottleneck of pooling first and the cost of
    expanding first (Inception v3, section 5). `branches`: conv lists (see the module docstring); the last
    conv of each branch takes the stride and must have the same square kernel k, also the pooling window.
    `pool`: the pooling branch (max; "none" drops it); `padding`: "valid" (v3: 35 -> 17) or "same"
    (ceil(size / stride), e.g. for small inputs). Output channels: the branches' last widths + the input's
    (pool branch).
    """

    example_params: ClassVar[dict[str, Any]] = {"branches": [[[4, 3]], [[2, 1], [4, 3]]], "padding": "same"}
    example_channels: ClassVar[tuple[int, int]] = (8, 16)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 2,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        branches: Any = None,
        pool: str = "max",
        padding: str = "valid",
    ) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"inception_reduction padding must be 'valid' or 'same', got {padding!r}")
        parsed = parse_branches(V3_REDUCTION if branches is None else branches, "inception_reduction")
        windows = {convs[-1][1] for convs in parsed}
        if len(windows) != 1 or not isinstance(next(iter(windows)), int):
            raise ValueError(
                "inception_reduction: the last conv of every branch must have the same square kernel (the "
                f"window that the pooling shares), got {sorted(map(str, windows))}"
            )
        k = next(iter(windows))
        mods: list[nn.Module] = [
            conv_chain(
                in_channels, convs, act=act, norm=norm, stride=stride, stride_last=True, padding=padding
            )
            for convs in parsed
        ]
        if pool != "none":
            pad = k // 2 if padding == "same" else 0
            mods.append(channel_keeping_pool(pool, k, stride, pad, channels=in_channels, act=act, norm=norm))
        check_out(
            "inception_reduction",
            out_channels,
            self.out_channels_for(in_channels, branches=branches, pool=pool),
        )
        self.branches = Parallel(mods)

    @classmethod
    def out_channels_for(cls, in_channels: int, *, branches: Any = None, pool: str = "max", **_: Any) -> int:
        parsed = parse_branches(V3_REDUCTION if branches is None else branches, "inception_reduction")
        return sum(convs[-1][0] for convs in parsed) + (0 if pool == "none" else in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branches(x)


# Inception-ResNet-v2's 35x35 block ("block35"); conf/model/inception_resnet_small has the 17x17 and 8x8 ones.
IRV2_BLOCK_A = [[[32, 1]], [[32, 1], [32, 3]], [[32, 1], [48, 3], [64, 3]]]


@register_block("inception_resnet")
class InceptionResNet(nn.Module):
    """Inception-ResNet block: inception branches -> concat -> linear 1x1 projection -> scaled residual, act.

    `branches`: conv lists (see the module docstring; default: Inception-ResNet-v2's 35x35 block); `scale`
    (0.17): the residual is multiplied by it before the sum (Szegedy et al. scale by 0.1-0.3 to keep very wide
    residual nets stable); `final_act`: the activation after the sum (off in the network's last block).
    The projection has a bias and no norm (the paper's linear "1x1 conv, no activation"). With in != out or
    a stride, the shortcut is a (strided) 1x1 conv + norm and each branch's first conv takes the stride.
    A maxout activation after the sum needs pieces x out channels: projection and shortcut (then always a
    1x1 conv) produce them.
    """

    example_params: ClassVar[dict[str, Any]] = {"branches": [[[4, 1]], [[4, 1], [4, 3]]], "scale": 0.2}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        branches: Any = None,
        scale: float = 0.17,
        final_act: bool = True,
    ) -> None:
        super().__init__()
        parsed = parse_branches(IRV2_BLOCK_A if branches is None else branches, "inception_resnet")
        self.branches = Parallel(
            conv_chain(in_channels, c, act=act, norm=norm, stride=stride) for c in parsed
        )
        width = sum(convs[-1][0] for convs in parsed)
        summed = out_channels * (act_expansion(act) if final_act else 1)
        self.project = ConvNormAct(width, summed, 1, act="none", norm="none", bias=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != summed or stride != 1:
            self.shortcut = ConvNormAct(in_channels, summed, 1, stride, act="none", norm=norm)
        self.scale = float(scale)
        self.act = create_act(act, summed) if final_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.scale * self.project(self.branches(x)))
