"""Parameter and MAC counting, the analytic MAC estimate, spec costs on the meta device, and the summary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from blocks import build_model
from blocks.cost import (
    count_macs,
    count_macs_per_module,
    count_params,
    default_input_shape,
)
from blocks.summary import LayerRow, format_summary, human, summarize
from nas.latency.costs import spec_costs


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8x8x8 outputs, 3*9 MACs each: 13,824
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2),  # 16x4x4 outputs, (8/2)*9 MACs each: 9,216
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),  # 10 outputs, 16 MACs each: 160
    )


SMALL_NET_MACS = 8 * 8 * 8 * 3 * 9 + 16 * 4 * 4 * 4 * 9 + 10 * 16
SMALL_NET_PARAMS = (3 * 8 * 9 + 8) + (16 * 4 * 9 + 16) + (16 * 10 + 10)

SMALL_SPEC = {
    "name": "small",
    "in_channels": 3,
    "num_classes": 10,
    "input_size": 32,
    "act": "maxout",
    "stem": [{"block": "colorspace", "hidden": [10]}, {"block": "conv", "channels": 16, "stride": 2}],
    "stages": [
        {"block": "conv", "channels": 24, "repeat": 2, "groups": 2},
        {"block": "pool", "type": "avg_max_cat", "kernel": 3, "stride": 2, "ceil": True},
        {"block": "pool", "type": "strided_conv", "kernel": 3, "stride": 2, "padding": 1},
    ],
    "head": {"type": "fc_conv_avg_pred", "hidden": [32], "window": 2, "padding": 0},
}


def test_count_params_by_hand():
    net = small_net()
    assert count_params(net) == SMALL_NET_PARAMS
    net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == SMALL_NET_PARAMS - 3 * 8 * 9


def test_count_macs_equals_the_hand_computed_value():
    net = small_net()
    assert count_macs(net, (3, 8, 8)) == SMALL_NET_MACS == 23_200
    assert count_macs(net, (2, 3, 8, 8)) == 2 * SMALL_NET_MACS  # (N, C, H, W): the whole batch


def test_count_macs_leaves_the_model_as_it_was():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_macs(net, (3, 8, 8))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_spec_costs_on_the_meta_device_equal_the_real_network():
    cost = spec_costs(SMALL_SPEC)
    net = build_model(SMALL_SPEC)
    assert cost == {"params": count_params(net), "macs": count_macs(net)}


def _vgg11() -> dict:
    cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
    stages = [{"block": "pool", "stride": 2} if c == "M" else {"block": "conv", "channels": c} for c in cfg]
    return {
        "name": "vgg11",
        "in_channels": 3,
        "num_classes": 1000,
        "input_size": 224,
        "norm": "none",
        "stages": stages,
        "head": {"type": "fc", "hidden": [4096, 4096], "pool_to": 7},
    }


def _alexnet() -> dict:
    # torchvision's single-tower AlexNet.
    conv = {"block": "conv"}
    pool = {"block": "pool", "kernel": 3, "stride": 2}
    stages = [
        {**conv, "channels": 64, "kernel": 11, "stride": 4, "padding": 2},
        pool,
        {**conv, "channels": 192, "kernel": 5},
        pool,
        {**conv, "channels": 384},
        {**conv, "channels": 256},
        {**conv, "channels": 256},
        pool,
    ]
    return {
        "name": "alexnet",
        "in_channels": 3,
        "num_classes": 1000,
        "input_size": 224,
        "norm": "none",
        "stages": stages,
        "head": {"type": "fc", "hidden": [4096, 4096], "pool_to": 6},
    }


@pytest.mark.parametrize(
    "spec, params, gmacs",
    [(_alexnet(), 61_100_840, 0.714), (_vgg11(), 132_863_336, 7.609)],  # torchvision's published figures
    ids=["alexnet", "vgg11"],
)
def test_reference_costs_match_torchvision(spec, params, gmacs):
    cost = spec_costs(spec)
    assert cost["params"] == params
    assert cost["macs"] / 1e9 == pytest.approx(gmacs, rel=1e-3)
    with torch.device("meta"):  # the counted number, without the arithmetic
        net = build_model(spec)
    assert count_macs(net) == cost["macs"]


def test_macs_per_module_are_keyed_like_named_modules():
    net = small_net()
    per = count_macs_per_module(net, (3, 8, 8))
    assert per[""] == SMALL_NET_MACS
    assert per == {"": SMALL_NET_MACS, "0": 13_824, "2": 9_216, "5": 160}
    assert set(per) <= {name for name, _ in net.named_modules()}


def test_default_input_shape_comes_from_the_spec():
    assert default_input_shape(build_model(SMALL_SPEC)) == (3, 32, 32)
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(small_net())


def test_summary_rows_of_a_network_add_up():
    net = build_model(SMALL_SPEC)
    rows = summarize(net)
    assert [r.name for r in rows] == [*net.layer_names, "head"]
    assert [r.block for r in rows[:3]] == ["colorspace", "conv", "conv x2"]
    assert [r.out_shape for r in rows] == [
        (3, 32, 32),
        (16, 16, 16),
        (24, 16, 16),
        (48, 8, 8),
        (48, 4, 4),
        (10,),
    ]
    assert sum(r.params for r in rows) == count_params(net)
    assert sum(r.macs for r in rows) == count_macs(net)
    assert rows[3].params == rows[3].macs == 0  # pooling has neither


@pytest.mark.parametrize("depth", [1, 3])
def test_expanded_summary_still_adds_up(depth):
    net = build_model(SMALL_SPEC)
    rows = summarize(net, depth=depth)
    assert len(rows) > len(net.layer_names) + 1
    assert sum(r.params for r in rows) == count_params(net)
    assert sum(r.macs for r in rows) == count_macs(net)


def test_summary_of_a_plain_module_and_the_table():
    rows = summarize(small_net(), (3, 8, 8))
    assert rows[0] == LayerRow("0", "Conv2d", (8, 8, 8), 3 * 8 * 9 + 8, 13_824)
    assert rows[-1] == LayerRow("5", "Linear", (10,), 170, 160)
    table = format_summary(rows, title="small")
    lines = table.splitlines()
    assert lines[0] == "small" and lines[1].split() == ["layer", "block", "output", "params", "MACs"]
    assert "8x8x8" in table and "13,824" in table
    assert lines[-2].split() == ["total", f"{SMALL_NET_PARAMS:,}", f"{SMALL_NET_MACS:,}"]
    assert lines[-1] == f"{human(SMALL_NET_PARAMS)} parameters, 23.20K MACs"


def test_human_units():
    assert [human(n) for n in (999, 1_500, 2_340_000, 7_609_090_048)] == ["999", "1.50K", "2.34M", "7.61G"]
