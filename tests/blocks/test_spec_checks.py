"""A spec that breaks the block contract is refused before anything is built, with one message naming the
field (blocks.contract); every registered block's example parameters and every model config pass."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from blocks import BLOCKS, build_model
from blocks.contract import check_entry, check_spec

CONF_MODEL = Path(__file__).resolve().parents[2] / "conf" / "model"

# ResNet-20 at 16 px: a stem conv and three stages of basic blocks.
SPEC = {
    "name": "resnet20",
    "in_channels": 3,
    "num_classes": 10,
    "input_size": 16,
    "stem": [{"block": "conv", "channels": 16, "kernel": 3}],
    "stages": [
        {"block": "basic", "channels": 16, "repeat": 3, "stride": 1},
        {"block": "basic", "channels": 32, "repeat": 3, "stride": 2},
        {"block": "basic", "channels": 64, "repeat": 3, "stride": 2},
    ],
    "head": {"type": "linear", "pool": "avg"},
}


def changed(path: str, value) -> dict:
    """SPEC with the field at a dotted `path` (e.g. "stages.0.channels") set to `value`."""
    spec = copy.deepcopy(SPEC)
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("stages.0.channels", -4, r"stages\.0\.channels=-4 is invalid: .*positive integer"),
        ("stages.0.channels", 0, r"stages\.0\.channels=0 is invalid"),
        ("stages.0.channels", 2.5, r"stages\.0\.channels=2\.5 is invalid"),
        ("stages.0.channels", True, r"stages\.0\.channels=True is invalid"),
        ("stages.1.repeat", 1.5, r"stages\.1\.repeat=1\.5 is invalid: .*positive integer"),
        ("stages.1.repeat", 0, r"stages\.1\.repeat=0 is invalid"),
        ("stages.1.stride", 0, r"stages\.1\.stride=0 is invalid: .*positive integer"),
        ("stages.1.stride", 1.5, r"stages\.1\.stride=1\.5 is invalid"),
        ("stem.0.kernel", 0, r"stem\.0\.kernel=0 is invalid: kernel must be a positive integer"),
        ("stem.0.kernel", -3, r"stem\.0\.kernel=-3 is invalid"),
        ("stem.0.kernel", 2.5, r"stem\.0\.kernel=2\.5 is invalid: it must be an integer"),
        ("stem.0.groups", 0, r"stem\.0\.groups=0 is invalid: groups must be a positive integer"),
        ("stem.0.dilation", 0, r"stem\.0\.dilation=0 is invalid"),
        ("stem.0.padding", -1, r"stem\.0\.padding=-1 is invalid: padding must be >= 0"),
        ("stem.0.bias", "yes", r"stem\.0\.bias='yes' is invalid: it must be true or false or null"),
        ("stages.0.act", "nope", r"stages\.0\.act: unknown activation 'nope'; valid activations: .*relu"),
        ("stages.0.norm", "nope", r"stages\.0\.norm: unknown norm 'nope'; valid norms: .*batchnorm"),
        ("stages.0.block", "nope", r"stages\.0\.block: unknown block 'nope'; valid blocks: .*basic"),
        (
            "stages.0.foo",
            1,
            r"stages\.0\.foo: block 'basic' has no parameter 'foo'; its parameters: se_ratio",
        ),
        ("head.type", "nope", r"head\.type: unknown head 'nope'; valid heads: .*linear"),
        ("head.dropout", "half", r"head\.dropout='half' is invalid: it must be a number"),
        ("head.foo", 1, r"head\.foo: head 'linear' has no parameter 'foo'; its parameters: .*pool"),
        ("width_mult", 0, r"width_mult=0 is invalid: .*positive number"),
        ("in_channels", 0, r"in_channels=0 is invalid"),
        ("num_classes", 0, r"num_classes=0 is invalid"),
        ("input_size", -32, r"input_size=-32 is invalid"),
    ],
)
def test_a_field_that_breaks_the_contract_is_named_before_anything_is_built(path, value, message):
    with pytest.raises((ValueError, KeyError)) as refused:
        build_model(changed(path, value))
    assert re.match(f"resnet20: {message}", refused.value.args[0]), refused.value.args[0]


def test_a_blocks_own_refusal_names_the_layer():
    # 3 groups cannot split the stem's 3 -> 16 channels: only the block knows its channels, the path is added.
    with pytest.raises(
        ValueError, match=r"^resnet20: stem\.0 \(conv\): conv with 3 groups needs .* divisible"
    ):
        build_model(changed("stem.0.groups", 3))


def test_a_layer_without_a_block_is_named():
    spec = copy.deepcopy(SPEC)
    del spec["stages"][2]["block"]
    with pytest.raises(ValueError, match=r"^resnet20: stages\.2 has no 'block' key; valid blocks: .*basic"):
        build_model(spec)


@pytest.mark.parametrize("name", BLOCKS.names())
def test_every_blocks_example_parameters_meet_the_contract(name):
    params = dict(getattr(BLOCKS.get(name), "example_params", None) or {})
    check_entry({"block": name, "channels": 16, **params}, f"example: {name}")


@pytest.mark.parametrize("path", sorted(CONF_MODEL.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_model_config_meets_the_contract(path):
    check_spec({"num_classes": 10, **yaml.safe_load(path.read_text())})
