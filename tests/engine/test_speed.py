"""The fast training path trains the same function: memory format per network, the probe and its cache."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

import nas.speed as speed
from blocks import build_model
from nas.fit import fit
from tests.conftest import TINY_DATA

# What the search spaces' networks are made of: a stem conv, the 3x3/2 average pool on the stem output,
# residual stages with odd widths, batch norm, dropout in the head (so a stray RNG draw would show).
SPEC = {
    "name": "speed_probe",
    "act": "relu",
    "norm": "batchnorm",
    "stem": [
        {"block": "conv", "channels": 13, "kernel": 3},
        {"block": "pool", "type": "avg", "kernel": 3, "stride": 2, "padding": 1},
    ],
    "stages": [
        {"block": "bottleneck", "channels": 21, "expansion": 2},
        {"block": "basic", "channels": 19, "stride": 2},
    ],
    "head": {"type": "linear", "pool": "avg", "dropout": 0.3},
}


class LossCurve(pl.Callback):
    """Every training step's loss, in order."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # type: ignore[override]
        self.losses.append(float(outputs["loss"]))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty choice cache: its own folder and no decisions remembered in this process."""
    monkeypatch.setenv("CNN_NAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(speed, "_decisions", {})
    return tmp_path / "cache" / "memory_format.json"


def curve(compose, tmp_path, layout: str) -> tuple[list[float], bool]:
    cfg = compose(
        "train",
        [
            *TINY_DATA,
            "logger=none",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "test=false",
        ],
    )
    cfg.update(model=dict(SPEC), output_dir=str(tmp_path / layout), checkpoint=False)
    cfg["trainer"]["channels_last"] = layout
    monitor = LossCurve()
    seen: list[bool] = []

    class Layout(pl.Callback):
        def on_train_start(self, trainer, module) -> None:
            seen.append(module.channels_last)

    fit(cfg, callbacks=[monitor, Layout()], verbose=False)
    assert len(monitor.losses) == 9  # 288 training images (320 less the validation split) / batch 32
    return monitor.losses, seen[0]


def test_channels_last_trains_the_same_loss_curve(compose, tmp_path, cache):
    nchw, on = curve(compose, tmp_path, "false")
    nhwc, on_nhwc = curve(compose, tmp_path, "true")
    assert (on, on_nhwc) == (False, True)
    # Same function, other kernels: equal up to float32 rounding, which ten SGD steps amplify a little.
    assert nhwc == pytest.approx(nchw, rel=1e-4, abs=1e-5)
    assert nchw[-1] < nchw[0]  # it learns, so the comparison is not between two constant curves


def test_auto_trains_exactly_what_its_chosen_layout_trains(compose, tmp_path, cache):
    auto, chosen = curve(compose, tmp_path, "auto")
    fixed, _ = curve(compose, tmp_path, "true" if chosen else "false")
    # The probe times a copy on its own random batch and restores the RNG: dropout masks, data order and
    # initial weights are untouched, so the curves are bit-identical, not merely close.
    assert auto == fixed
    assert json.loads(cache.read_text()) == {next(iter(speed._decisions)): chosen}


def test_choice_is_cached_per_network_and_shape(cache, monkeypatch):
    model = build_model({**SPEC, "in_channels": 1, "num_classes": 10, "input_size": 16})
    spec = {**SPEC, "in_channels": 1, "num_classes": 10, "input_size": 16}
    calls: list[tuple] = []

    def fake(model, shape, num_classes):
        calls.append(shape)
        return {False: 2.0, True: 1.0}

    monkeypatch.setattr(speed, "time_layouts", fake)
    assert speed.choose_channels_last(model, spec, (8, 1, 16, 16)) is True
    assert speed.choose_channels_last(model, spec, (8, 1, 16, 16)) is True
    monkeypatch.setattr(speed, "_decisions", {})  # a new process: the file answers
    assert speed.choose_channels_last(model, spec, (8, 1, 16, 16)) is True
    assert calls == [(8, 1, 16, 16)]
    speed.choose_channels_last(model, spec, (16, 1, 16, 16))  # another batch shape is another question
    assert calls == [(8, 1, 16, 16), (16, 1, 16, 16)]


def test_probe_restores_the_rng_and_times_both_layouts():
    model = build_model({**SPEC, "in_channels": 1, "num_classes": 10, "input_size": 16})
    before = torch.get_rng_state()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    times = speed.time_layouts(model, (4, 1, 16, 16), 10)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # BN stats too
    assert set(times) == {False, True} and all(t > 0 for t in times.values())


@pytest.mark.parametrize(
    ("nchw_s", "nhwc_s", "expected"), [(2.0, 1.0, True), (1.0, 1.05, True), (1.0, 1.5, False)]
)
def test_nchw_only_when_clearly_faster(cache, monkeypatch, nchw_s, nhwc_s, expected):
    spec = {**SPEC, "in_channels": 1, "num_classes": 10, "input_size": 16}
    monkeypatch.setattr(speed, "time_layouts", lambda *a: {False: nchw_s, True: nhwc_s})
    assert speed.choose_channels_last(build_model(spec), spec, (8, 1, 16, 16)) is expected


@pytest.mark.parametrize("value", ["yes", "nhwc", 2])
def test_bad_channels_last_fails_before_training(compose, tmp_path, value):
    cfg = compose("train", [*TINY_DATA, "logger=none"])
    cfg["trainer"]["channels_last"] = value
    cfg["output_dir"] = str(tmp_path / "run")
    with pytest.raises(ValueError, match="auto, true, false"):
        fit(cfg, verbose=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_compile_wraps_the_network_and_keeps_checkpoint_keys(compose, tmp_path, cache, monkeypatch):
    import nas.module

    calls: list[torch.nn.Module] = []

    class Counting(torch.nn.Module):  # stands in for torch.compile's wrapper: compiling takes minutes here
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.inner, self.calls = model, 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return self.inner(x)

    def fake_compile(model):
        calls.append(Counting(model))
        return calls[-1]

    monkeypatch.setattr(nas.module, "compile_model", fake_compile)
    cfg = compose("train", [*TINY_DATA, "logger=none", "trainer.max_epochs=1", "trainer.compile=true"])
    cfg["output_dir"] = str(tmp_path / "run")
    result = fit(cfg, verbose=False)
    assert len(calls) == 1 and calls[0].calls >= 9  # every training step ran through the compiled network
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["state_dict"].keys() == nas.module.Classifier(result.spec, cfg["optim"]).state_dict().keys()
