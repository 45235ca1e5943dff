"""Progress output: redrawn bars on a terminal, one line per epoch (or per trial) anywhere else.

A log file (`nohup`, SLURM's `--output`) keeps every redraw of a bar: Lightning's is drawn once per step, so a
21-batch epoch left ~45 frames in it. `nas.config.make_trainer` swaps Lightning's bar for `EpochLines` when
stdout is not a terminal; the search's bar (nas.search.loop) is off there, its per-trial lines carry the count.
On a terminal Lightning's bar is redrawn every `BAR_REFRESH_STEPS` steps (`terminal_bar`), not every step.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

# Training steps between two redraws of Lightning's bar on a terminal. By default it redraws twice every step (the
# count, then the metrics): about 700 Python calls a step, where a plain PyTorch loop's whole step makes about 670
# (experiments.bench throughput's network). Every 10 steps is still a redraw a second at 10 steps/s, the slow end
# of the networks trained here.
BAR_REFRESH_STEPS = 10


def is_terminal(stream: Any | None = None) -> bool:
    """Whether `stream` (default: stdout, where Lightning draws its bar) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def terminal_bar() -> TQDMProgressBar:
    """Lightning's progress bar, redrawn every `BAR_REFRESH_STEPS` batches and at an epoch's last."""
    return TQDMProgressBar(refresh_rate=BAR_REFRESH_STEPS)


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, Any], seconds: float) -> str:
    """`epoch 2/3  train/loss 0.4121  val/acc 0.8530  12.4 s`: the metrics Lightning's bar shows, per epoch."""
    total = f"/{max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    parts = [f"epoch {epoch}{total}"]
    for key in sorted(metrics):
        if key.endswith("_step"):  # the bar's per-step value; the epoch's mean is `<name>_epoch`
            continue
        value = metrics[key]
        parts.append(f"{key.removesuffix('_epoch')} {float(value):.4f}")
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


class EpochLines(pl.Callback):
    """One line per training epoch (after its validation), printed by the global rank 0 process."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: sys.stdout at the time of printing (pytest and redirections swap it)
        self._start = time.monotonic()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        line = epoch_line(
            trainer.current_epoch + 1, trainer.max_epochs, dict(trainer.progress_bar_metrics),
            time.monotonic() - self._start,
        )  # fmt: skip
        print(line, file=self.stream or sys.stdout, flush=True)
