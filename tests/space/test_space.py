"""Search spaces: every conf/space file compiles to specs that build; the YAML syntax; bad input is refused."""

from __future__ import annotations

import copy

import pytest
import torch

from blocks import build_model
from nas.space import FixedSuggester, Space, SpecRejected, evaluate, list_spaces, load_space
from nas.space.derive import regnet
from nas.space.template import TemplateError

SPACES = [name for name, _ in list_spaces()]
REQUIRED = {"resnet_like", "resnext_like", "inception_like", "separable_like", "densenet_like", "regnet"}

TINY = {
    "name": "tiny",
    "stages": 2,
    "params": {
        "block": {"choices": ["conv", "basic"]},
        "kernel": {"choices": [3, 5], "when": {"block": "conv"}},
        "width": {"type": "int", "low": 4, "high": 16, "step": 4, "per_stage": True},
    },
    "spec": {
        "act": "relu",
        "stem": [{"block": "conv", "channels": 4}],
        "stages": [
            {"for_each_stage": {"block": "$block", "channels": "$width", "kernel": "$kernel", "stride": 2}}
        ],
        "head": {"type": "linear", "pool": "avg"},
    },
}


def small(spec: dict) -> dict:
    return {**spec, "in_channels": 1, "num_classes": 10, "input_size": 28}


def test_required_spaces_exist():
    assert REQUIRED <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_space_samples_build_at_small_scale(name):
    space = load_space(name)
    built = 0
    for seed in range(4):
        try:
            sample = space.sample_random(seed)
        except SpecRejected:
            continue
        # On the meta device: the same assembly and shape checks, without computing (cheap on a busy CPU).
        with torch.device("meta"):
            model = build_model(small(sample.spec))
        assert model.out_channels > 0
        # The recorded parameters alone give the same spec back (exports, resume, reuse rely on it).
        assert space.compile(sample.params) == sample.spec
        built += 1
    assert built >= 2


def test_conditional_parameter_only_drawn_when_its_condition_holds():
    space = Space.from_dict(TINY)
    seen = {"conv": False, "basic": False}
    for seed in range(20):
        s = space.sample_random(seed)
        block = s.params["block"]
        seen[block] = True
        assert ("kernel" in s.params) == (block == "conv")
        # An inactive parameter leaves its key out of the spec (the block's default applies).
        assert ("kernel" in s.spec["stages"][0]) == (block == "conv")
        assert [st["channels"] for st in s.spec["stages"]] == [s.params["width_0"], s.params["width_1"]]
    assert all(seen.values())


def test_regnet_widths_match_pycls_regnetx_200mf():
    # RegNetX-200MF: w0=24, wa=36.44, wm=2.49, depth=13, group width 8 -> widths 24-56-152-368, depths 1-1-4-7.
    n, d = regnet({"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8, "bottleneck_ratio": 1})
    assert n == 4
    assert d["stage_width"] == [24, 56, 152, 368]
    assert d["stage_depth"] == [1, 1, 4, 7]
    assert d["stage_group_width"] == [8, 8, 8, 8]


def test_regnet_too_many_stages_is_a_rejection():
    with pytest.raises(SpecRejected, match="stages"):
        regnet(
            {"w0": 8, "wa": 64, "wm": 1.5, "depth": 12, "group_width": 8, "bottleneck_ratio": 1}, max_stages=2
        )


def test_template_syntax():
    raw = copy.deepcopy(TINY)
    raw["params"]["depth"] = {"type": "int", "low": 0, "high": 0, "per_stage": True}
    raw["spec"]["stages"] = [
        {"if": "= stages > 1", "block": "pool", "type": "max"},
        {
            "for_each_stage": [
                {"block": "conv", "channels": "= width * 2", "stride": {"by_stage": [1, 2]}},
                {"block": "basic", "channels": "$width", "repeat": "$depth"},  # depth 0: dropped
            ]
        },
    ]
    s = Space.from_dict(raw).sample(
        FixedSuggester({"block": "basic", "width_0": 4, "width_1": 8, "depth_0": 0, "depth_1": 0})
    )
    assert s.spec["stages"] == [
        {"block": "pool", "type": "max"},
        {"block": "conv", "channels": 8, "stride": 1},
        {"block": "conv", "channels": 16, "stride": 2},
    ]


def test_expressions_are_arithmetic_only():
    assert evaluate("max(8, w * 2) if s > 0 else 1", {"w": 5, "s": 1}) == 10
    assert evaluate("make_divisible(w * 1.3)", {"w": 20}) == 24
    with pytest.raises(TemplateError, match="not allowed"):
        evaluate("w.__class__", {"w": 1})
    with pytest.raises(TemplateError, match="not allowed"):
        evaluate("__import__('os')", {})
    with pytest.raises(TemplateError, match="unknown name 'v'"):
        evaluate("v + 1", {"w": 1})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["params"].update(width={"type": "int", "low": 16, "high": 4, "per_stage": True}),
            "low .* > high",
        ),
        (
            lambda r: r["params"].update(x={"type": "int", "low": 1, "high": 8, "step": 2, "log": True}),
            "step.*log",
        ),
        (lambda r: r["params"].update(x={"type": "weird", "low": 1, "high": 2}), "unknown type 'weird'"),
        (lambda r: r["params"].update(x={"choices": []}), "non-empty"),
        (lambda r: r["params"].update(x={"low": 1, "high": 2, "bogus": 1}), "unknown keys"),
        (
            lambda r: r["params"].update(x={"choices": [1], "when": {"later": 1}}, later={"choices": [1]}),
            "declared",
        ),
        (lambda r: r["spec"].update(act="$nope"), "unknown reference '\\$nope'"),
        (lambda r: r.update(stages=0), "stages"),
        (lambda r: r.update(extra=1), "unknown keys"),
        (lambda r: r.update(constraints={"flops": {"max": 1}}), "unknown constraint"),
        (lambda r: r.update(fidelity={"epoch": 2}), "fidelity maps epochs/fraction/image_size"),
        (lambda r: r.update(constraints={"params": {"min": 5, "max": 1}}), "min .* > max"),
    ],
)
def test_bad_space_is_refused_with_a_message(change, message):
    raw = copy.deepcopy(TINY)
    change(raw)
    with pytest.raises(ValueError, match=message):
        Space.from_dict(raw)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["space=resnet_like"], {"epochs": 1, "fraction": 1.0, "image_size": 14}),  # its calibrated fidelity
        (["space=resnet_like", "fidelity.image_size=28"], {"epochs": 1, "fraction": 1.0, "image_size": 28}),
        (["space=separable_like"], {"epochs": 1, "fraction": 0.1, "image_size": None}),  # search.yaml's
    ],
)
def test_a_space_states_its_default_fidelity_and_the_command_line_wins(overrides, expected):
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose("search", overrides=overrides))
    assert cfg["fidelity"] == expected


def test_unknown_space_lists_the_valid_ones():
    with pytest.raises(KeyError, match="valid spaces: .*resnet_like"):
        load_space("no_such_space")


def test_space_hash_tracks_the_search_space_not_the_text():
    a = Space.from_dict(TINY)
    b = Space.from_dict(
        {**copy.deepcopy(TINY), "description": "other words", "constraints": {"params": {"max": 9}}}
    )
    changed = copy.deepcopy(TINY)
    changed["params"]["width"]["high"] = 32
    assert a.hash() == b.hash()
    assert a.hash() != Space.from_dict(changed).hash()


def test_constraints_report_each_violation():
    space = Space.from_dict(
        {**TINY, "constraints": {"params": {"max": 1000}, "macs": {"min": 10, "max": 20}}}
    )
    assert space.constraints.violations({"params": 500, "macs": 15}) == []
    found = space.constraints.violations({"params": 2000, "macs": 5})
    assert len(found) == 2 and "params" in found[0] and "min" in found[1]
