"""The block contract, checked for every registered block, head, pooling and activation.

Every block `Block(in_channels, out_channels, stride, *, act, norm, **params)` must, for stride 1 and 2 and
for in == out and in != out: give (N, out_channels, H', W') with H' = ceil(H / stride) (a stride-2 block may
instead use an unpadded 3x3 window, (H - 3) // 2 + 1, like Inception's grid reductions; a block with another
rule defines `out_size(size, stride, **params)`), a finite output, a gradient for every parameter in
training mode, and a deterministic output in eval mode. A block whose output channels follow from its
params (`out_channels_for`) may refuse other channel counts with a ValueError. Blocks say what to test with
`example_params` (dict) and `example_channels` ((in, out), default (8, 16)); a block whose example has
in != out may refuse in == out with a ValueError (ENet's initial block concatenates its input). The
registries are read at collection time, so blocks added later are covered without touching this file.
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
import subprocess
import sys

import pytest
import torch
from torch import nn

import blocks
from blocks.heads import create_head
from blocks.layers import ACTS, NORMS, ConvNormAct
from blocks.pooling import POOLS, create_pool2d
from blocks.registry import BLOCKS, HEADS, Registry, register_block

SIZE = 16
BATCH = 2
BLOCK_NAMES = BLOCKS.names()


def example(cls) -> tuple[dict, tuple[int, int]]:
    params = dict(getattr(cls, "example_params", None) or {})
    cin, cout = getattr(cls, "example_channels", None) or (8, 16)
    return params, (int(cin), int(cout))


def build(name: str, stride: int, same: bool, act: str = "relu", norm: str = "batchnorm"):
    """The block `name` with its example params; returns (block, in_channels, out_channels)."""
    cls = BLOCKS.get(name)
    params, (cin, cout) = example(cls)
    if same:
        cout = cin
    try:
        return cls(cin, cout, stride, act=act, norm=norm, **params), cin, cout
    except ValueError as e:
        assert str(e), f"{name}: refusing {cin} -> {cout} channels needs a message"
        rule = getattr(cls, "out_channels_for", None)
        natural = None if rule is None else int(rule(cin, **params))
        if natural is not None and natural != cout:
            # A block with its own channel rule may refuse other counts: test it at its own count.
            return cls(cin, natural, stride, act=act, norm=norm, **params), cin, natural
        if same and "example_channels" in vars(cls) and cls.example_channels[0] != cls.example_channels[1]:
            return None, cin, cout  # declared to need different in / out channels (ENet's initial block)
        raise


def expected_sizes(name: str, stride: int) -> set[int]:
    cls = BLOCKS.get(name)
    rule = getattr(cls, "out_size", None)
    if rule is not None:
        return {int(rule(SIZE, stride, **example(cls)[0]))}
    sizes = {math.ceil(SIZE / stride)}
    if stride > 1:
        sizes.add((SIZE - 3) // stride + 1)
    return sizes


def check_forward_backward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Training-mode forward and backward: finite output, every parameter (and the input) gets a gradient."""
    module.train()
    x = x.clone().requires_grad_()
    y = module(x)
    assert torch.isfinite(y).all(), "non-finite output"
    # A random projection, not a plain sum: a sum through a final BatchNorm has zero gradient.
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without a gradient: {missing}"
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    assert x.grad is not None and torch.isfinite(x.grad).all(), "no finite gradient reaches the input"
    return y


@pytest.mark.parametrize("same", [True, False], ids=["in==out", "in!=out"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_contract(name, stride, same):
    torch.manual_seed(0)
    block, cin, cout = build(name, stride, same)
    if block is None:
        return  # refused in == out with a ValueError, as its example_channels announce
    x = torch.randn(BATCH, cin, SIZE, SIZE)
    y = check_forward_backward(block, x)
    assert y.ndim == 4 and tuple(y.shape[:2]) == (BATCH, cout)
    assert y.shape[-2] == y.shape[-1] and y.shape[-1] in expected_sizes(name, stride), tuple(y.shape)
    block.eval()
    with torch.no_grad():
        a, b = block(x), block(x)
    assert a.shape == y.shape and torch.equal(a, b), "eval mode must be deterministic"


@pytest.mark.parametrize("act, norm", [("maxout", "batchnorm_after"), ("prelu", "none")])
@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_honours_act_and_norm(name, act, norm):
    """Blocks built through ConvNormAct work with maxout (channel halving), norm after act, and no norm."""
    torch.manual_seed(0)
    block, cin, cout = build(name, 2, False, act=act, norm=norm)
    y = check_forward_backward(block, torch.randn(BATCH, cin, SIZE, SIZE))
    assert tuple(y.shape[:2]) == (BATCH, cout)


@pytest.mark.parametrize("act", ["relu", "maxout"])
@pytest.mark.parametrize("name", HEADS.names())
def test_head_contract(name, act):
    torch.manual_seed(0)
    head = create_head(
        name, 8, 5, feature_size=(4, 4), act=act, **({} if name in ("linear", "gap") else {"hidden": [12]})
    )
    y = check_forward_backward(head, torch.randn(BATCH, 8, 4, 4))
    assert y.shape == (BATCH, 5)


@pytest.mark.parametrize("name", HEADS.names())
def test_head_on_a_1x1_map(name):
    head = (
        create_head(name, 8, 5, feature_size=(1, 1), hidden=[12])
        if name not in ("linear", "gap")
        else (create_head(name, 8, 5, feature_size=(1, 1)))
    )
    assert check_forward_backward(head, torch.randn(BATCH, 8, 1, 1)).shape == (BATCH, 5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", POOLS.names())
def test_pooling_contract(name, stride):
    torch.manual_seed(0)
    pool = create_pool2d(name, 3, stride, 1, channels=8)
    y = check_forward_backward(pool, torch.randn(BATCH, 8, SIZE, SIZE))
    assert y.shape == (
        BATCH,
        16 if name == "avg_max_cat" else 8,
        math.ceil(SIZE / stride),
        math.ceil(SIZE / stride),
    )


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("act", ACTS.names())
def test_activation_and_norm_contract(act, norm):
    torch.manual_seed(0)
    unit = ConvNormAct(4, 6, 3, 2, act=act, norm=norm)
    y = check_forward_backward(unit, torch.randn(BATCH, 4, 8, 8))
    assert y.shape == (BATCH, 6, 4, 4)


@pytest.mark.parametrize(
    "registry, name, valid",
    [
        (BLOCKS, "resnet9000", "conv"),
        (HEADS, "svm", "linear"),
        (POOLS, "median", "max"),
        (ACTS, "swish", "relu"),
        (NORMS, "layernorm", "batchnorm"),
    ],
)
def test_unknown_names_list_the_valid_ones(registry, name, valid):
    with pytest.raises(KeyError) as e:
        registry.get(name)
    msg = str(e.value)
    assert name in msg and valid in msg and ", " in msg


def test_duplicate_registration_is_refused():
    with pytest.raises(KeyError, match="already registered"):
        register_block("conv")(type("Impostor", (nn.Module,), {}))
    assert BLOCKS.get("conv").__name__ == "Conv"
    reg = Registry("thing")
    reg.register("a")(int)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a")(float)


def test_every_block_is_covered():
    """Every block any module of the library registers is registered by `import blocks` alone, so the
    contract tests above (parametrised over BLOCK_NAMES at collection time) cover each one."""
    for mod in pkgutil.walk_packages(blocks.__path__, "blocks."):
        importlib.import_module(mod.name)
    assert BLOCKS.names() == BLOCK_NAMES, (
        "a block module registers blocks that `import blocks` does not import"
    )
    # A fresh interpreter: importing the package (no build_model call) fills both registries.
    code = "import json, blocks; print(json.dumps([blocks.BLOCKS.names(), blocks.HEADS.names()]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [BLOCK_NAMES, HEADS.names()]
