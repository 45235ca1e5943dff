"""Every config file composes with Hydra, and every reference model builds and runs at the dataset's scale."""

from __future__ import annotations

import pytest
import torch

from blocks import build_model
from nas.config import CONF_DIR, resolve_spec

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
GROUPS = {
    g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in ("data", "optim", "trainer", "logger")
}


def test_reference_networks_are_all_there():
    expected = {
        "lenet5", "alexnet", "caffenet", "vgg11", "vgg16", "nin", "googlenet", "inception_v3",
        "inception_resnet_small", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "preact_resnet18", "wide_resnet50_2", "resnext50_32x4d", "densenet121", "xception", "mobilenet_v1",
        "squeezenet1_0", "squeezenet1_1", "enet_encoder", "fractalnet", "ciresan2010", "overfeat_fast", "vgg13",
        "vgg19", "inception_v4", "inception_resnet_v2", "nb201", "resnet20", "resnet8", "resnet14", "mobilenet_v2",
        "mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v2_035", "mobilenet_v2_050",
    }  # fmt: skip
    assert expected <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_and_runs_on_fashion_mnist_shape(compose, model):
    cfg = compose("train", [f"model={model}"])
    spec = resolve_spec(cfg)
    assert (spec["in_channels"], spec["num_classes"], spec["input_size"]) == (1, 10, 28)
    net = build_model(spec).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert spec.get("family"), f"{model}.yaml names no family (the search picks baselines by it)"


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes(compose, group, option):
    cfg = compose("train", [f"{group}={option}"])
    assert cfg[group]


def test_unknown_model_lists_available_options(compose):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="resnet18"):
        compose("train", ["model=resnet19"])
