"""Classic, Inception, DenseNet, ENet and FractalNet blocks, and their reference networks in conf/model/.

The reference networks are built at their own (ImageNet) scale on PyTorch's "meta" device: shapes and
parameter tensors exist, no arithmetic is done, so VGG-16 at 224 px costs nothing. MACs are counted by
FlopCounterMode over that meta forward pass (it counts from shapes: 2 FLOPs per MAC).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocks import build_model
from blocks.registry import BLOCKS

MODEL_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"
MODELS = [
    "lenet5",
    "ciresan2010",
    "alexnet",
    "caffenet",
    "overfeat_fast",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "nin",
    "googlenet",
    "inception_v3",
    "inception_v4",
    "inception_resnet_small",
    "inception_resnet_v2",
    "densenet121",
    "enet_encoder",
    "fractalnet",
    "resnet20",
]


def load(name: str) -> dict:
    return yaml.safe_load((MODEL_DIR / f"{name}.yaml").read_text())


def meta_cost(spec: dict) -> tuple[int, float, torch.Size]:
    """(parameters, GMACs, feature-map shape) of the spec's network at its input size, on the meta device."""
    with torch.device("meta"):
        model = build_model(spec).eval()
        x = torch.zeros(1, spec["in_channels"], spec["input_size"], spec["input_size"])
        with FlopCounterMode(display=False) as counter:
            model(x)
        features = model.forward_features(x).shape
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2e9, features


def with_params(spec: dict, block: str, **params) -> dict:
    """A copy of `spec` with `params` set on every stage entry of `block`."""
    spec = copy.deepcopy(spec)
    for entry in spec["stages"]:
        if entry["block"] == block:
            entry.update(params)
    return spec


def inception_resnet_v2(spec: dict) -> dict:
    """The small Inception-ResNet with the released network's 10 / 20 / 9 (+1) residual blocks."""
    spec = copy.deepcopy(spec)
    residual = [e for e in spec["stages"] if e["block"] == "inception_resnet"]
    for entry, repeat in zip(residual, (10, 20, 9, 1), strict=True):
        entry["repeat"] = repeat
    return spec


def googlenet_torchvision(spec: dict) -> dict:
    """torchvision's GoogLeNet: 3x3 convs in the "5x5" branch (pytorch/vision #906, kept for its weights)."""
    return with_params(spec, "inception", kernel5=3)


def enet_encoder_params(num_classes: int = 1000) -> int:
    """ENet encoder parameters by hand from the paper's layout (bias-free convs, BN + per-channel PReLU)."""

    def bn_prelu(c: int) -> int:
        return 3 * c  # BN scale + shift, one PReLU slope per channel

    def bottleneck(cin: int, cout: int, *, down: bool = False, asym: bool = False) -> int:
        i = cout // 4
        p = (4 if down else 1) * cin * i + bn_prelu(i)  # 1x1 projection (2x2 / 2 when downsampling)
        p += (2 * 5 * i * i if asym else 9 * i * i) + bn_prelu(i)  # 3x3 (plain or dilated), or 5x1 + 1x5
        p += i * cout + 2 * cout  # 1x1 expansion + BN
        return p + cout  # PReLU after the sum

    initial = 13 * 3 * 9 + bn_prelu(16)
    stage1 = bottleneck(16, 64, down=True) + 4 * bottleneck(64, 64)
    # Stages 2 and 3: 6 plain or dilated 3x3 bottlenecks and 2 asymmetric ones each, after 2.0.
    stages23 = (
        bottleneck(64, 128, down=True) + 12 * bottleneck(128, 128) + 4 * bottleneck(128, 128, asym=True)
    )
    return initial + stage1 + stages23 + 128 * num_classes + num_classes


# (model, spec transform, parameters, GMACs or None, source). Parameters within 0.5 %, MACs within 5 %.
REFERENCES = [
    # LeCun et al. 1998, section II-B: C1 156, S2 12, C3 1,516 (connection table), S4 32, C5 48,120,
    # F6 10,164, RBF output 840; ours has a linear output layer (850): 60,850.
    ("lenet5", None, 60_850, None, "LeCun et al. 1998 (linear output instead of RBF)"),
    # Ciresan et al. 2010, Table 1, network 5 (2500-2000-1500-1000-500-10): "12.11" million weights, with
    # their 29x29 = 841-pixel input.
    ("ciresan2010", None, 12_110_000, None, "Ciresan et al. 2010, Table 1"),
    ("alexnet", None, 61_100_840, 0.71, "torchvision AlexNet_Weights: num_params, GFLOPS"),
    # bvlc_reference_caffenet deploy.prototxt: conv1 96x3x11x11, conv2 256x48x5x5, conv3 384x256x3x3,
    # conv4 384x192x3x3, conv5 256x192x3x3, fc6 4096x9216, fc7 4096x4096, fc8 1000x4096, all with biases.
    ("caffenet", None, 60_965_224, None, "Caffe model zoo bvlc_reference_caffenet"),
    # Sermanet et al. 2013, Table 1 (fast model), all layers biased: conv1 96x3x11x11, conv2 256x96x5x5,
    # conv3 512x256x3x3, conv4 1024x512x3x3, conv5 1024x1024x3x3, fc6 3072x(1024x6x6), fc7 4096x3072,
    # fc8 1000x4096 = 145,920,872; its Table 4 says 145M parameters and 2,810M connections (MACs).
    ("overfeat_fast", None, 145_920_872, 2.81, "Sermanet et al. 2013, Tables 1 and 4"),
    ("vgg11", None, 132_863_336, 7.61, "torchvision VGG11_Weights"),
    ("vgg13", None, 133_047_848, 11.31, "torchvision VGG13_Weights"),
    ("vgg16", None, 138_357_544, 15.47, "torchvision VGG16_Weights"),
    ("vgg19", None, 143_667_240, 19.63, "torchvision VGG19_Weights"),
    # nin_imagenet (Caffe model zoo): conv1 96 11x11/4, cccp1-2 96, conv2 256 5x5, cccp3-4 256, conv3 384
    # 3x3, cccp5-6 384, conv4-1024 3x3, cccp7-1024, cccp8-1024 (1000), all with biases.
    ("nin", None, 7_595_176, None, "Caffe model zoo nin_imagenet layout"),
    ("googlenet", googlenet_torchvision, 6_624_904, 1.50, "torchvision GoogLeNet_Weights"),
    # The paper's 5x5 convs: + sum over the nine modules of c5r * c5 * (25 - 9) weights = 380,928, and
    # + 84,295,680 MACs (the same sum times each module's grid: 28^2, 14^2, 7^2).
    ("googlenet", None, 6_624_904 + 380_928, 1.50 + 0.0843, "torchvision GoogLeNet + paper 5x5 branch"),
    # torchvision's 27,161,264 includes AuxLogits: conv0 768*128 + BN (98,560), conv1 128*768*25 + BN
    # (2,459,136), fc 768*1000 + 1000 (769,000) = 3,326,696; its 5.71 GFLOPS are in eval mode (no aux).
    ("inception_v3", None, 27_161_264 - 3_326_696, 5.71, "torchvision Inception_V3_Weights minus AuxLogits"),
    # timm 1.0's models built without weights; MACs by FlopCounterMode on them at 299 px.
    ("inception_v4", None, 42_679_816, 12.254, "timm inception_v4"),
    ("inception_resnet_v2", None, 55_843_464, 13.156, "timm inception_resnet_v2"),
    ("inception_resnet_small", inception_resnet_v2, 55_843_464, None, "timm / imgclsmob inception_resnet_v2"),
    # The reduced net: 8 fewer block35 (123,168 each), 16 fewer block17 (1,126,784), 8 fewer block8
    # (2,035,424).
    (
        "inception_resnet_small",
        None,
        55_843_464 - 8 * 123_168 - 16 * 1_126_784 - 8 * 2_035_424,
        None,
        "inception_resnet_v2 minus the removed blocks",
    ),
    ("densenet121", None, 7_978_856, 2.83, "torchvision DenseNet121_Weights"),
    # He et al. 2015, Table 6: ResNet-20 (n = 3) has 0.27 M parameters with option-A shortcuts; ours adds
    # option B's two projections, 16->32 and 32->64 1x1 convs + BN: 576 + 2,176. MACs: 41 M at 32 px.
    ("resnet20", None, 270_000 + 576 + 2_176, 0.0408, "He et al. 2015, Table 6 + option-B projections"),
    ("enet_encoder", None, enet_encoder_params(), None, "Paszke et al. 2016 layout, counted by hand"),
    # imgclsmob's fractalnet_cifar10 (33,724,618); the paper's table says 38.6M for the same description.
    ("fractalnet", None, 33_724_618, None, "imgclsmob fractalnet_cifar10"),
]


# Feature maps before the head at each network's own input size, as the papers give them (e.g. Inception v3's
# 299 -> 8x8, CaffeNet's 227 -> 6x6, LeNet-5's 32 -> 5x5 before C5).
FEATURES = {
    "lenet5": (16, 5, 5),
    "ciresan2010": (1, 29, 29),  # no stages: the MLP reads the image
    "alexnet": (256, 6, 6),
    "caffenet": (256, 6, 6),
    "overfeat_fast": (1024, 6, 6),
    "vgg11": (512, 7, 7),
    "vgg13": (512, 7, 7),
    "vgg16": (512, 7, 7),
    "vgg19": (512, 7, 7),
    "nin": (1024, 6, 6),
    "googlenet": (1024, 7, 7),
    "inception_v3": (2048, 8, 8),
    "inception_v4": (1536, 8, 8),
    "inception_resnet_small": (1536, 8, 8),
    "inception_resnet_v2": (1536, 8, 8),
    "densenet121": (1024, 7, 7),
    "enet_encoder": (128, 28, 28),
    "fractalnet": (512, 1, 1),
    "resnet20": (64, 8, 8),
}


@pytest.mark.parametrize(
    "name, transform, params, gmacs, source",
    REFERENCES,
    ids=[f"{r[0]}{'-' + r[1].__name__ if r[1] else ''}" for r in REFERENCES],
)
def test_reference_network_cost(name, transform, params, gmacs, source):
    spec = load(name)
    if transform is not None:
        spec = transform(spec)
    counted, counted_gmacs, features = meta_cost(spec)
    assert counted == pytest.approx(params, rel=0.005), (
        f"{name}: {counted:,} parameters vs {params:,} ({source})"
    )
    if gmacs is not None:
        assert counted_gmacs == pytest.approx(gmacs, rel=0.05), (
            f"{name}: {counted_gmacs:.3f} GMACs vs {gmacs} ({source})"
        )
    assert tuple(features[1:]) == FEATURES[name]


def test_every_model_file_has_a_reference():
    assert {r[0] for r in REFERENCES} == set(MODELS) == set(FEATURES)


@pytest.mark.parametrize("name", MODELS)
def test_model_file_runs_at_small_scale(name):
    spec = load(name)
    assert spec["name"] == name and spec["family"], "every model file names itself and its family"
    spec.update(in_channels=1, num_classes=10, input_size=28)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 1, 28, 28))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


# ----------------------------------------------------------------------------------------------- classic


def block(
    name: str, cin: int, cout: int, stride: int = 1, act: str = "relu", norm: str = "batchnorm", **params
):
    return BLOCKS.get(name)(cin, cout, stride, act=act, norm=norm, **params)


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


LENET_C3 = load("lenet5")["stages"][1]["connections"]


def test_lenet_connection_table_is_sparse():
    c3 = block("subsample", 6, 16, 2, act="tanh", norm="none", kernel=5, trainable=True, connections=LENET_C3)
    assert n_params(c3) == 1_516 + 32  # the paper's C3 and S4
    x = torch.randn(1, 6, 14, 14)
    y = c3(x)
    assert y.shape == (1, 16, 5, 5)
    # Output map 0 reads maps 0, 1, 2 only: changing map 5 leaves it alone but changes map 3 (reads 3, 4, 5).
    x2 = x.clone()
    x2[:, 5] += 1.0
    y2 = c3(x2)
    assert torch.equal(y[:, 0], y2[:, 0]) and not torch.equal(y[:, 3], y2[:, 3])
    with pytest.raises(ValueError, match="connections"):
        block("subsample", 6, 16, 2, connections=LENET_C3[:15])
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        block("subsample", 6, 16, 2, connections=[[0, 6]] * 16)


def test_lenet_subsampling():
    trainable = block("subsample", 1, 6, 2, act="tanh", norm="none", kernel=5, trainable=True)
    assert n_params(trainable) == 156 + 12  # C1 + S2: a coefficient and a bias per map
    plain = block("subsample", 1, 6, 2, act="tanh", norm="none", kernel=5)
    assert n_params(plain) == 156
    plain.conv.load_state_dict(trainable.conv.state_dict())
    x = torch.randn(1, 1, 32, 32)
    # With coefficient 1 and bias 0 the trainable subsampling is act(average pool).
    assert torch.allclose(trainable(x), torch.tanh(plain(x)))
    assert plain(x).shape == (1, 6, 14, 14)
    assert block("subsample", 1, 6, 1, kernel=5)(x).shape == (1, 6, 28, 28)  # stride 1: no subsampling


def test_vgg_stack():
    stage = block("vgg", 3, 8, 2, convs=3)
    assert [c.kernel_size for c in convs(stage)] == [(3, 3)] * 3
    assert isinstance(stage[-1], nn.MaxPool2d)
    assert stage(torch.randn(1, 3, 12, 12)).shape == (1, 8, 6, 6)
    strided = block("vgg", 3, 8, 2, convs=2, pool="none")
    assert [c.stride for c in convs(strided)] == [(2, 2), (1, 1)]
    assert block("vgg", 3, 8, 1, convs=2)(torch.randn(1, 3, 12, 12)).shape == (1, 8, 12, 12)
    with pytest.raises(ValueError, match="channel count"):
        block("vgg", 3, 8, 2, pool="avg_max_cat")


def test_mlpconv():
    m = block("mlpconv", 3, 8, 4, kernel=11, padding="valid", mlp=2, norm="none")
    assert [c.kernel_size for c in convs(m)] == [(11, 11), (1, 1), (1, 1)]
    assert m(torch.randn(1, 3, 227, 227)).shape == (1, 8, 55, 55)  # NiN's conv1 at Caffe's 227 crop


# --------------------------------------------------------------------------------------------- inception


def test_inception_v1_concatenates_its_branches():
    params = dict(c1=3, c3r=4, c3=5, c5r=2, c5=6, pool_proj=7)
    cls = BLOCKS.get("inception")
    assert cls.out_channels_for(8, **params) == 21
    m = block("inception", 8, 21, **params)
    assert [b[-1].out_channels for b in m.branches] == [3, 5, 6, 7]  # concatenation order
    assert m(torch.randn(2, 8, 9, 9)).shape == (2, 21, 9, 9)
    with pytest.raises(ValueError, match="omit `channels`"):
        block("inception", 8, 20, **params)
    # No 1x1 reductions: the naive module; no pool branch; a stride reduces every branch.
    naive = block("inception", 8, 14, c1=3, c3r=0, c3=5, c5r=0, c5=6, pool_proj=0)
    assert len(naive.branches) == 3 and [c.in_channels for c in convs(naive)] == [8, 8, 8]
    assert block("inception", 8, 21, 2, **params)(torch.randn(1, 8, 9, 9)).shape == (1, 21, 5, 5)


def test_inception_factorised_5x5():
    five = block("inception", 8, 16, c1=4, c3r=2, c3=4, c5r=2, c5=4, pool_proj=4)
    two_threes = block("inception", 8, 16, c1=4, c3r=2, c3=4, c5r=2, c5=4, pool_proj=4, factorize5=True)
    assert [c.kernel_size for c in convs(five.branches[2])] == [(1, 1), (5, 5)]
    assert [c.kernel_size for c in convs(two_threes.branches[2])] == [(1, 1), (3, 3), (3, 3)]
    assert two_threes(torch.randn(1, 8, 7, 7)).shape == (1, 16, 7, 7)


def test_inception_v3_modules():
    b = block("inception_b", 768, 768, c7r=128)
    kernels = {c.kernel_size for c in convs(b)}
    assert kernels == {(1, 1), (1, 7), (7, 1)}  # every 7x7 is factorised into 1x7 + 7x1
    c = BLOCKS.get("inception_c")
    assert c.out_channels_for(1280) == 320 + 2 * 384 + 2 * 384 + 192 == 2048
    small = block("inception_c", 8, 18, c1=2, c3r=2, c3=3, c3dr=2, c3d=3, pool_proj=4)
    assert small(torch.randn(1, 8, 5, 5)).shape == (1, 18, 5, 5)
    # The expanded filter bank: 1x3 and 3x1 read the same input side by side.
    fan = small.branches[1][-1]
    assert [m[0].kernel_size for m in fan] == [(1, 3), (3, 1)] and fan[0][0].in_channels == fan[1][
        0
    ].in_channels
    a = BLOCKS.get("inception_a")
    assert a.out_channels_for(192, pool_proj=32) == 256 and a.out_channels_for(256, pool_proj=64) == 288


def test_grid_reduction():
    cls = BLOCKS.get("inception_reduction")
    assert cls.out_channels_for(288) == 384 + 96 + 288  # strided convs + the pooled input
    valid = block("inception_reduction", 8, 16, 2, branches=[[[4, 3]], [[2, 1], [4, 3]]])
    assert valid(torch.randn(1, 8, 35, 35)).shape == (1, 16, 17, 17)  # v3: 35 -> 17
    same = block("inception_reduction", 8, 16, 2, branches=[[[4, 3]], [[2, 1], [4, 3]]], padding="same")
    assert same(torch.randn(1, 8, 35, 35)).shape == (1, 16, 18, 18)
    assert isinstance(valid.branches[-1], nn.MaxPool2d)
    assert block("inception_reduction", 8, 8, 2, branches=[[[8, 3]]], pool="none")(
        torch.randn(1, 8, 9, 9)
    ).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="same square kernel"):
        block("inception_reduction", 8, 16, 2, branches=[[[4, 3]], [[4, 1]]])
    with pytest.raises(ValueError, match=r"\[channels, kernel\]"):
        block("inception_reduction", 8, 16, 2, branches=[[4, 3]])


def test_inception_mixed_branches_and_fan():
    # Inception v4's 8x8 module: 1x1 | 1x1 -> [1x3, 3x1] | 1x1 -> 3x1 -> 1x3 -> [1x3, 3x1] | avg pool -> 1x1.
    branches = [[[4, 1]], [[6, 1], [[3, [1, 3]], [3, [3, 1]]]], [[6, 1], [7, [3, 1]], [8, [1, 3]], [[5, 3]]]]
    m = block("inception_mixed", 10, 4 + 6 + 5 + 2, branches=branches, pool_proj=2)
    assert m(torch.randn(2, 10, 6, 6)).shape == (2, 17, 6, 6)
    weights = sorted((c.out_channels, c.in_channels, *c.kernel_size) for c in convs(m))
    assert (
        (3, 6, 1, 3) in weights and (3, 6, 3, 1) in weights and (5, 8, 3, 3) in weights
    )  # fans read the chain
    strided = block("inception_mixed", 10, 17, 2, branches=branches, pool_proj=2)
    assert strided(torch.randn(1, 10, 6, 6)).shape == (1, 17, 3, 3)
    with pytest.raises(ValueError, match="17 channels"):
        block("inception_mixed", 10, 16, branches=branches, pool_proj=2)
    with pytest.raises(ValueError, match="branches"):
        block("inception_mixed", 10, 4, branches=[[]])


def test_ciresan_mlp_layer_widths():
    spec = {**load("ciresan2010"), "input_size": 28}
    linears = [m for m in build_model(spec).modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 2500), (2500, 2000), (2000, 1500), (1500, 1000), (1000, 500), (500, 10),
    ]  # fmt: skip
    assert meta_cost(spec)[0] == 11_972_510  # 784-2500-2000-1500-1000-500-10 with biases


def test_inception_resnet_scaled_residual():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    off = block("inception_resnet", 8, 8, scale=0.0, branches=[[[4, 1]], [[4, 1], [4, 3]]]).eval()
    assert torch.equal(off(x), F.relu(x))  # a zero-scaled residual leaves act(x)
    linear = block("inception_resnet", 8, 8, scale=0.0, final_act=False, branches=[[[4, 1]]]).eval()
    assert torch.equal(linear(x), x)
    m = block(
        "inception_resnet", 8, 8, scale=0.5, final_act=False, branches=[[[4, 1]], [[4, 1], [4, 3]]]
    ).eval()
    assert torch.allclose(m(x), x + 0.5 * m.project(m.branches(x)))
    assert (
        m.project[0].kernel_size == (1, 1) and m.project[0].bias is not None and len(m.project) == 1
    )  # linear
    assert block("inception_resnet", 8, 16, 2)(x).shape == (2, 16, 3, 3)  # projection shortcut


# ------------------------------------------------------------------------------------------------- dense


def test_dense_block_growth():
    cls = BLOCKS.get("dense_block")
    assert cls.out_channels_for(64, layers=6, growth=32) == 256
    m = block("dense_block", 8, 8 + 3 * 4, layers=3, growth=4, bottleneck=4).eval()
    x = torch.randn(2, 8, 5, 5)
    y = m(x)
    assert y.shape == (2, 20, 5, 5)
    assert torch.equal(y[:, :8], x)  # the input is passed on unchanged, each layer appends its k maps
    # Layer i reads the input and all earlier layers; its bottleneck is 4k wide; pre-activation (BN first).
    assert [layer.body[0][-1].in_channels for layer in m.layers] == [8, 12, 16]
    assert all(layer.body[0][-1].out_channels == 16 for layer in m.layers)
    assert isinstance(m.layers[0].body[0][0], nn.BatchNorm2d)
    no_bottleneck = block("dense_block", 8, 12, layers=1, growth=4, bottleneck=0)
    assert [c.kernel_size for c in convs(no_bottleneck)] == [(3, 3)]
    with pytest.raises(ValueError, match="omit `channels`"):
        block("dense_block", 8, 16, layers=3, growth=4)


def test_dense_transition_compresses_and_pools():
    cls = BLOCKS.get("dense_transition")
    assert (
        cls.out_channels_for(256, compression=0.5) == 128 and cls.out_channels_for(25, compression=0.5) == 12
    )
    t = block("dense_transition", 16, 8, 2)
    assert [c.kernel_size for c in convs(t)] == [(1, 1)] and isinstance(t[-1], nn.AvgPool2d)
    assert t(torch.randn(1, 16, 8, 8)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="compression"):
        block("dense_transition", 16, 8, 2, compression=0.0)


# -------------------------------------------------------------------------------------------------- ENet


def test_enet_initial_concatenates_conv_and_pool():
    m = block("enet_initial", 3, 16, 2, act="none", norm="none")
    x = torch.randn(1, 3, 10, 10)
    y = m(x)
    assert y.shape == (1, 16, 5, 5) and m.conv.out_channels == 13
    assert torch.equal(y[:, 13:], F.max_pool2d(x, 2))
    assert m(torch.randn(1, 3, 7, 7)).shape == (1, 16, 4, 4)  # odd sizes: both halves agree
    with pytest.raises(ValueError, match="more output channels"):
        block("enet_initial", 16, 16, 2)


def test_enet_bottleneck_variants():
    down = block("enet_bottleneck", 16, 64, 2, act="none", norm="none", dropout=0.0).eval()
    nn.init.zeros_(down.ext[2][0].weight)  # silence the expansion: only the shortcut remains
    nn.init.zeros_(down.ext[2][0].bias)
    x = torch.randn(1, 16, 8, 8)
    expected = F.pad(F.max_pool2d(x, 2), (0, 0, 0, 0, 0, 48))  # max pool, channels zero-padded
    assert torch.equal(down(x), expected)
    assert down.ext[0][0].kernel_size == (2, 2) and down.ext[0][0].stride == (2, 2)
    assert down.ext[1][0].in_channels == 16  # a quarter of the output width inside
    asym = block("enet_bottleneck", 64, 64, asymmetric=5)
    assert [c.kernel_size for c in convs(asym.ext[1])] == [(5, 1), (1, 5)]
    dilated = block("enet_bottleneck", 64, 64, dilation=8)
    assert convs(dilated.ext[1])[0].dilation == (8, 8)
    assert dilated(torch.randn(2, 64, 7, 7)).shape == (2, 64, 7, 7)
    prelu = block("enet_bottleneck", 64, 64, act="prelu").act
    assert isinstance(prelu, nn.PReLU) and prelu.num_parameters == 64  # ENet's PReLU, one slope per channel
    assert isinstance(dilated.ext[-1], nn.Dropout2d)  # spatial dropout


# ----------------------------------------------------------------------------------------------- fractal


def test_fractal_structure():
    m = block("fractal", 3, 8, columns=4)
    assert len(convs(m)) == 2**4 - 1  # f_C has 2^C - 1 convs
    assert sum(c.in_channels == 3 for c in convs(m)) == 4  # one per column reads the block input

    def depth(f) -> int:
        return 1 if f.first is None else 2 * depth(f.first)

    assert depth(m.fractal) == 2**3  # the deepest column
    x = torch.randn(2, 3, 8, 8)
    assert len(m.fractal(x, m.join)) == 4  # the last join merges C columns


def test_fractal_join_and_drop_path():
    m = block("fractal", 3, 4, columns=3, norm="none", drop_path=0.5)
    paths = [torch.full((64, 1, 2, 2), float(v)) for v in (0.0, 3.0, 9.0)]
    m.eval()
    assert torch.equal(m.join(paths), torch.full((64, 1, 2, 2), 4.0))  # eval: plain mean, deterministic
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    m.train()
    torch.manual_seed(0)
    joined = m.join(paths)
    # Per sample: the mean of a non-empty subset of {0, 3, 9}; with p = 0.5 several subsets occur.
    subset_means = {0.0, 3.0, 9.0, 1.5, 4.5, 6.0, 4.0}
    values = {round(v, 4) for v in joined[:, 0, 0, 0].tolist()}
    assert values <= subset_means and len(values) > 2
    assert all(torch.equal(s, s[0, 0, 0].expand_as(s)) for s in joined)  # the whole sample shares its subset
    m.drop_path = 0.999  # almost everything dropped: a sample still keeps exactly one path
    assert {round(v, 4) for v in m.join(paths)[:, 0, 0, 0].tolist()} <= {0.0, 3.0, 9.0}
    m.drop_path = 0.0
    assert torch.equal(m.join(paths), torch.full((64, 1, 2, 2), 4.0))
    with torch.no_grad():
        m.drop_path = 0.5
        torch.manual_seed(1)
        assert not torch.equal(m(x), m(x))  # training drops paths at random


def test_fractal_pooling_reaches_one_pixel_from_28():
    # Ceil-mode 2x2 pools: 28-14-7-4-2-1, and 32-16-8-4-2-1 as in the paper.
    for size in (28, 32):
        assert tuple(meta_cost({**load("fractalnet"), "input_size": size})[2]) == (1, 512, 1, 1)


def fractal_columns_run(net: nn.Module) -> list[list[int]]:
    """Run one training batch; per fractal block, the column (0 = deepest) of every conv that ran."""
    ran: list[list[int]] = []
    hooks = []
    for block_mod in (m for m in net.modules() if type(m).__name__ == "FractalBlock"):
        ran.append([])
        for sub in (m for m in block_mod.modules() if type(m).__name__ == "_Fractal"):
            # The `short` conv of a sub-fractal with L columns belongs to column L - 1 (counted from the deepest).
            def hook(_m, _i, _o, sink=ran[-1], col=sub.levels - 1):
                sink.append(col)

            hooks.append(sub.short.register_forward_hook(hook))
    net.train()
    net(torch.randn(2, 3, 16, 16))
    for h in hooks:
        h.remove()
    return ran


def test_fractal_global_drop_path_uses_exactly_one_column_in_every_block():
    spec = {
        "in_channels": 3, "num_classes": 5, "input_size": 16, "norm": "batchnorm",
        "stages": [{"block": "fractal", "channels": 4, "columns": 3, "stride": 2, "global_drop": 1.0}] * 3,
    }  # fmt: skip
    net = build_model(spec)
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        ran = fractal_columns_run(net)
        assert len(ran) == 3
        cols = {c for block_cols in ran for c in block_cols}
        assert len(cols) == 1, f"a global-drop batch ran convs of several columns: {ran}"
        (col,) = cols
        # Column 0 (the deepest) of C = 3 has 4 convs, column 1 has 2, column 2 one: exactly that column.
        assert all(len(block_cols) == 2 ** (3 - 1 - col) for block_cols in ran)
        seen.add(col)
    assert seen == {0, 1, 2}  # every column is drawn


def test_fractal_mixes_local_and_global_batches():
    spec = {
        "in_channels": 3, "num_classes": 5, "input_size": 16,
        "stages": [{"block": "fractal", "channels": 4, "columns": 3, "stride": 2, "global_drop": 0.5}] * 2,
    }  # fmt: skip
    net = build_model(spec)
    torch.manual_seed(0)
    local = sum(all(len(c) == 2**3 - 1 for c in fractal_columns_run(net)) for _ in range(40))
    assert 8 <= local <= 32  # about half the batches are local (every conv runs), the rest one column
    net.eval()  # evaluation: every column, plain means
    with torch.no_grad():
        x = torch.randn(2, 3, 16, 16)
        assert torch.equal(net(x), net(x))
    with pytest.raises(ValueError, match="global_drop"):
        block("fractal", 3, 4, global_drop=1.5)


def test_ciresan_mlp_trains_on_28px_grey_images():
    # The MLP (scaled tanh, no convolutions) learns: plain SGD fits a fixed batch of 28 px one-channel images.
    torch.manual_seed(0)
    model = build_model({**load("ciresan2010"), "input_size": 28, "in_channels": 1, "num_classes": 10})
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_small_stem_variants_run_at_32px_rgb(name):
    spec = {**load(name), "in_channels": 3, "num_classes": 10, "input_size": 32}
    torch.manual_seed(0)
    with torch.no_grad():
        y = build_model(spec).eval()(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
