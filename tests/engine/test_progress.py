"""Progress output to a log file (nohup, SLURM): one line per epoch instead of Lightning's bar, which leaves a
frame per step in a file (about 45 for a 21-batch epoch). The commands run with stdout and stderr as pipes."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from pytorch_lightning.callbacks import TQDMProgressBar

from nas.config import make_trainer
from nas.module import Classifier
from nas.progress import BAR_REFRESH_STEPS, EpochLines, epoch_line, is_terminal

ROOT = Path(__file__).resolve().parents[2]
# What a redrawn tqdm bar leaves in a file: a carriage return, a percentage bar, a rate.
BAR = re.compile(r"\r|\d+%\||it/s|s/it")
TINY_BENCH = "--data synthetic --batch-size 16 --batches 3 --rounds 2".split()


def command(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """`python -m ARGV` in an empty folder, its output captured by pipes (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def test_train_to_a_log_file_prints_one_line_per_epoch_and_no_bar(tmp_path):
    run = command(
        tmp_path, "experiments.train", "data=synthetic", "data.train_size=200", "data.test_size=50",
        "data.image_size=8", "data.batch_size=16", "trainer.max_epochs=2", "logger=none", "checkpoint=false",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = re.findall(r"^epoch (\d)/2  train/loss \d\.\d{4}  val/acc \d\.\d{4}  ", run.stdout, re.M)
    assert lines == ["1", "2"]
    assert not BAR.search(run.stdout + run.stderr), run.stdout


def test_bench_throughput_to_a_log_file_draws_no_bar(tmp_path):
    run = command(tmp_path, "experiments.bench", "throughput", *TINY_BENCH)
    assert run.returncode == 0, run.stderr
    assert len(re.findall(r"^round \d: platform", run.stdout, re.M)) == 2
    assert len(re.findall(r"^epoch 1/1 ", run.stdout, re.M)) == 2  # one line per round's epoch, not per step
    assert not BAR.search(run.stdout + run.stderr), run.stdout


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_for_a_terminal_and_the_epoch_lines_for_anything_else(tmp_path, monkeypatch):
    def built(stdout, **overrides):
        monkeypatch.setattr(sys, "stdout", stdout)
        trainer = make_trainer({"max_epochs": 1}, logger=None, callbacks=[], out=tmp_path, **overrides)
        lines = any(isinstance(c, EpochLines) for c in trainer.callbacks)
        return trainer.progress_bar_callback is not None, lines

    assert built(Tty()) == (True, False)
    assert make_trainer({}, logger=None, callbacks=[], out=tmp_path).progress_bar_callback.refresh_rate == (
        BAR_REFRESH_STEPS
    )  # stdout is still the Tty: redrawn every few steps, not every step
    assert built(io.StringIO()) == (False, True)
    assert built(io.StringIO(), enable_progress_bar=False) == (False, False)  # off is off everywhere
    assert is_terminal(Tty()) and not is_terminal(io.StringIO()) and not is_terminal(object())


def test_on_a_terminal_the_bar_is_redrawn_every_few_steps_not_twice_a_step(tmp_path, monkeypatch):
    # Lightning's default bar redrew twice a step: 47 frames for a 21-batch epoch, about 700 Python calls a step.
    spec = {"name": "tiny", "family": "plain", "in_channels": 1, "num_classes": 4, "input_size": 8, "act": "relu",
            "norm": "batchnorm", "stem": [{"block": "conv", "channels": 4}], "head": {"type": "linear"}}  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, 1, 8, 8, generator=gen), torch.randint(0, 4, (4,), generator=gen)) for _ in range(21)]

    # A wide terminal, whatever runs the test: tqdm cuts each frame at the width it finds ($COLUMNS when it
    # cannot ask the Tty); in a pytest-xdist worker with the floors' Lightning that was 80, cutting off the loss.
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("LINES", "50")

    def frames(callbacks):
        out = Tty()
        monkeypatch.setattr(sys, "stdout", out)
        trainer = make_trainer(
            {"max_epochs": 1, "accelerator": "cpu"}, logger=None, callbacks=callbacks, out=tmp_path,
            limit_val_batches=0, enable_checkpointing=False, enable_model_summary=False,
        )  # fmt: skip
        trainer.fit(Classifier(spec, {"name": "sgd", "lr": 0.01}), train_dataloaders=Batches(data))
        return out.getvalue().split("\r"), trainer.progress_bar_callback

    drawn, bar = frames([])
    redraws = -(-21 // BAR_REFRESH_STEPS)  # steps 10, 20 and the last
    assert len(drawn) - 1 <= 2 * redraws + 5, drawn  # two frames a redraw, five to open and close the epoch
    assert "21/21" in drawn[-1] and "train/loss_epoch" in drawn[-1]  # the last step and the epoch's loss drawn
    own = TQDMProgressBar(refresh_rate=1)  # a bar a user brings (callbacks group) is used as it is, not doubled
    drawn, bar = frames([own])
    assert bar is own and len(drawn) - 1 > 21


class Batches:
    """A sized iterable of batches, as the platform's data modules give Lightning."""

    def __init__(self, items: list) -> None:
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def test_an_epoch_line_shows_the_bars_metrics_once():
    metrics = {"train/loss_step": 2.0, "train/loss_epoch": 1.23456, "val/acc": 0.5}
    assert epoch_line(2, 3, metrics, 12.34) == "epoch 2/3  train/loss 1.2346  val/acc 0.5000  12.3 s"
    assert epoch_line(4, -1, {}, 1.0) == "epoch 4  1.0 s"  # no epoch limit (max_steps)
