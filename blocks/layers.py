"""Layer factories by name: activations, norms and the conv-norm-act unit every block is made of."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from blocks.registry import Registry

ACTS = Registry("activation")
NORMS = Registry("norm")


class Maxout(nn.Module):
    """Maxout over `pieces` adjacent channel groups: C*pieces channels in, C out."""

    def __init__(self, pieces: int = 2) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        if c % self.pieces:
            raise ValueError(f"maxout with {self.pieces} pieces needs channels divisible by it, got {c}")
        return x.view(n, c // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)


class ScaledTanh(nn.Module):
    """LeCun's scaled tanh, 1.7159 * tanh(2x/3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class ShiftedSoftplus(nn.Module):
    """softplus(x) - log 2, so that f(0) = 0 (Mishkin et al.'s variant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x) - math.log(2.0)


ACTS.register("relu")(lambda ch: nn.ReLU(inplace=True))
ACTS.register("leaky_relu")(lambda ch: nn.LeakyReLU(0.01, inplace=True))
# "very leaky": slope 1/3, as in Mishkin et al.
ACTS.register("very_leaky_relu")(lambda ch: nn.LeakyReLU(1.0 / 3.0, inplace=True))
ACTS.register("prelu")(lambda ch: nn.PReLU(ch))
ACTS.register("rrelu")(lambda ch: nn.RReLU())
ACTS.register("elu")(lambda ch: nn.ELU(inplace=True))
ACTS.register("selu")(lambda ch: nn.SELU(inplace=True))
ACTS.register("maxout")(lambda ch: Maxout(2))
ACTS.register("tanh")(lambda ch: nn.Tanh())
ACTS.register("scaled_tanh")(lambda ch: ScaledTanh())
ACTS.register("sigmoid")(lambda ch: nn.Sigmoid())
ACTS.register("softplus")(lambda ch: ShiftedSoftplus())
ACTS.register("silu")(lambda ch: nn.SiLU(inplace=True))
ACTS.register("gelu")(lambda ch: nn.GELU())
ACTS.register("none")(lambda ch: nn.Identity())

# Channels a layer must produce per output channel of the activation (maxout takes 2 pieces per channel).
_ACT_EXPANSION = {"maxout": 2}


def act_expansion(name: str) -> int:
    """How many input channels the activation `name` consumes per output channel."""
    ACTS.get(name)
    return _ACT_EXPANSION.get(name, 1)


def create_act(name: str, channels: int = 1) -> nn.Module:
    """Activation module by name; `channels` is the number of channels it receives (for PReLU)."""
    return ACTS.get(name)(channels)


# Norm names also say where the norm goes: "batchnorm" right after the conv (before the activation),
# "batchnorm_after" after the activation (Mishkin et al. found this better), "none" for no norm.
NORMS.register("batchnorm")(lambda ch: nn.BatchNorm2d(ch))
NORMS.register("batchnorm_after")(lambda ch: nn.BatchNorm2d(ch))
NORMS.register("groupnorm")(lambda ch: nn.GroupNorm(math.gcd(32, ch), ch))
NORMS.register("none")(lambda ch: nn.Identity())


def create_norm(name: str, channels: int) -> nn.Module:
    """Norm module by name for `channels` channels."""
    return NORMS.get(name)(channels)


def norm_after_act(norm: str) -> bool:
    """Whether the norm `norm` is placed after the activation."""
    NORMS.get(norm)
    return norm.endswith("_after")


def same_padding(kernel: int | tuple[int, int], dilation: int = 1) -> int | tuple[int, int]:
    """Padding that keeps the spatial size at stride 1 for odd kernels."""
    if isinstance(kernel, tuple | list):
        return tuple(dilation * (k - 1) // 2 for k in kernel)  # type: ignore[return-value]
    return dilation * (kernel - 1) // 2


class ConvNormAct(nn.Sequential):
    """Conv -> norm -> act (or conv -> act -> norm for `*_after` norms).

    With a maxout activation the conv produces `pieces * out_channels` channels so that the unit still
    outputs `out_channels`. The conv has a bias unless a norm directly follows it (`bias=None`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        *,
        act: str = "relu",
        norm: str = "batchnorm",
        groups: int = 1,
        dilation: int = 1,
        padding: int | tuple[int, int] | None = None,
        bias: bool | None = None,
    ) -> None:
        after = norm_after_act(norm)
        expand = act_expansion(act)
        conv_out = out_channels * expand
        if in_channels % groups or conv_out % groups:
            raise ValueError(
                f"conv with {groups} groups needs in ({in_channels}) and out ({conv_out}) channels "
                "divisible by the group count"
            )
        if bias is None:
            bias = norm == "none" or after
        conv = nn.Conv2d(
            in_channels,
            conv_out,
            kernel,
            stride,
            padding=same_padding(kernel, dilation) if padding is None else padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        if after:
            layers = [conv, create_act(act, conv_out), create_norm(norm, out_channels)]
        else:
            layers = [conv, create_norm(norm, conv_out), create_act(act, conv_out)]
        super().__init__(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.out_channels = out_channels
