"""Pooling by name: semantics of each variant, window options, and the `pool` block's channel rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blocks import build_model
from blocks.pooling import POOLS, Pool, create_pool2d, pooled_size

WINDOWS = [(2, 2, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)]


def test_every_pooling_variant_is_registered():
    assert {"max", "avg", "avg_max", "avg_max_cat", "stochastic", "lp", "strided_conv"} <= set(POOLS.names())


@pytest.mark.parametrize("kernel, stride, padding", WINDOWS)
@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("size", [7, 8, 13])
def test_pooled_size_matches_pytorch(kernel, stride, padding, ceil, size):
    ref = nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil)(torch.zeros(1, 1, size, size)).shape[-1]
    assert pooled_size(size, kernel, stride, padding, ceil) == ref


@pytest.mark.parametrize("kind", POOLS.names())
@pytest.mark.parametrize("kernel, stride, padding", WINDOWS)
@pytest.mark.parametrize("ceil", [False, True])
def test_every_pooling_honours_the_window(kind, kernel, stride, padding, ceil):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 13, 14).relu()
    ref = nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil)(x)
    pool = create_pool2d(kind, kernel, stride, padding, ceil, channels=4)
    for train in (True, False):
        y = pool.train(train)(x)
        channels = 8 if kind == "avg_max_cat" else 4
        assert y.shape == (2, channels, *ref.shape[-2:])
        assert torch.isfinite(y).all()


def test_overlapping_vs_non_overlapping_windows():
    x = torch.zeros(1, 1, 14, 14)
    assert create_pool2d("max", 2)(x).shape[-1] == 7
    assert create_pool2d("max", 3, 2)(x).shape[-1] == 6
    assert create_pool2d("max", 3, 2, ceil=True)(x).shape[-1] == 7  # Caffe's rounding
    assert create_pool2d("max", 3, 2, 1)(x).shape[-1] == 7


def test_avg_max_is_the_sum_of_max_and_avg():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    for k, s, p in WINDOWS:
        mx = F.max_pool2d(x, k, s, p)
        avg = F.avg_pool2d(x, k, s, p, count_include_pad=False)
        assert torch.allclose(create_pool2d("avg_max", k, s, p)(x), mx + avg)
        assert torch.allclose(create_pool2d("avg_max_cat", k, s, p)(x), torch.cat([avg, mx], 1))


def test_avg_ignores_padding():
    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(create_pool2d("avg", 3, 2, 1)(x), torch.ones(1, 1, 2, 2))


def test_stochastic_pooling_eval_is_the_probability_weighted_average():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    pool = create_pool2d("stochastic", 2).eval()
    assert pool(x).item() == pytest.approx((1 + 4 + 9 + 16) / 10)
    # Negative activations have probability 0; an all-non-positive window gives 0.
    assert pool(torch.tensor([[-1.0, 2.0], [0.0, 0.0]]).view(1, 1, 2, 2)).item() == pytest.approx(2.0)
    assert pool(-torch.ones(1, 1, 2, 2)).item() == 0.0


def test_stochastic_pooling_is_deterministic_in_eval_and_random_in_training():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 16, 16)
    pool = create_pool2d("stochastic", 2)
    pool.eval()
    assert torch.equal(pool(x), pool(x))
    pool.train()
    a, b = pool(x), pool(x)
    assert not torch.equal(a, b)
    # Every training output is one of its window's activations.
    windows = F.unfold(x, 2, stride=2).view(2, 4, 4, 64)
    assert (windows == a.view(2, 4, 1, 64)).any(dim=2).all()


def test_stochastic_pooling_samples_in_proportion_to_activation():
    torch.manual_seed(0)
    # 4000 windows [[0, 1], [0, 3]]: 3 must come out 3/4 of the time, 0 never.
    x = torch.tensor([[0.0, 1.0], [0.0, 3.0]]).repeat(1, 1, 1, 4000)
    y = create_pool2d("stochastic", 2).train()(x)
    assert set(y.unique().tolist()) == {1.0, 3.0}
    assert (y == 3).float().mean().item() == pytest.approx(0.75, abs=0.03)
    # Its expectation is the eval value: (1 + 9) / 4 = 2.5.
    assert y.mean().item() == pytest.approx(2.5, abs=0.06)


def test_stochastic_pooling_passes_gradient_to_the_sampled_activation():
    x = torch.tensor([[0.0, 1.0], [0.0, 3.0]]).view(1, 1, 2, 2).requires_grad_()
    create_pool2d("stochastic", 2).train()(x).sum().backward()
    assert x.grad.sum().item() == 1.0 and x.grad[0, 0, :, 0].abs().sum() == 0


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lp_pooling_is_the_p_norm_of_the_window(p):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    y = create_pool2d("lp", 2, p=p)(x)
    ref = F.unfold(x, 2, stride=2).view(2, 3, 4, 9).abs().pow(p).sum(2).pow(1 / p).view(2, 3, 3, 3)
    assert torch.allclose(y, ref, atol=1e-5)
    assert torch.allclose(y, nn.LPPool2d(p, 2)(x.abs()), atol=1e-5)


def test_lp_pooling_gradient_is_finite_on_zero_windows():
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    create_pool2d("lp", 2, p=2).train()(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="p >= 1"):
        create_pool2d("lp", 2, p=0.5)


@pytest.mark.parametrize(
    "act, norm, conv_out, bias", [("relu", "batchnorm", 4, False), ("maxout", "none", 8, True)]
)
def test_strided_conv_is_a_learned_conv_with_the_window(act, norm, conv_out, bias):
    pool = create_pool2d("strided_conv", 3, 2, 1, channels=4, act=act, norm=norm)
    conv = next(m for m in pool.modules() if isinstance(m, nn.Conv2d))
    assert (conv.kernel_size, conv.stride, conv.out_channels) == ((3, 3), (2, 2), conv_out)
    assert (conv.bias is not None) == bias
    assert any(isinstance(m, nn.BatchNorm2d) for m in pool.modules()) == (norm == "batchnorm")
    assert pool(torch.randn(2, 4, 9, 9)).shape == (2, 4, 5, 5)
    with pytest.raises(ValueError, match="channels"):
        create_pool2d("strided_conv", 2)


def test_window_validation_and_unknown_names():
    with pytest.raises(ValueError, match="half the kernel"):
        create_pool2d("max", 2, 2, 2)
    with pytest.raises(KeyError) as e:
        create_pool2d("median", 2)
    assert "median" in str(e.value) and "avg_max" in str(e.value) and "stochastic" in str(e.value)


def test_pool_block_channel_rule():
    assert Pool.out_channels_for(8, type="avg_max_cat") == 16
    assert Pool.out_channels_for(8, type="max") == 8
    assert Pool(8, 16, 2, type="avg_max_cat")(torch.zeros(1, 8, 8, 8)).shape == (1, 16, 4, 4)
    with pytest.raises(ValueError, match="16"):
        Pool(8, 8, 2, type="avg_max_cat")
    with pytest.raises(ValueError):
        Pool(8, 12, 2, type="max")
    # The window defaults to the stride; `kernel` makes it overlap.
    assert Pool(4, 4, 2).pool.kernel_size == 2
    assert Pool(4, 4, 2, kernel=3, padding=1)(torch.zeros(1, 4, 8, 8)).shape[-1] == 4


def test_pool_entries_in_a_spec_infer_channels():
    spec = {
        "num_classes": 3,
        "in_channels": 1,
        "input_size": 16,
        "stages": [
            {"block": "conv", "channels": 4},
            {"block": "pool", "type": "avg_max_cat", "kernel": 3, "stride": 2, "ceil": True},
            {"block": "conv", "channels": 6},
            {"block": "pool", "type": "strided_conv", "kernel": 3, "stride": 2, "padding": 1},
        ],
    }
    net = build_model(spec)
    assert net.features[2][0].in_channels == 8
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 3)
