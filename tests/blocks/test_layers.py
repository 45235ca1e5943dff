"""Activations, norms, conv units and ConvNormAct: values, maxout channel arithmetic, norm order, bias."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from blocks.layers import (
    ACTS,
    CONVS,
    NORMS,
    ConvNormAct,
    Maxout,
    act_expansion,
    create_act,
    create_conv2d,
    create_norm,
    norm_after_act,
    resolve_padding,
)

# The non-linearities issue 3 asks for, by name.
REQUIRED_ACTS = (
    "relu leaky_relu very_leaky_relu prelu rrelu elu selu maxout tanh scaled_tanh sigmoid softplus silu gelu "
    "none"
).split()


def test_every_required_activation_is_registered():
    assert set(REQUIRED_ACTS) <= set(ACTS.names())


@pytest.mark.parametrize(
    "name, x, y",
    [
        ("relu", -2.0, 0.0),
        ("relu6", 8.0, 6.0),
        ("relu6", -1.0, 0.0),
        ("relu6", 2.5, 2.5),
        ("leaky_relu", -2.0, -0.02),
        ("very_leaky_relu", -3.0, -1.0),
        ("elu", -1e3, -1.0),
        ("selu", 1.0, 1.0507009873554805),
        ("tanh", 0.5, math.tanh(0.5)),
        ("scaled_tanh", 1.5, 1.7159 * math.tanh(1.0)),
        ("sigmoid", 0.0, 0.5),
        ("softplus", 0.0, 0.0),
        ("softplus", 2.0, math.log1p(math.exp(2.0)) - math.log(2.0)),
        ("silu", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
        ("gelu", 0.0, 0.0),
        ("none", -7.0, -7.0),
        ("prelu", -4.0, -1.0),  # PyTorch's initial slope 0.25
    ],
)
def test_activation_values(name, x, y):
    out = create_act(name, 1)(torch.tensor([[x]]))
    assert out.item() == pytest.approx(y, rel=1e-5, abs=1e-6)


def test_rrelu_random_slope_in_training_and_mean_slope_at_eval():
    torch.manual_seed(0)
    act = create_act("rrelu")
    x = -torch.ones(10_000)
    slopes = -act.train()(x)
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3 and slopes.std() > 0.01
    assert torch.allclose(-act.eval()(x), torch.full_like(x, (1 / 8 + 1 / 3) / 2))


def test_create_act_is_not_inplace_by_default():
    x = torch.tensor([-1.0, 2.0])
    for name in REQUIRED_ACTS:
        y = create_act(name, 2)(x.view(1, 2))
        assert torch.equal(x, torch.tensor([-1.0, 2.0])), name
        assert y.shape[1] == (1 if name == "maxout" else 2)


def test_maxout_halves_channels_taking_max_of_adjacent_pairs():
    x = torch.tensor([1.0, 5.0, -2.0, -3.0, 0.0, 4.0]).view(1, 6, 1, 1)
    out = Maxout(2)(x)
    assert out.flatten().tolist() == [5.0, -2.0, 4.0]
    assert act_expansion("maxout") == 2 and act_expansion("relu") == 1
    with pytest.raises(ValueError, match="divisible"):
        Maxout(2)(torch.zeros(1, 5, 2, 2))


@pytest.mark.parametrize("norm", ["batchnorm", "batchnorm_after", "none"])
def test_convnormact_with_maxout_doubles_the_conv_and_outputs_out_channels(norm):
    unit = ConvNormAct(4, 6, 3, act="maxout", norm=norm)
    conv = unit[0]
    assert conv.out_channels == 12
    bns = [m for m in unit if isinstance(m, nn.BatchNorm2d)]
    if norm == "batchnorm":  # BN sees the conv's 12 channels, before the maxout
        assert [b.num_features for b in bns] == [12]
    elif norm == "batchnorm_after":  # BN sees maxout's 6 outputs
        assert [b.num_features for b in bns] == [6]
    else:
        assert not bns
    assert unit(torch.randn(2, 4, 5, 5)).shape == (2, 6, 5, 5)


@pytest.mark.parametrize(
    "norm, order",
    [
        ("batchnorm", [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]),
        ("batchnorm_after", [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]),
        ("batchnorm_noaffine", [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]),
        ("batchnorm_after_noaffine", [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]),
        ("groupnorm", [nn.Conv2d, nn.GroupNorm, nn.ReLU]),
        ("none", [nn.Conv2d, nn.ReLU]),
    ],
)
def test_norm_placement_order(norm, order):
    unit = ConvNormAct(3, 8, 3, act="relu", norm=norm)
    assert [type(m) for m in unit] == order
    assert norm_after_act(norm) == (order[1] is nn.ReLU and len(order) == 3)


def test_norm_placement_changes_the_output_statistics():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 6, 6)
    before = ConvNormAct(3, 4, 3, act="relu", norm="batchnorm").train()(x)
    after = ConvNormAct(3, 4, 3, act="relu", norm="batchnorm_after").train()(x)
    assert before.min() >= 0  # ReLU is last
    assert after.min() < 0  # BN is last: zero mean per channel
    assert torch.allclose(after.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)


@pytest.mark.parametrize(
    "norm, bias, has_bias",
    [
        ("batchnorm", None, False),  # a norm right after the conv makes its bias redundant
        ("batchnorm_after", None, True),  # the activation sits between conv and norm
        ("none", None, True),
        ("none", False, False),
        ("batchnorm", True, True),
        ("batchnorm_after", False, False),
    ],
)
def test_bias_on_off(norm, bias, has_bias):
    conv = ConvNormAct(3, 4, 3, norm=norm, bias=bias)[0]
    assert (conv.bias is not None) == has_bias


def test_norm_variants():
    assert {"batchnorm", "batchnorm_after", "none"} <= set(NORMS.names())
    assert not list(create_norm("batchnorm_noaffine", 8).parameters())
    gn = create_norm("groupnorm", 48)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 16
    assert isinstance(create_norm("none", 8), nn.Identity)


def test_prelu_learns_one_slope_per_conv_output_channel():
    unit = ConvNormAct(3, 5, 1, act="prelu", norm="none")
    assert unit[1].weight.numel() == 5


@pytest.mark.parametrize(
    "padding, kernel, expected",
    [(None, 5, 2), ("same", (1, 7), (0, 3)), ("valid", 5, 0), (1, 5, 1), ([0, 1], 3, (0, 1))],
)
def test_resolve_padding(padding, kernel, expected):
    assert resolve_padding(padding, kernel) == expected


def test_padding_and_group_errors_are_value_errors():
    with pytest.raises(ValueError, match="same"):
        ConvNormAct(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="groups"):
        ConvNormAct(6, 4, 3, groups=4)


def test_conv_keeps_size_and_ceil_halves_at_stride_2():
    x = torch.randn(1, 3, 15, 15)
    assert ConvNormAct(3, 4, 5)(x).shape[-1] == 15
    assert ConvNormAct(3, 4, 3, 2)(x).shape[-1] == 8
    assert ConvNormAct(3, 4, 5, padding="valid")(x).shape[-1] == 11


@pytest.mark.parametrize("kind", CONVS.names())
@pytest.mark.parametrize("stride", [1, 2])
def test_every_conv_type(kind, stride):
    unit = create_conv2d(kind, 4, 6, 3, stride, act="relu", norm="batchnorm")
    y = unit(torch.randn(2, 4, 9, 9))
    assert y.shape == (2, 6, 5 if stride == 2 else 9, 5 if stride == 2 else 9)


def test_conv_type_structure():
    sep = create_conv2d("depthwise_separable", 4, 6, 3, norm="none")
    convs = [m for m in sep.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.groups, c.weight.shape) for c in convs] == [(4, (4, 1, 3, 3)), (1, (6, 4, 1, 1))]
    fac = create_conv2d("factorized", 4, 6, 5, 2)
    convs = [m for m in fac.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride) for c in convs] == [((1, 5), (1, 2)), ((5, 1), (2, 1))]
    with pytest.raises(KeyError, match="depthwise_separable"):
        create_conv2d("octave", 4, 6)


@pytest.mark.parametrize("create, name", [(create_act, "swish"), (lambda n: create_norm(n, 4), "layernorm")])
def test_unknown_names_list_valid_ones(create, name):
    with pytest.raises(KeyError) as e:
        create(name)
    assert name in str(e.value) and ("relu" in str(e.value) or "batchnorm" in str(e.value))
