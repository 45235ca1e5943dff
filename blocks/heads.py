"""Classifier heads by name: global pooling + linear, FC MLP, ..."""

from __future__ import annotations

from torch import nn

from blocks.layers import create_act
from blocks.registry import HEADS


def global_pool(kind: str) -> nn.Module:
    if kind == "avg":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "max":
        return nn.AdaptiveMaxPool2d(1)
    raise KeyError(f"unknown global pooling {kind!r}; valid: avg, max")


@HEADS.register("linear")
class LinearHead(nn.Sequential):
    """Global pooling, dropout, one linear layer (NiN / ResNet style)."""

    def __init__(self, in_channels, num_classes, *, feature_size, act="relu", pool="avg", dropout=0.0):
        super().__init__(global_pool(pool), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, num_classes))


@HEADS.register("fc")
class FCHead(nn.Sequential):
    """Flatten the feature map, then an MLP (`hidden` widths) with dropout (AlexNet / VGG style)."""

    def __init__(self, in_channels, num_classes, *, feature_size, act="relu", hidden=(4096, 4096), dropout=0.5,
                 pool_to=None):
        layers: list[nn.Module] = []
        h, w = feature_size
        if pool_to is not None:
            layers.append(nn.AdaptiveAvgPool2d(pool_to))
            h = w = pool_to
        layers.append(nn.Flatten())
        width = in_channels * h * w
        for hdim in hidden:
            layers += [nn.Linear(width, hdim), create_act(act, hdim), nn.Dropout(dropout)]
            width = hdim
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
