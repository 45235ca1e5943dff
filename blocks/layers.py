"""Layer factories by name: activations, norms, convs and the conv-norm-act unit every block is made of."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from blocks.registry import Registry

ACTS = Registry("activation")
NORMS = Registry("norm")
CONVS = Registry("conv type")


# ----------------------------------------------------------------------------------------------- activations


class Maxout(nn.Module):
    """Maxout over `pieces` adjacent channels: C*pieces channels in, C out (c = max of c*p .. c*p+p-1)."""

    def __init__(self, pieces: int = 2) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"maxout needs at least 1 piece, got {pieces}")
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c % self.pieces:
            raise ValueError(f"maxout with {self.pieces} pieces needs channels divisible by it, got {c}")
        return x.unflatten(1, (c // self.pieces, self.pieces)).amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class ScaledTanh(nn.Module):
    """LeCun's scaled tanh, 1.7159 * tanh(2x/3): unit gain at the origin region, f(+-1) = +-1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class ShiftedSoftplus(nn.Module):
    """softplus(x) - log 2, so that f(0) = 0 (Mishkin et al.'s variant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x) - math.log(2.0)


# Factories take (channels, inplace). `channels` is what the activation receives (PReLU learns one slope per
# channel); `inplace` is only safe right after a layer whose output nothing else reads, so it defaults off.
ACTS.register("relu")(lambda ch, inplace=False: nn.ReLU(inplace=inplace))
# ReLU capped at 6 (MobileNet v1 / v2: robust under low-precision arithmetic)
ACTS.register("relu6")(lambda ch, inplace=False: nn.ReLU6(inplace=inplace))
ACTS.register("leaky_relu")(lambda ch, inplace=False: nn.LeakyReLU(0.01, inplace=inplace))
# "very leaky": slope 1/3, as in Mishkin et al.; their learned colour transforms use slope 0.5
ACTS.register("very_leaky_relu")(lambda ch, inplace=False: nn.LeakyReLU(1.0 / 3.0, inplace=inplace))
ACTS.register("leaky_relu_half")(lambda ch, inplace=False: nn.LeakyReLU(0.5, inplace=inplace))
ACTS.register("prelu")(lambda ch, inplace=False: nn.PReLU(ch))
# Random slope in [1/8, 1/3] per element in training, their mean at test time (Xu et al.).
ACTS.register("rrelu")(lambda ch, inplace=False: nn.RReLU(1.0 / 8.0, 1.0 / 3.0, inplace=inplace))
ACTS.register("elu")(lambda ch, inplace=False: nn.ELU(1.0, inplace=inplace))
ACTS.register("selu")(lambda ch, inplace=False: nn.SELU(inplace=inplace))
ACTS.register("maxout")(lambda ch, inplace=False: Maxout(2))
ACTS.register("tanh")(lambda ch, inplace=False: nn.Tanh())
ACTS.register("scaled_tanh")(lambda ch, inplace=False: ScaledTanh())
ACTS.register("sigmoid")(lambda ch, inplace=False: nn.Sigmoid())
ACTS.register("softplus")(lambda ch, inplace=False: ShiftedSoftplus())
ACTS.register("silu")(lambda ch, inplace=False: nn.SiLU(inplace=inplace))
ACTS.register("gelu")(lambda ch, inplace=False: nn.GELU())
ACTS.register("none")(lambda ch, inplace=False: nn.Identity())

# Channels a layer must produce per output channel of the activation (maxout takes 2 pieces per channel).
_ACT_EXPANSION = {"maxout": 2}


def act_expansion(name: str) -> int:
    """How many input channels the activation `name` consumes per output channel (2 for maxout, else 1)."""
    ACTS.get(name)
    return _ACT_EXPANSION.get(name, 1)


def create_act(name: str, channels: int = 1, *, inplace: bool = False) -> nn.Module:
    """Activation module by name.

    Args:
        channels: channels the activation receives (PReLU's slope count; maxout outputs channels / 2).
        inplace: overwrite the input (saves memory; only where no other layer reads that tensor).
    """
    return ACTS.get(name)(channels, inplace)


# ----------------------------------------------------------------------------------------------------- norms

# Norm names also say where the norm goes: "batchnorm" right after the conv (before the activation),
# "batchnorm_after" after the activation (Mishkin et al. found this better), "none" for no norm. The
# "_noaffine" variants have no learned scale and shift (Caffe's BatchNorm layer without a Scale layer).
NORMS.register("batchnorm")(lambda ch: nn.BatchNorm2d(ch))
NORMS.register("batchnorm_after")(lambda ch: nn.BatchNorm2d(ch))
NORMS.register("batchnorm_noaffine")(lambda ch: nn.BatchNorm2d(ch, affine=False))
NORMS.register("batchnorm_after_noaffine")(lambda ch: nn.BatchNorm2d(ch, affine=False))
NORMS.register("groupnorm")(lambda ch: nn.GroupNorm(math.gcd(32, ch), ch))
NORMS.register("none")(lambda ch: nn.Identity())
_NORMS_AFTER_ACT = {"batchnorm_after", "batchnorm_after_noaffine"}


def create_norm(name: str, channels: int) -> nn.Module:
    """Norm module by name for `channels` channels (nn.Identity for "none")."""
    return NORMS.get(name)(channels)


def norm_after_act(norm: str) -> bool:
    """Whether the norm `norm` is placed after the activation."""
    NORMS.get(norm)
    return norm in _NORMS_AFTER_ACT


# ----------------------------------------------------------------------------------------------------- convs


def same_padding(kernel: int | tuple[int, int], dilation: int = 1) -> int | tuple[int, int]:
    """Padding that keeps the size at stride 1 for odd kernels (and gives ceil(size/stride) at stride s)."""
    if isinstance(kernel, tuple | list):
        return tuple(dilation * (k - 1) // 2 for k in kernel)  # type: ignore[return-value]
    return dilation * (kernel - 1) // 2


def resolve_padding(
    padding: int | tuple[int, int] | str | None, kernel: int | tuple[int, int], dilation: int = 1
) -> int | tuple[int, int]:
    """`padding` as ints: None or "same" -> same_padding(kernel), "valid" -> 0, ints/tuples unchanged."""
    if padding is None or padding == "same":
        return same_padding(kernel, dilation)
    if padding == "valid":
        return 0
    if isinstance(padding, str):
        raise ValueError(f"unknown padding {padding!r}; valid: an int, a pair of ints, 'same', 'valid'")
    return tuple(padding) if isinstance(padding, list) else padding  # type: ignore[return-value]


class ConvNormAct(nn.Sequential):
    """Conv -> norm -> act (or conv -> act -> norm for `*_after` norms).

    With a maxout activation the conv produces `pieces * out_channels` channels so that the unit still
    outputs `out_channels`. The conv has a bias unless a norm directly follows it (`bias=None`); pass
    `bias=True/False` to force it. `padding` is an int, a pair, "same" (default) or "valid".
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
        padding: int | tuple[int, int] | str | None = None,
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
            tuple(kernel) if isinstance(kernel, list) else kernel,
            tuple(stride) if isinstance(stride, list) else stride,
            padding=resolve_padding(padding, kernel, dilation),
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        # In place is safe here: the activation's input is the fresh output of the conv or the norm.
        if after:
            layers = [conv, create_act(act, conv_out, inplace=True), create_norm(norm, out_channels)]
        else:
            layers = [conv, create_norm(norm, conv_out), create_act(act, conv_out, inplace=True)]
        super().__init__(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.out_channels = out_channels


@CONVS.register("standard")
def _standard(in_channels, out_channels, kernel, stride, *, act, norm, dilation=1, groups=1, bias=None):
    return ConvNormAct(
        in_channels,
        out_channels,
        kernel,
        stride,
        act=act,
        norm=norm,
        dilation=dilation,
        groups=groups,
        bias=bias,
    )


@CONVS.register("depthwise_separable")
def _separable(in_channels, out_channels, kernel, stride, *, act, norm, dilation=1, groups=1, bias=None):
    # MobileNet v1: a k x k depthwise conv-norm-act (it takes the stride), then a 1x1 pointwise one.
    return nn.Sequential(
        ConvNormAct(
            in_channels,
            in_channels,
            kernel,
            stride,
            act=act,
            norm=norm,
            dilation=dilation,
            groups=in_channels,
            bias=bias,
        ),
        ConvNormAct(in_channels, out_channels, 1, act=act, norm=norm, groups=groups, bias=bias),
    )


@CONVS.register("factorized")
def _factorized(in_channels, out_channels, kernel, stride, *, act, norm, dilation=1, groups=1, bias=None):
    # Inception v3: k x k as 1 x k then k x 1, each a conv-norm-act; the stride is split the same way.
    if not isinstance(kernel, int) or not isinstance(stride, int):
        raise ValueError(f"factorized conv needs a square kernel and stride, got {kernel} / {stride}")
    return nn.Sequential(
        ConvNormAct(
            in_channels,
            out_channels,
            (1, kernel),
            (1, stride),
            act=act,
            norm=norm,
            dilation=dilation,
            groups=groups,
            bias=bias,
        ),
        ConvNormAct(
            out_channels,
            out_channels,
            (kernel, 1),
            (stride, 1),
            act=act,
            norm=norm,
            dilation=dilation,
            groups=groups,
            bias=bias,
        ),
    )


def create_conv2d(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int] = 3,
    stride: int = 1,
    *,
    act: str = "relu",
    norm: str = "batchnorm",
    dilation: int = 1,
    groups: int = 1,
    bias: bool | None = None,
) -> nn.Module:
    """A conv unit by name ("standard", "depthwise_separable", "factorized"), each built from ConvNormAct."""
    return CONVS.get(kind)(
        in_channels,
        out_channels,
        kernel,
        stride,
        act=act,
        norm=norm,
        dilation=dilation,
        groups=groups,
        bias=bias,
    )
