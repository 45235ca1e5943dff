"""Classifier heads: FC vs FC-as-conv equivalences, pooling variants, NiN's GAP, spatial pyramid pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from blocks import HEADS, build_model
from blocks.heads import GlobalPool, create_head


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_every_head_kind_is_registered():
    assert {"linear", "fc", "fc_conv_avg_pred", "fc_conv_avg_feat", "gap", "spp"} <= set(HEADS.names())


@pytest.mark.parametrize("pool", ["avg", "max", "avg_max", "avg_max_cat"])
def test_linear_head_global_pools(pool):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 3)
    head = create_head("linear", 6, 4, feature_size=(3, 3), pool=pool)
    feats = {"avg": x.mean((2, 3)), "max": x.amax((2, 3))}
    feats["avg_max"] = feats["avg"] + feats["max"]
    feats["avg_max_cat"] = torch.cat([feats["avg"], feats["max"]], 1)
    fc = head[-1]
    assert fc.in_features == (12 if pool == "avg_max_cat" else 6)
    assert torch.allclose(head(x), fc(feats[pool]), atol=1e-6)


def test_linear_head_params_and_bias():
    assert n_params(create_head("linear", 8, 5, feature_size=(1, 1))) == 8 * 5 + 5
    assert n_params(create_head("linear", 8, 5, feature_size=(1, 1), bias=False)) == 8 * 5
    with pytest.raises(KeyError, match="avg_max"):
        GlobalPool("median")


def test_fc_head_flattens_the_map_into_an_mlp():
    head = create_head("fc", 4, 10, feature_size=(3, 3), hidden=[32, 16], dropout=0.5)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(36, 32), (32, 16), (16, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in head) == 2
    assert head(torch.randn(2, 4, 3, 3)).shape == (2, 10)


def test_fc_head_pool_to_makes_it_input_size_independent():
    head = create_head("fc", 4, 10, feature_size=(13, 13), hidden=[8], pool_to=6)
    assert [m for m in head if isinstance(m, nn.Linear)][0].in_features == 4 * 36
    assert head(torch.randn(2, 4, 9, 9)).shape == (2, 10)


def test_fc_head_maxout_doubles_hidden_units():
    head = create_head("fc", 4, 10, feature_size=(2, 2), act="maxout", hidden=[8], dropout=0.0)
    assert [m.out_features for m in head if isinstance(m, nn.Linear)] == [16, 10]
    assert head(torch.randn(2, 4, 2, 2)).shape == (2, 10)


def _copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy the conv / linear layers of `src` into `dst`'s in order, reshaped (FC weight <-> conv weight)."""
    a = [m for m in src.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    b = [m for m in dst.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(a) == len(b)
    with torch.no_grad():
        for x, y in zip(a, b, strict=True):
            y.weight.copy_(x.weight.reshape(y.weight.shape))
            y.bias.copy_(x.bias)


@pytest.mark.parametrize("name", ["fc_conv_avg_pred", "fc_conv_avg_feat"])
def test_fc_as_conv_equals_fc_on_the_training_map(name):
    torch.manual_seed(0)
    kw = dict(feature_size=(3, 3), hidden=[16, 8], dropout=0.0)
    fc, conv = create_head("fc", 4, 5, **kw).eval(), create_head(name, 4, 5, **kw).eval()
    assert n_params(fc) == n_params(conv)
    _copy_weights(fc, conv)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(fc(x), conv(x), atol=1e-5)


def test_fc_conv_avg_pred_averages_the_class_scores_of_every_window():
    torch.manual_seed(0)
    kw = dict(feature_size=(3, 3), hidden=[16], dropout=0.0)
    fc, conv = create_head("fc", 4, 5, **kw).eval(), create_head("fc_conv_avg_pred", 4, 5, **kw).eval()
    _copy_weights(fc, conv)
    x = torch.randn(2, 4, 5, 6)  # a larger map at test time: 3 x 4 window positions
    windows = [fc(x[:, :, i : i + 3, j : j + 3]) for i in range(3) for j in range(4)]
    assert torch.allclose(conv(x), torch.stack(windows).mean(0), atol=1e-5)


def test_fc_conv_avg_feat_averages_features_before_the_last_layer():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 5)
    kw = dict(feature_size=(3, 3), hidden=[16], dropout=0.0)
    pred, feat = create_head("fc_conv_avg_pred", 4, 5, **kw), create_head("fc_conv_avg_feat", 4, 5, **kw)
    _copy_weights(pred, feat)
    # In feat mode the last layer is a Linear on the spatially averaged hidden features.
    assert torch.allclose(feat(x), feat.tail(feat.convs(x).mean((2, 3))), atol=1e-6)
    # The last layer is affine, so it commutes with the average: both modes agree for `avg` ...
    assert torch.allclose(pred(x), feat(x), atol=1e-5)
    # ... but not for `max`, where averaging features vs. predictions is a real choice.
    pmax = create_head("fc_conv_avg_pred", 4, 5, pool="max", **kw)
    fmax = create_head("fc_conv_avg_feat", 4, 5, pool="max", **kw)
    _copy_weights(pmax, fmax)
    assert not torch.allclose(pmax(x), fmax(x), atol=1e-3)


def test_fc_conv_avg_feat_average_after_and_dropout_placement():
    torch.manual_seed(0)
    kw = dict(feature_size=(3, 3), hidden=[16, 8], dropout=0.5)
    fc = create_head("fc", 4, 5, **kw)
    early = create_head("fc_conv_avg_feat", 4, 5, average_after=1, **kw)
    assert n_params(early) == n_params(fc)
    assert [type(m) for m in early.convs[0]] == [nn.Conv2d, nn.ReLU] and len(early.convs) == 1
    # After averaging: dropout on the averaged features, then fc7 and fc8 as linear layers.
    assert [type(m) for m in early.tail] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    late = create_head("fc_conv_avg_feat", 4, 5, **kw)
    assert isinstance(late.convs[-1], nn.Module) and not isinstance(late.convs[-1], nn.Dropout)
    assert [type(m) for m in late.tail] == [nn.Dropout, nn.Linear]
    # Training noise differs: one dropout mask per image on averaged features vs. one per position.
    x = torch.randn(4, 4, 6, 6)
    pred = create_head("fc_conv_avg_pred", 4, 5, **kw)
    _copy_weights(pred, late)
    pred.eval(), late.eval()
    assert torch.allclose(pred(x), late(x), atol=1e-5)
    pred.train(), late.train()
    noise_pred = torch.stack([pred(x) for _ in range(20)]).std(0).mean()
    noise_late = torch.stack([late(x) for _ in range(20)]).std(0).mean()
    assert noise_late > 1.5 * noise_pred
    with pytest.raises(ValueError, match="average_after"):
        create_head("fc_conv_avg_feat", 4, 5, average_after=3, **kw)


def test_fc_conv_window_and_padding():
    head = create_head("fc_conv_avg_pred", 8, 5, feature_size=(6, 6), hidden=[16], window=3, padding="same")
    first = head.convs[0][0]
    assert first.kernel_size == (3, 3) and first.padding == (1, 1)
    assert n_params(head) == (8 * 9 * 16 + 16) + (16 * 5 + 5)
    assert head(torch.randn(2, 8, 6, 6)).shape == (2, 5)
    with pytest.raises(ValueError, match="does not fit"):
        create_head("fc_conv_avg_pred", 8, 5, feature_size=(2, 2), window=3)
    with pytest.raises(ValueError, match="avg_max"):
        create_head("fc_conv_avg_pred", 8, 5, feature_size=(2, 2), pool="avg_max_cat")


def test_gap_head_is_a_1x1_conv_then_global_average():
    torch.manual_seed(0)
    head = create_head("gap", 8, 5, feature_size=(4, 4), dropout=0.5).eval()
    assert not any(isinstance(m, nn.Linear) for m in head.modules())
    assert n_params(head) == 8 * 5 + 5
    conv = next(m for m in head.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(2, 8, 4, 4)
    assert torch.allclose(head(x), conv(x).mean((2, 3)), atol=1e-6)
    relu_head = create_head("gap", 8, 5, feature_size=(4, 4), final_act=True)
    assert relu_head(x).min() >= 0


@pytest.mark.parametrize("levels, pool", [([1, 2, 4], "max"), ([1, 2], "avg"), ([3], "max")])
def test_spp_head_feature_count_is_fixed_across_input_sizes(levels, pool):
    head = create_head("spp", 4, 5, feature_size=(8, 8), levels=levels, pool=pool, hidden=[16])
    first = next(m for m in head if isinstance(m, nn.Linear))
    assert first.in_features == 4 * sum(lv * lv for lv in levels)
    for size in (8, 13, 5):
        assert head(torch.randn(2, 4, size, size)).shape == (2, 5)


def test_spp_level_1_max_is_global_max():
    spp = create_head("spp", 4, 5, feature_size=(4, 4), levels=[1], hidden=[])[0]
    x = torch.randn(2, 4, 4, 4)
    assert torch.equal(spp(x), x.amax((2, 3)))
    with pytest.raises(ValueError, match="levels"):
        create_head("spp", 4, 5, feature_size=(4, 4), levels=[0])
    with pytest.raises(KeyError, match="max"):
        create_head("spp", 4, 5, feature_size=(4, 4), pool="lp")


@pytest.mark.parametrize("name", HEADS.names())
def test_every_head_in_a_network(name):
    spec = {
        "num_classes": 7,
        "in_channels": 3,
        "input_size": 16,
        "act": "maxout",
        "stages": [{"block": "conv", "channels": 8, "stride": 2}, {"block": "pool"}],
        "head": {"type": name},
    }
    if name not in ("linear", "gap"):
        spec["head"]["hidden"] = [12]
    net = build_model(spec)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)


def test_unknown_head_lists_valid_ones():
    with pytest.raises(KeyError) as e:
        create_head("softmax", 4, 5, feature_size=(1, 1))
    assert "fc_conv_avg_pred" in str(e.value) and "spp" in str(e.value)
