"""Suite rows built as the paper describes them: strided conv2-4 instead of pooling (no added layers), and
the learned colour transforms' leaky ReLU of slope 0.5."""

import pytest
import torch
from torch import nn

from blocks import build_model
from experiments.ablation.config import composer
from experiments.ablation.runner import plan_arm
from nas.config import resolve_spec

SHARED = ["data=synthetic", "logger=none", "latency.mode=macs"]  # 32 px RGB: every colour variant applies


@pytest.fixture(scope="module")
def arms():
    with composer() as compose:
        return {o: plan_arm(compose, SHARED, [o] if o else []) for o in (None, "pooling=strided_conv")}


def convs(arm):
    model = build_model(resolve_spec(arm.run_cfg))
    return [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]


def test_strided_conv_puts_stride_2_in_conv2_to_conv4_instead_of_adding_layers(arms):
    base, strided = arms[None], arms["pooling=strided_conv"]
    b, s = convs(base), convs(strided)
    assert len(s) == len(b) == 5  # conv1-conv5, nothing added
    assert [c.weight.shape for c in s] == [c.weight.shape for c in b]
    assert [c.stride for c in s] == [(1, 1), (2, 2), (2, 2), (2, 2), (1, 1)]
    assert [c.stride for c in b] == [(1, 1)] * 5
    conv_params = [sum(p.numel() for p in c.parameters()) for c in b]
    assert [sum(p.numel() for p in c.parameters()) for c in s] == conv_params
    # the rest of the difference is fc6 meeting a 4x4 instead of a 3x3 map (32 px: 32 -> 16 -> 8 -> 4)
    assert build_model(resolve_spec(strided.run_cfg)).features(torch.zeros(1, 3, 32, 32)).shape[-1] == 4
    # strided convs run on smaller maps than conv + pooling: no more MACs than the baseline (today +18 %)
    assert strided.macs < base.macs


@pytest.mark.parametrize("variant", ["learned_10_3_vlrelu", "learned_16_3", "learned_3_3"])
def test_learned_colour_transforms_use_the_papers_slope(variant):
    with composer() as compose:
        arm = plan_arm(compose, SHARED, [f"colorspace={variant}"])
    stem = build_model(resolve_spec(arm.run_cfg)).features[0]
    slopes = {m.negative_slope for m in stem.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.5}


def test_the_nonlinearity_axis_keeps_the_very_leaky_slope_of_one_third():
    with composer() as compose:
        arm = plan_arm(compose, SHARED, ["activation=very_leaky_relu"])
    model = build_model(resolve_spec(arm.run_cfg))
    assert {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)} == {1 / 3}
