"""Residual, mobile and squeeze families: reference networks against canonical sizes, and block semantics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocks import build_model, get_block

MODELS = Path(__file__).resolve().parents[2] / "conf" / "model"

TV = "torchvision weights meta (num_params, _ops = GMACs at 224 px)"
# name: (parameters, GMACs at the network's own input size, source). Every number was checked against the
# source named beside it. Keras counts BatchNorm running statistics as (non-trainable) parameters; PyTorch
# keeps them as buffers, so for the Keras rows we add the buffers back before comparing.
CANONICAL = {
    "resnet18": (11_689_512, 1.814, TV),
    "resnet34": (21_797_672, 3.664, TV),
    "resnet50": (25_557_032, 4.089, TV),
    "resnet101": (44_549_160, 7.801, TV),
    "resnet152": (60_192_808, 11.514, TV),
    "wide_resnet50_2": (68_883_240, 11.398, TV),
    "resnext50_32x4d": (25_028_904, 4.23, TV),
    "mobilenet_v2": (3_504_872, 0.301, TV),
    "squeezenet1_0": (1_248_424, 0.819, TV),
    "squeezenet1_1": (1_235_496, 0.349, TV),
    # Pre-activation reorders ResNet-18's BatchNorms (norm before each conv, a final norm, no norm on the
    # projections): 1,664 parameters fewer (0.014 %) and the same convolutions, so torchvision's ResNet-18
    # figures are the reference (He et al. 2016 give no ResNet-18 count).
    "preact_resnet18": (11_689_512, 1.814, TV + ", ResNet-18"),
    # Keras applications MobileNet (alpha 1.0, 224): total 4,253,864 = trainable 4,231,976 + 21,888 BN
    # statistics; Howard et al. 2017, Table 8: 4.2 M parameters, 569 M mult-adds.
    "mobilenet_v1": (4_253_864, 0.569, "Keras MobileNet summary; MACs: Howard et al. 2017"),
    # Keras applications Xception (299 px): total 22,910,480 = trainable 22,855,952 + 54,528 BN statistics
    # (Chollet 2017 reports 22.9 M); MACs: timm legacy_xception (Keras weights) model card, 8.4 GMACs.
    "xception": (22_910_480, 8.4, "Keras Xception summary; MACs: timm legacy_xception"),
}
KERAS_COUNTS = {"mobilenet_v1", "xception"}


def load(name: str, **overrides) -> dict:
    spec = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
    spec.update(overrides)
    return spec


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bn_statistics(model: nn.Module) -> int:
    """Running mean + variance entries of every BatchNorm (what Keras adds to its parameter count)."""
    return sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )


@torch.no_grad()
def macs(model: nn.Module, in_channels: int, size: int, *, scale_to: int | None = None) -> float:
    """MACs of one forward pass of a 1-image batch (FlopCounterMode counts 2 FLOPs per MAC).

    With `scale_to`, counts at `size` px and scales the convolutions' MACs by (scale_to / size)^2; the
    classifier's matrix products do not depend on the input size and are not scaled. Exact only when every
    feature map scales by the same factor (see REDUCED_SIZE).
    """
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, size, size))
    total = counter.get_total_flops() / 2
    if scale_to is None:
        return total
    dense = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "mm" in str(op)) / 2
    return dense + (total - dense) * (scale_to / size) ** 2


# The big 224-px networks are built and counted at 128 px to keep this file fast on 2 CPU cores. Their modules
# are the same at any input size above the small-stem threshold (global-pool head), so the parameter count
# is that of the 224-px network. Their convs and pools are "same"-padded with stride 2, so every feature map
# at 128 px is exactly 4/7 the side of the one at 224 px (64/112, 32/56, ..., 4/7) and the conv MACs scale
# exactly by (224/128)^2; test_reduced_size_mac_count_is_exact checks this on ResNet-18.
REDUCED_SIZE = {
    name: 128
    for name in ("resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d")
}


def test_every_owned_yaml_has_a_canonical_row():
    for name in CANONICAL:
        assert (MODELS / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_reference_network_matches_canonical_size_at_imagenet_scale(name):
    spec = load(name)
    want_params, want_gmacs, source = CANONICAL[name]
    size = spec["input_size"]  # 224, Xception 299; 1000 classes
    model = build_model({**spec, "input_size": REDUCED_SIZE.get(name, size)})
    params = n_params(model) + (bn_statistics(model) if name in KERAS_COUNTS else 0)
    assert abs(params - want_params) <= 0.005 * want_params, (name, params, want_params, source)
    if name in REDUCED_SIZE:
        got = macs(model, spec["in_channels"], REDUCED_SIZE[name], scale_to=size) / 1e9
    else:
        got = macs(model, spec["in_channels"], size) / 1e9
    assert abs(got - want_gmacs) <= 0.05 * want_gmacs, (name, got, want_gmacs, source)
    assert spec["family"] in {"resnet", "resnext", "mobilenet", "xception", "squeezenet"}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_reference_network_runs_at_small_scale(name):
    spec = load(name, in_channels=1, num_classes=10, input_size=28)
    torch.manual_seed(0)
    model = build_model(spec)
    with torch.no_grad():  # training-mode forward (batch statistics); gradients are the contract test's job
        features = model.forward_features(torch.randn(2, 1, 28, 28))
        out = model.head(features)
    # The small stem keeps a real feature map to pool over (not a collapsed 1x1).
    assert 2 <= features.shape[-1] <= 8, features.shape
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_reduced_size_mac_count_is_exact():
    model = build_model(load("resnet18"))
    assert macs(model, 3, 128, scale_to=224) == macs(model, 3, 224)


@pytest.mark.parametrize("alpha, params_m, mmacs", [(0.75, 2.6, 325), (0.5, 1.3, 149), (0.25, 0.5, 41)])
def test_mobilenet_width_multiplier_matches_paper(alpha, params_m, mmacs):
    """Howard et al. 2017, Table 6 (224 px): the spec's width_mult is MobileNet's alpha."""
    model = build_model(load("mobilenet_v1", width_mult=alpha))
    assert round(n_params(model) / 1e6, 1) == params_m
    assert abs(macs(model, 3, 224) / 1e6 - mmacs) <= 0.05 * mmacs


def test_squeeze_excitation_gives_se_resnet50():
    """SE on every bottleneck at ratio 1/16 adds 2.53 M parameters: SE-ResNet-50 has 28,088,024 (timm)."""
    spec = load("resnet50", input_size=96)
    for stage in spec["stages"]:
        stage["se_ratio"] = 1 / 16
    assert n_params(build_model(spec)) == 28_088_024
    block = get_block("bottleneck")(256, 256, act="relu", norm="batchnorm", se_ratio=1 / 16)
    assert block.se.reduce[0].out_channels == 16


def test_bottleneck_widths_follow_torchvision_and_cardinality_is_first_class():
    def conv2(block):
        return block.conv2[0]

    plain = get_block("bottleneck")(64, 256, act="relu", norm="batchnorm")
    assert (conv2(plain).in_channels, conv2(plain).groups) == (64, 1)
    resnext = get_block("resnext")(256, 512, 2, act="relu", norm="batchnorm", cardinality=32, base_width=4)
    assert (conv2(resnext).in_channels, conv2(resnext).groups, conv2(resnext).stride) == (256, 32, (2, 2))
    wide = get_block("bottleneck")(256, 256, act="relu", norm="batchnorm", widen_factor=2)
    assert conv2(wide).in_channels == 128
    ratio2 = get_block("bottleneck")(256, 256, act="relu", norm="batchnorm", expansion=2)
    assert conv2(ratio2).in_channels == 128
    pycls = get_block("bottleneck")(256, 256, act="relu", norm="batchnorm", group_width=16)
    assert (conv2(pycls).in_channels, conv2(pycls).groups) == (64, 4)
    with pytest.raises(ValueError, match="either groups"):
        get_block("bottleneck")(64, 64, act="relu", norm="batchnorm", groups=4, group_width=16)
    with pytest.raises(ValueError, match="se_ratio"):
        get_block("basic")(64, 64, act="relu", norm="batchnorm", se_ratio=-0.1)


@pytest.mark.parametrize("name", ["basic", "bottleneck", "preact_basic", "preact_bottleneck", "resnext"])
def test_shortcut_is_identity_only_when_shapes_match(name):
    cls = get_block(name)
    params = {"cardinality": 4, "base_width": 16} if name == "resnext" else {}
    same = cls(64, 64, 1, act="relu", norm="batchnorm", **params)
    assert isinstance(same.shortcut, nn.Identity)
    for args in ((64, 128, 1), (64, 64, 2)):
        proj = cls(*args, act="relu", norm="batchnorm", **params)
        conv = next(m for m in proj.shortcut.modules() if isinstance(m, nn.Conv2d))
        assert conv.kernel_size == (1, 1) and conv.stride == (args[2],) * 2
        assert proj(torch.randn(2, 64, 8, 8)).shape == (2, args[1], 8 // args[2], 8 // args[2])


@pytest.mark.parametrize("norm", ["none", "batchnorm_after", "batchnorm"])
@pytest.mark.parametrize("name, params", [("preact_basic", {}), ("xception", {"reps": 2})])
def test_activation_first_blocks_leave_their_input_intact(name, norm, params):
    """An in-place ReLU on the block input would corrupt the identity shortcut."""
    block = get_block(name)(16, 16, act="relu", norm=norm, **params).eval()
    x = torch.randn(2, 16, 8, 8)
    x0 = x.clone()
    out = block(x)
    assert torch.equal(x, x0)
    with torch.no_grad():
        body = block.body(block.pre1(x0)) if name == "preact_basic" else block.body(x0)
    torch.testing.assert_close(out, body + x0)


def test_preact_network_ends_with_norm_act_and_blocks_end_with_a_bare_sum():
    block = get_block("preact_basic")(8, 8, act="relu", norm="batchnorm")
    assert isinstance(block.pre1[0], nn.BatchNorm2d) and isinstance(block.body[-2][0], nn.Conv2d)
    final = get_block("preact_out")(8, 8, act="relu", norm="batchnorm")
    assert [type(m) for m in final.body] == [nn.BatchNorm2d, nn.ReLU]


def test_inverted_residual_is_linear_with_residual_only_where_shapes_allow():
    cls = get_block("inverted_residual")
    block = cls(24, 24, 1, act="relu", norm="batchnorm", expand_ratio=6)
    assert block.use_residual
    assert block.body[0][0].out_channels == 144 and block.body[1][0].groups == 144
    assert [type(m) for m in block.body[-1]] == [nn.Conv2d, nn.BatchNorm2d]  # linear bottleneck
    assert not cls(24, 32, 1, act="relu", norm="batchnorm").use_residual
    assert not cls(24, 24, 2, act="relu", norm="batchnorm").use_residual
    no_expand = cls(32, 16, 1, act="relu", norm="batchnorm", expand_ratio=1)
    assert len(no_expand.body) == 2 and no_expand.body[0][0].groups == 32


def test_separable_conv_is_depthwise_then_pointwise():
    block = get_block("separable")(32, 64, 2, act="relu", norm="batchnorm")
    dw, pw = block[0][0], block[1][0]
    assert (dw.groups, dw.stride, dw.kernel_size) == (32, (2, 2), (3, 3))
    assert (pw.in_channels, pw.out_channels, pw.kernel_size) == (32, 64, (1, 1))
    assert n_params(block) == 32 * 9 + 2 * 32 + 32 * 64 + 2 * 64
    xception_style = get_block("separable")(32, 64, act="relu", norm="batchnorm", dw_norm_act=False)
    assert n_params(xception_style) == 32 * 9 + 32 * 64 + 2 * 64


def test_xception_block_flows():
    cls = get_block("xception")
    middle = cls(728, 728, act="relu", norm="batchnorm", reps=3)
    assert isinstance(middle.shortcut, nn.Identity)
    assert n_params(middle) == 3 * (728 * 9 + 728 * 728 + 2 * 728)
    entry = cls(64, 128, 2, act="relu", norm="batchnorm", reps=2, act_first=False)
    assert not isinstance(entry.body[0], nn.Sequential) or not isinstance(entry.body[0][0], nn.ReLU)
    assert isinstance(entry.body[-1], nn.MaxPool2d)
    # grow_first=False widens in the last separable conv (exit flow: 728 -> 728 -> 1024).
    exit_ = cls(728, 1024, 2, act="relu", norm="batchnorm", reps=2, grow_first=False)
    pointwise = [
        m for m in exit_.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
    ]
    assert [m.out_channels for m in pointwise] == [
        728,
        1024,
        1024,
    ]  # two separable convs, then the projection
    strided_conv = cls(64, 128, 2, act="relu", norm="batchnorm", reps=2, downsample="conv")
    x = torch.randn(1, 64, 9, 9)
    assert strided_conv(x).shape == entry(x).shape == (1, 128, 5, 5)
    with pytest.raises(ValueError, match="valid: pool, conv"):
        cls(64, 128, 2, act="relu", norm="batchnorm", downsample="avg")


def test_fire_widths_ratios_and_channel_rule():
    cls = get_block("fire")
    fire = cls(96, 128, act="relu", norm="none", squeeze=16)
    assert fire.widths == (16, 64, 64)
    assert fire(torch.randn(1, 96, 7, 7)).shape == (1, 128, 7, 7)
    # Paper metaparameters: SR = 0.125 of the expand width, pct3x3 of it as 3x3 filters.
    assert cls(64, 256, act="relu", norm="none", pct3x3=0.75).widths == (32, 64, 192)
    assert cls.out_channels_for(96, expand1x1=32, expand3x3=96) == 128
    with pytest.raises(ValueError, match="expand1x1 \\+ expand3x3"):
        cls(96, 100, act="relu", norm="none", expand1x1=64, expand3x3=64)
    spec = {
        "num_classes": 3,
        "input_size": 16,
        "norm": "none",
        "stages": [
            {"block": "fire", "expand1x1": 8, "expand3x3": 24, "squeeze": 4, "stride": 2, "bypass": True}
        ],
    }
    model = build_model(spec)
    assert model.out_channels == 32 and model(torch.randn(2, 3, 16, 16)).shape == (2, 3)


@pytest.mark.parametrize(
    "name, params",
    [
        ("basic", {}),
        ("bottleneck", {"groups": 2}),
        ("preact_basic", {}),
        ("preact_bottleneck", {}),
        ("inverted_residual", {"se_ratio": 0.25}),
        ("separable", {}),
        ("xception", {"reps": 2}),
        ("fire", {}),
    ],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_blocks_work_with_maxout_and_keep_their_channel_contract(name, params, stride):
    block = get_block(name)(16, 32, stride, act="maxout", norm="batchnorm", **params)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 8 // stride, 8 // stride)
