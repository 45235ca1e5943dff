"""Input that cannot train is refused before any training: one message naming it, no traceback, exit status 2.

Each case ran to the end before: a negative width was clamped to one channel and trained to chance, and
`trainer.max_epochs=0` trained nothing and reported "nan images/s" with exit status 0.
"""

from __future__ import annotations

import sys

import pytest

from nas.config import validate_trainer
from tests.conftest import TINY_DATA


@pytest.fixture
def no_training(monkeypatch):
    """Any call to Trainer.fit fails the test: a refusal must come before it."""
    import pytorch_lightning as pl

    def fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(pl.Trainer, "fit", fit)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["model=resnet20", "model.stages.0.channels=-4"],
            "resnet20: stages.0.channels=-4 is invalid: a layer's output channels must be a positive integer",
        ),
        (["model=resnet20", "model.stages.1.repeat=0"], "resnet20: stages.1.repeat=0 is invalid"),
        (["model=resnet20", "model.stem.0.kernel=2.5"], "resnet20: stem.0.kernel=2.5 is invalid"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 trains nothing: it must be an integer >= 1"),
        (["trainer.max_epochs=-2"], "trainer.max_epochs=-2 trains nothing"),
    ],
    ids=["negative channels", "no repeats", "fractional kernel", "zero epochs", "negative epochs"],
)
def test_train_refuses_before_training(argv, message, tmp_path, monkeypatch, capsys, no_training):
    from experiments import train

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # as `python -m experiments.train`
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["train", *TINY_DATA, *argv, "logger=none", f"hydra.run.dir={run}"])
    with pytest.raises(SystemExit) as exit_:
        train.main()
    out = capsys.readouterr()
    assert exit_.value.code == 2
    assert out.err.startswith(f"train: error: {message}")
    assert out.err.count("error:") == 1 and "Traceback" not in out.out + out.err
    assert not (run / "metrics.json").exists() and not (run / "checkpoints").exists()


@pytest.mark.parametrize(
    ("trainer", "refused"),
    [
        ({"max_epochs": 1}, False),
        ({"max_epochs": None}, False),  # Lightning's default (1000 epochs, or max_steps)
        ({"max_epochs": -1, "max_steps": 50}, False),  # Lightning's "stop by steps"
        ({"max_epochs": -1}, True),  # endless
        ({"max_epochs": 0, "max_steps": 50}, True),
        ({"max_epochs": 1.5}, True),
        ({"max_epochs": True}, True),
    ],
)
def test_max_epochs_must_train_something(trainer, refused):
    if refused:
        with pytest.raises(ValueError, match=r"trainer\.max_epochs=.* trains nothing"):
            validate_trainer(trainer)
    else:
        validate_trainer(trainer)
