"""Classifier heads by name.

Every head is `Head(in_channels, num_classes, *, feature_size, act, **params)`: `feature_size` is the
(height, width) of the feature map at the training input size (heads that flatten it need it), `act` the
activation of hidden layers (maxout works: hidden layers then produce twice the units). Heads:

- `linear`: global pooling (avg / max / avg_max sum / avg_max_cat), dropout, one linear layer (NiN, ResNet).
- `fc`: flatten the map (optionally adaptive-pooled to `pool_to` first, like torchvision's AlexNet 6x6 and
  VGG 7x7), then an MLP of `hidden` widths with dropout (LeNet, AlexNet, VGG).
- `fc_conv_avg_pred`: the same MLP as convolutions (the first conv's kernel is the FC's input `window`,
  default the whole training map; 1x1 convs after), class scores at every position, then averaged. Same
  parameters as `fc` with the same window, but it runs on any larger map (Mishkin et al.'s "conv, avg
  predictions"; `padding` keeps positions at the border, their "pool5 pad").
- `fc_conv_avg_feat`: the same convs up to the last hidden layer (or hidden layer `average_after`: 1 is
  Mishkin et al.'s "fc6 ave"), features averaged over positions, then the remaining layers as FC. Dropout
  then falls on the averaged features (one mask per image, as in `fc`), not on every position.
- `gap`: NiN's classifier: dropout, a 1x1 conv to `num_classes` maps, global average pooling; no FC.
- `spp`: spatial pyramid pooling (He et al.): pool the map to each of `levels` grids, concatenate, then the
  MLP. Any input size gives the same feature count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from blocks.layers import ConvNormAct, act_expansion, create_act, resolve_padding
from blocks.registry import HEADS

GLOBAL_POOLS = ("avg", "max", "avg_max", "avg_max_cat")


class GlobalPool(nn.Module):
    """Global pooling, flattened: avg, max, avg_max (sum of the two) or avg_max_cat (2x the features)."""

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        if kind not in GLOBAL_POOLS:
            raise KeyError(f"unknown global pooling {kind!r}; valid: {', '.join(GLOBAL_POOLS)}")
        self.kind = kind

    @property
    def multiplier(self) -> int:
        """Output features per input channel."""
        return 2 if self.kind == "avg_max_cat" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=(2, 3))
        if self.kind == "max":
            return x.amax(dim=(2, 3))
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        return avg + mx if self.kind == "avg_max" else torch.cat([avg, mx], dim=1)

    def extra_repr(self) -> str:
        return self.kind


def _pair(v: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, Sequence) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return int(v[0]), int(v[1])
    raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")


def _widths(hidden: int | Sequence[int] | None) -> list[int]:
    if hidden is None:
        return []
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    if any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"hidden widths must be positive ints, got {hidden!r}")
    return widths


def mlp(width: int, hidden: Sequence[int], num_classes: int, *, act: str, dropout: float, bias: bool = True):
    """Linear -> act -> dropout for each hidden width, then the classifier layer (a list of modules)."""
    layers: list[nn.Module] = []
    expand = act_expansion(act)
    for h in hidden:
        layers += [nn.Linear(width, h * expand, bias=bias), create_act(act, h * expand, inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes, bias=bias))
    return layers


@HEADS.register("linear")
class LinearHead(nn.Sequential):
    """Global pooling (`pool`), dropout, one linear layer (NiN / ResNet style)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        feature_size: tuple[int, int],
        act: str = "relu",
        pool: str = "avg",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        gp = GlobalPool(pool)
        super().__init__(
            gp, nn.Dropout(dropout), nn.Linear(in_channels * gp.multiplier, num_classes, bias=bias)
        )


@HEADS.register("fc")
class FCHead(nn.Sequential):
    """Flatten the feature map, then an MLP (`hidden` widths) with dropout (AlexNet / VGG style).

    `pool_to` (int or pair) first adaptive-average-pools the map to that size, so the head's size does not
    depend on the input size.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        feature_size: tuple[int, int],
        act: str = "relu",
        hidden: int | Sequence[int] | None = (4096, 4096),
        dropout: float = 0.5,
        pool_to: int | Sequence[int] | None = None,
        bias: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        h, w = feature_size
        if pool_to is not None:
            h, w = _pair(pool_to, "pool_to")
            layers.append(nn.AdaptiveAvgPool2d((h, w)))
        layers.append(nn.Flatten())
        layers += mlp(in_channels * h * w, _widths(hidden), num_classes, act=act, dropout=dropout, bias=bias)
        super().__init__(*layers)


class _FCConvHead(nn.Module):
    """FC layers as convolutions; `average`: are predictions ("pred") or features ("feat") averaged."""

    average = "pred"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        feature_size: tuple[int, int],
        act: str = "relu",
        hidden: int | Sequence[int] | None = (4096, 4096),
        dropout: float = 0.5,
        window: int | Sequence[int] | None = None,
        padding: int | str = 0,
        pool: str = "avg",
        average_after: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = feature_size if window is None else _pair(window, "window")
        ph, pw = _pair(resolve_padding(padding, (kh, kw)), "padding")
        if kh > feature_size[0] + 2 * ph or kw > feature_size[1] + 2 * pw:
            raise ValueError(
                f"{type(self).__name__}: window {kh}x{kw} does not fit the "
                f"{feature_size[0]}x{feature_size[1]} "
                f"feature map (padding {ph}x{pw}); use a smaller window or a larger input_size"
            )
        widths = _widths(hidden)
        self.pool = GlobalPool(pool)
        if self.average == "pred":
            if average_after is not None:
                raise ValueError("average_after is a parameter of fc_conv_avg_feat, not fc_conv_avg_pred")
            if self.pool.multiplier != 1:
                raise ValueError(f"{pool!r} cannot average predictions; valid: avg, max, avg_max")
            n_conv = len(widths)
        else:
            n_conv = len(widths) if average_after is None else average_after
            if not 0 <= n_conv <= len(widths):
                raise ValueError(
                    f"average_after must be between 0 and the {len(widths)} hidden layers, got {n_conv}"
                )
        layers: list[nn.Module] = []
        ch, kernel, conv_pad = in_channels, (kh, kw), (ph, pw)
        for i, out in enumerate(widths[:n_conv]):
            # An FC layer as a conv: the first sees the FC's input window, the others are 1x1.
            layers.append(ConvNormAct(ch, out, kernel, act=act, norm="none", padding=conv_pad, bias=bias))
            # The averaged-features head drops out the averaged features, as an FC layer would.
            if dropout and (self.average == "pred" or i < n_conv - 1):
                layers.append(nn.Dropout(dropout))
            ch, kernel, conv_pad = out, 1, 0
        if self.average == "pred":
            layers.append(
                ConvNormAct(ch, num_classes, kernel, act="none", norm="none", padding=conv_pad, bias=bias)
            )
            self.convs, self.tail = nn.Sequential(*layers), nn.Identity()
        else:
            tail = [nn.Dropout(dropout)] if dropout and n_conv else []
            tail += mlp(
                ch * self.pool.multiplier, widths[n_conv:], num_classes, act=act, dropout=dropout, bias=bias
            )
            self.convs, self.tail = nn.Sequential(*layers), nn.Sequential(*tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.pool(self.convs(x)))


@HEADS.register("fc_conv_avg_pred")
class FCConvAvgPredHead(_FCConvHead):
    """FC layers as convolutions over the feature map; class scores at every position, averaged (`pool`)."""

    average = "pred"


@HEADS.register("fc_conv_avg_feat")
class FCConvAvgFeatHead(_FCConvHead):
    """FC layers as convolutions up to hidden layer `average_after` (default: all), features averaged
    (`pool`), then the remaining layers as an FC MLP.
    """

    average = "feat"


@HEADS.register("gap")
class GAPHead(nn.Sequential):
    """NiN: dropout, a 1x1 conv to `num_classes` maps (`final_act`: NiN's ReLU after it), global average."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        feature_size: tuple[int, int],
        act: str = "relu",
        dropout: float = 0.0,
        final_act: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__(
            nn.Dropout(dropout),
            ConvNormAct(
                in_channels, num_classes, 1, act=act if final_act else "none", norm="none", bias=bias
            ),
            GlobalPool("avg"),
        )


class SpatialPyramidPool(nn.Module):
    """Pool the map to each of `levels` grids (l x l bins), concatenate the bins: C * sum(l^2) features."""

    def __init__(self, levels: Sequence[int] = (1, 2, 4), pool: str = "max") -> None:
        super().__init__()
        if not levels or any(not isinstance(lv, int) or lv < 1 for lv in levels):
            raise ValueError(f"spp levels must be positive ints, got {levels!r}")
        pools = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}
        if pool not in pools:
            raise KeyError(f"unknown spp pooling {pool!r}; valid: {', '.join(pools)}")
        self.levels = tuple(levels)
        self.pools = nn.ModuleList(pools[pool](lv) for lv in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p(x).flatten(1) for p in self.pools], dim=1)


@HEADS.register("spp")
class SPPHead(nn.Sequential):
    """Spatial pyramid pooling (`levels`, `pool` max or avg), then an MLP of `hidden` widths with dropout."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        feature_size: tuple[int, int],
        act: str = "relu",
        levels: Sequence[int] = (1, 2, 4),
        pool: str = "max",
        hidden: int | Sequence[int] | None = (4096, 4096),
        dropout: float = 0.5,
        bias: bool = True,
    ) -> None:
        spp = SpatialPyramidPool(list(levels), pool)
        width = in_channels * sum(lv * lv for lv in spp.levels)
        super().__init__(spp, *mlp(width, _widths(hidden), num_classes, act=act, dropout=dropout, bias=bias))


def create_head(
    name: str,
    in_channels: int,
    num_classes: int,
    *,
    feature_size: tuple[int, int],
    act: str = "relu",
    **params: Any,
) -> nn.Module:
    """Head module by name (KeyError listing the valid heads otherwise)."""
    return HEADS.get(name)(in_channels, num_classes, feature_size=feature_size, act=act, **params)
