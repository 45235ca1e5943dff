"""Weight init for ablation runs: LSUV gives unit-variance layer outputs; schemes are deterministic per seed."""

import itertools

import pytest
import torch

from blocks import build_model
from experiments.ablation.init import WeightInit, kaiming_init, lsuv_init, sample_batch
from nas.data import build_datamodule

SPEC = {
    "name": "tiny", "in_channels": 1, "num_classes": 10, "input_size": 16, "act": "relu", "norm": "none",
    "stages": [{"block": "conv", "channels": 8, "kernel": 3}, {"block": "pool", "type": "max", "kernel": 3,
               "stride": 2, "ceil": True}, {"block": "conv", "channels": 16, "kernel": 3}],
    "head": {"type": "fc", "hidden": [32], "dropout": 0.5},
}  # fmt: skip


def test_lsuv_gives_unit_variance_outputs_layer_by_layer():
    torch.manual_seed(0)
    model = build_model(SPEC)
    x = torch.randn(64, 1, 16, 16)
    stds = lsuv_init(model, x)
    assert len(stds) == 4  # 2 convs, 2 linear layers
    assert all(abs(s - 1.0) < 0.1 for s in stds.values()), stds
    assert model.training  # mode restored
    # the default init shrinks the signal through the net; LSUV keeps the logits at unit scale
    with torch.no_grad():
        assert 0.5 < float(model.eval()(x).std()) < 2.0


def test_schemes_are_deterministic_under_a_seed():
    def weights(scheme_fn):
        torch.manual_seed(3)
        model = build_model(SPEC)
        scheme_fn(model)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    x = torch.randn(32, 1, 16, 16)
    assert torch.equal(weights(kaiming_init), weights(kaiming_init))
    assert torch.equal(weights(lambda m: lsuv_init(m, x)), weights(lambda m: lsuv_init(m, x)))
    assert not torch.equal(weights(kaiming_init), weights(lambda m: None))


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="valid: default, kaiming, lsuv"):
        WeightInit("xavier")


def test_lsuv_initialises_on_the_first_training_batch_not_validation_images():
    dm = build_datamodule({"name": "synthetic", "train_size": 200, "test_size": 20, "image_size": 8,
                           "batch_size": 16, "device": "cpu", "seed": 5})  # fmt: skip
    dm.setup("fit")
    first = [x for x, _ in itertools.islice(dm.train_dataloader(), 2)]
    x = sample_batch(dm, 24)
    assert torch.equal(
        x, torch.cat(first)[:24]
    )  # what training epoch 0 starts with, augmented as training is
    val = next(iter(dm.val_dataloader()))[0]
    assert not any(torch.equal(x[:1], val[i : i + 1]) for i in range(len(val)))
    # drawing it leaves the run's data order alone
    again = next(iter(dm.train_dataloader()))[0]
    assert torch.equal(again, first[0])
