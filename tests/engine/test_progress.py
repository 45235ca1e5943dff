"""Progress output to a log file (nohup, SLURM): one line per epoch instead of Lightning's bar, which leaves a
frame per step in a file (about 45 for a 21-batch epoch). The commands run with stdout and stderr as pipes."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from nas.config import make_trainer
from nas.progress import EpochLines, epoch_line, is_terminal

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
    assert built(io.StringIO()) == (False, True)
    assert built(io.StringIO(), enable_progress_bar=False) == (False, False)  # off is off everywhere
    assert is_terminal(Tty()) and not is_terminal(io.StringIO()) and not is_terminal(object())


def test_an_epoch_line_shows_the_bars_metrics_once():
    metrics = {"train/loss_step": 2.0, "train/loss_epoch": 1.23456, "val/acc": 0.5}
    assert epoch_line(2, 3, metrics, 12.34) == "epoch 2/3  train/loss 1.2346  val/acc 0.5000  12.3 s"
    assert epoch_line(4, -1, {}, 1.0) == "epoch 4  1.0 s"  # no epoch limit (max_steps)
