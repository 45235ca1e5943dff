"""Each trained space holds its family's textbook networks: the listed parameters render to the same network."""

from __future__ import annotations

import pytest

from nas.latency import spec_costs
from nas.space import list_spaces, load_space
from nas.space.references import layers, mismatch, model_spec, sized, to_params

FASHION = {"channels": 1, "classes": 10, "size": 28}
HELD = [(space, model) for space, _ in list_spaces() for model in load_space(space).references]
# The textbook networks each trained space holds; its YAML says why its family's others are not points of it or
# break its constraints at 28 px (no ResNeXt-29, DenseNet, GoogLeNet or RegNet-200MF fits 1 M parameters and
# 50 M MACs). A reference dropped from a space, or one added without being named here, fails.
EXPECTED = {
    "resnet_like": {"resnet8", "resnet14", "resnet20"},
    "separable_like": {"mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v2_035", "mobilenet_v2_050"},
    "resnext_like": set(),
    "densenet_like": set(),
    "inception_like": set(),
    "regnet": set(),
}


@pytest.mark.parametrize(("space", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_each_trained_space_holds_the_textbook_networks_that_fit_its_constraints(space, expected):
    sp = load_space(space)
    assert set(sp.references) == expected
    for model in expected:  # a held network outside the constraints would be neither a trial nor a baseline
        cost = spec_costs(sized(sp.compile(to_params(sp, model)), **FASHION))
        assert sp.constraints.violations(cost) == [], model


@pytest.mark.parametrize(("space", "model"), HELD, ids=[f"{s}-{m}" for s, m in HELD])
def test_a_reference_renders_to_its_own_network(space, model):
    sp = load_space(space)
    point = sized(sp.compile(to_params(sp, model)), **FASHION)
    assert mismatch(point, sized(model_spec(model), **FASHION)) == []


def test_a_different_network_is_told_apart_layer_by_layer():
    sp = load_space("resnet_like")
    resnet20 = sized(model_spec("resnet20"), **FASHION)
    wider = sized(sp.compile({**to_params(sp, "resnet20"), "width_2": 72}), **FASHION)
    assert any(m.startswith("parameters") for m in mismatch(wider, resnet20))
    deeper = sized(sp.compile({**to_params(sp, "resnet20"), "depth_2": 2}), **FASHION)
    assert len(layers(deeper)) < len(layers(resnet20))


def test_the_map_names_what_a_space_holds_when_asked_for_another_network():
    with pytest.raises(KeyError, match="resnet8, resnet14, resnet20"):
        to_params(load_space("resnet_like"), "resnet18")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width_0": 4}, "outside the space's ranges"),
        ({"expansion": 4}, "not parameters of its point"),
        ({"n_stages": 5}, "not a point of the space"),
    ],
)
def test_a_reference_that_is_not_a_point_is_refused_when_the_space_loads(change, message):
    raw = dict(load_space("resnet_like").raw)
    raw["references"] = {"resnet20": {**raw["references"]["resnet20"], **change}}
    with pytest.raises(ValueError, match=message):
        load_space(raw)
