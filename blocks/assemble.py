"""Spec -> nn.Module: the one place a network is assembled from plain data.

A spec is a plain dict (what YAML holds, what a search samples, what a checkpoint stores):

    name: resnet18                 # free text
    in_channels: 3                 # input image channels
    num_classes: 10
    input_size: 32                 # square input side, pixels (used to size FC heads and check shapes)
    act: relu                      # network-wide defaults, overridable per layer
    norm: batchnorm
    width_mult: 1.0                # multiplies every `channels` (MobileNet's width multiplier)
    stem:   [ {block: conv, channels: 64, kernel: 7, stride: 2}, {block: pool, type: max, kernel: 3, stride: 2} ]
    small_stem: [ {block: conv, channels: 64, kernel: 3} ]   # used instead of stem when input_size <= 64
    stages: [ {block: basic, channels: 64, repeat: 2, stride: 1}, ... ]
    head:   {type: linear, pool: avg, dropout: 0.0}

Each layer entry names a registered block; `channels` (output channels), `stride`, `repeat`, `act`,
`norm` are reserved keys and every other key is passed to the block as a parameter. In a repeated entry
the first block takes the stride, the rest stride 1. The whole spec is checked against the block contract
(blocks.contract) before anything is built.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from blocks.contract import RESERVED, check_spec
from blocks.registry import BLOCKS, HEADS


def scaled(channels: int, width_mult: float) -> int:
    """`channels` times the width multiplier, at least 1."""
    return max(1, int(round(channels * width_mult)))


# Inputs at most this many pixels wide use the spec's `small_stem` (if it has one) instead of `stem`: the
# CIFAR-style adaptation of an ImageNet network, so one model file serves both scales.
SMALL_INPUT = 64


def stem_section(spec: dict[str, Any]) -> str:
    """Which stem a spec uses at its input size: "small_stem" for small inputs when given, else "stem"."""
    small = int(spec.get("input_size", 224)) <= SMALL_INPUT and spec.get("small_stem") is not None
    return "small_stem" if small else "stem"


def iter_layers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (path, entry) for every stem and stage entry of a spec, in order."""
    for section in (stem_section(spec), "stages"):
        for i, entry in enumerate(spec.get(section) or []):
            yield f"{section}.{i}", entry


def block_out_channels(block_cls: Any, in_channels: int, params: dict[str, Any]) -> int:
    """Output channels of a block whose entry gives none: its own rule, else unchanged."""
    rule = getattr(block_cls, "out_channels_for", None)
    return int(rule(in_channels, **params)) if rule else in_channels


def build_block(
    entry: dict[str, Any],
    in_channels: int,
    *,
    act: str,
    norm: str,
    width_mult: float = 1.0,
    where: str = "layer",
) -> tuple[nn.Module, int]:
    """Build one (possibly repeated) layer entry, checked by `check_spec`; returns the module and its output
    channels. A block's own refusal (groups that do not divide its channels) is prefixed with `where`."""
    block_cls = BLOCKS.get(entry["block"])
    params = {k: v for k, v in entry.items() if k not in RESERVED}
    act = entry.get("act", act)
    norm = entry.get("norm", norm)
    repeat = int(entry.get("repeat", 1))
    stride = entry.get("stride", 1)
    mods = []
    ch = in_channels
    for i in range(repeat):
        if entry.get("channels") is not None:
            out = scaled(int(entry["channels"]), width_mult)
        else:
            out = block_out_channels(block_cls, ch, params)
        try:
            mods.append(block_cls(ch, out, stride if i == 0 else 1, act=act, norm=norm, **params))
        except TypeError as e:
            raise ValueError(f"{where} ({entry['block']}) rejected its parameters {params}: {e}") from None
        except (ValueError, KeyError) as e:
            text = e.args[0] if e.args else type(e).__name__
            kind = KeyError if isinstance(e, KeyError) else ValueError
            raise kind(f"{where} ({entry['block']}): {text}") from None
        ch = out
    return (mods[0] if repeat == 1 else nn.Sequential(*mods)), ch


class Network(nn.Module):
    """A classifier assembled from a spec: `features` (stem + stages, one child per entry) and `head`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        check_spec(spec)  # before anything is built: one message naming the bad field
        self.spec = copy.deepcopy(spec)
        act = spec.get("act", "relu")
        norm = spec.get("norm", "batchnorm")
        wm = float(spec.get("width_mult", 1.0))
        in_ch = int(spec.get("in_channels", 3))
        size = int(spec.get("input_size", 32))
        self.features = nn.Sequential()
        self.layer_names: list[str] = []
        ch = in_ch
        for path, entry in iter_layers(spec):
            where = f"{spec.get('name') or 'spec'}: {path}"
            mod, ch = build_block(entry, ch, act=act, norm=norm, width_mult=wm, where=where)
            self.features.append(mod)
            self.layer_names.append(path)
        self.out_channels = ch
        self._link_blocks()
        feat_hw = self._feature_size(in_ch, size)
        head = dict(spec.get("head") or {"type": "linear"})
        head_type = head.pop("type", "linear")
        self.head = HEADS.get(head_type)(
            ch, int(spec["num_classes"]), feature_size=feat_hw, act=head.pop("act", act), **head
        )

    def _link_blocks(self) -> None:
        """Blocks that share state across a network (FractalNet's global drop-path: one column in every
        block) define `link_network(instances)`; it is called once with their instances in forward order."""
        groups: dict[Any, list[nn.Module]] = {}
        for mod in self.features.modules():
            link = getattr(type(mod), "link_network", None)
            if link is not None:
                groups.setdefault(link, []).append(mod)
        for link, mods in groups.items():
            link(mods)

    @torch.no_grad()
    def _feature_size(self, in_ch: int, size: int) -> tuple[int, int]:
        """Spatial size after the features, checked layer by layer (clear error if it shrinks below 1x1)."""
        was = self.training
        self.eval()
        x = torch.zeros(1, in_ch, size, size)
        try:
            for path, mod in zip(self.layer_names, self.features, strict=True):
                try:
                    x = mod(x)
                except RuntimeError as e:
                    raise ValueError(
                        f"{self.spec.get('name', 'spec')}: layer {path} cannot run on a {tuple(x.shape[1:])} "
                        f"input (input_size={size}): {str(e).splitlines()[0]}. Use a larger input_size or fewer "
                        "strided/pooling layers."
                    ) from None
                if x.shape[-1] < 1 or x.shape[-2] < 1:
                    raise ValueError(
                        f"{self.spec.get('name', 'spec')}: feature map shrinks below 1x1 at {path} "
                        f"(input_size={size}); use a larger input_size or fewer strided/pooling layers"
                    )
        finally:
            self.train(was)
        return int(x.shape[-2]), int(x.shape[-1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(spec: dict[str, Any]) -> Network:
    """Assemble the network a spec describes (ValueError/KeyError with the valid choices on bad input)."""
    return Network(spec)
