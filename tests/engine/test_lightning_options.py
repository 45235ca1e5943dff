"""Lightning's pieces through the config: reserved trainer keys refused, the `callbacks` group (EarlyStopping,
a user's own class), the learning rate logged, resuming from a checkpoint, and logger=tensorboard."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from nas.fit import fit
from tests.conftest import TINY_DATA


def tiny_cfg(compose, out: Path, *extra: str) -> dict:
    cfg = compose(
        "train",
        [*TINY_DATA, "logger=none", "trainer.enable_progress_bar=false", "test=false", *extra],
    )
    cfg["output_dir"] = str(out)
    return cfg


class CountEpochs(pl.Callback):
    """A user's own callback (instantiated from config): writes the epochs it saw and its argument to `path`."""

    def __init__(self, path: str, label: str = "") -> None:
        self.path, self.label, self.epochs = Path(path), label, []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.epochs.append(trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.path.write_text(json.dumps({"epochs": self.epochs, "label": self.label}))


def csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+trainer.logger=false", "trainer.logger is set by the platform: choose the logger with logger="),
        ("+trainer.callbacks=[]", "trainer.callbacks is set by the platform: add a callback with callbacks="),
        (
            "+trainer.default_root_dir=/tmp/x",
            "trainer.default_root_dir is set by the platform: .*hydra.run.dir",
        ),
    ],
)
def test_trainer_keys_the_platform_sets_are_refused_with_the_option_to_use(
    compose, tmp_path, override, message
):
    with pytest.raises(ValueError, match=message):
        fit(tiny_cfg(compose, tmp_path / "run", override), verbose=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written or trained


def test_early_stopping_from_the_callbacks_group_stops_a_run(compose, tmp_path):
    # min_delta 1.0: no epoch can improve accuracy by 1, so with patience 1 the run stops after epoch 1 of 6
    cfg = tiny_cfg(
        compose,
        tmp_path / "run",
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1.0",
        "trainer.max_epochs=6",
    )
    result = fit(cfg, verbose=False)
    assert torch.load(result.checkpoint, weights_only=False)["epoch"] == 1
    assert result.state == "COMPLETE"


def test_a_users_callback_class_is_instantiated_from_config(compose, tmp_path):
    marker = tmp_path / "seen.json"
    cfg = tiny_cfg(
        compose,
        tmp_path / "run",
        f"+callbacks.count._target_={__name__}.CountEpochs",
        f"+callbacks.count.path={marker}",
        "+callbacks.count.label=mine",
        "trainer.max_epochs=2",
        "checkpoint=false",
    )
    fit(cfg, verbose=False)
    assert json.loads(marker.read_text()) == {"epochs": [0, 1], "label": "mine"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+callbacks.x.patience=3", "callbacks.x needs a _target_"),
        (
            "+callbacks.x._target_=pytorch_lightning.callbacks.NoSuchCallback",
            "callbacks.x could not be built",
        ),
        (
            "+callbacks.x._target_=collections.OrderedDict",
            "callbacks.x: collections.OrderedDict is a OrderedDict, not",
        ),
    ],
)
def test_a_bad_callback_entry_is_named_before_training(compose, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        fit(tiny_cfg(compose, tmp_path / "run", override), verbose=False)
    assert not (tmp_path / "run").exists()


def test_learning_rate_reaches_the_logger_per_epoch(compose, tmp_path):
    cfg = tiny_cfg(
        compose,
        tmp_path / "run",
        "logger=csv",
        "optim.policy=constant",
        "optim.lr=0.05",
        "trainer.max_epochs=2",
        "checkpoint=false",
    )
    fit(cfg, verbose=False)
    rates = [float(r["train/lr"]) for r in csv_rows(tmp_path / "run") if r.get("train/lr")]
    assert rates == pytest.approx([0.05, 0.05])


def test_train_resumes_an_interrupted_run_from_its_checkpoint(compose, tmp_path, monkeypatch, capsys):
    """1 epoch, then `python -m experiments.train ckpt_path=<last.ckpt> trainer.max_epochs=2`: the second run
    trains epoch 1 only, and its step count continues from the first's."""
    from experiments import train

    first = fit(tiny_cfg(compose, tmp_path / "first", "trainer.max_epochs=1"), verbose=False)
    steps = torch.load(first.checkpoint, weights_only=False)["global_step"]
    assert steps > 0
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # as `python -m experiments.train`
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train",
            *TINY_DATA,
            "logger=csv",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "test=false",
            f"ckpt_path={first.checkpoint}",
            f"hydra.run.dir={tmp_path / 'second'}",
        ],
    )
    train.main()
    second = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=False)
    assert second["epoch"] == 1 and second["global_step"] == 2 * steps
    epochs = {int(r["epoch"]) for r in csv_rows(tmp_path / "second") if r.get("val/acc")}
    assert epochs == {1}  # epoch 0 was not trained again


@pytest.mark.parametrize(
    ("change", "message"),
    [("missing", "is not a file; resume from a run's checkpoint"), ("model", "holds another architecture")],
)
def test_a_bad_checkpoint_to_resume_from_is_refused(compose, tmp_path, change, message):
    first = fit(tiny_cfg(compose, tmp_path / "first", "trainer.max_epochs=1"), verbose=False)
    ckpt = tmp_path / "nothing.ckpt" if change == "missing" else first.checkpoint
    extra = ["model.stem.0.channels=24"] if change == "model" else []
    cfg = tiny_cfg(compose, tmp_path / "second", f"ckpt_path={ckpt}", *extra)
    with pytest.raises(ValueError, match=message):
        fit(cfg, verbose=False)
    assert not (tmp_path / "second").exists()


def test_tensorboard_logger_writes_events_that_read_back(compose, tmp_path):
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip('tensorboard is not installed: pip install tensorboard (the "dev" extra has it)')
    cfg = tiny_cfg(
        compose, tmp_path / "run", "logger=tensorboard", "trainer.max_epochs=2", "checkpoint=false"
    )
    result = fit(cfg, verbose=False)
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"val/acc", "val/loss", "train/loss_epoch", "train/lr", "train/images_per_s"} <= tags, tags
    values = [e.value for e in acc.Scalars("val/acc")]
    assert len(values) == 2 and values[-1] == pytest.approx(result.metrics["val/acc"], abs=1e-6)
