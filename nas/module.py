"""The LightningModule: a classifier built from a plain model spec and a plain optimisation config."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from blocks import build_model
from nas.optim import build_optimizer, build_scheduler
from nas.speed import choose_channels_last, compile_model, convert_optimizer_state, parse_channels_last


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the run cannot recover, and callers record it as pruned."""


class BatchMean(Metric):
    """The mean of per-batch values weighted by their batch sizes, over this process's batches (as Lightning
    averages a logged tensor: under DDP each rank's own, no sync).

    torchmetrics' MeanMetric reads `isnan(x).any()` on the host at every update (a wait for the step on a GPU,
    and more Python than the sum itself); the training loss it would average is checked finite already.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__(sync_on_compute=False)
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: int) -> None:
        self.total += value * weight
        self.weight += weight

    def compute(self) -> torch.Tensor:
        return self.total / self.weight


class Classifier(pl.LightningModule):
    """Trains the network a spec describes. Hyperparameters are plain data, so a checkpoint alone rebuilds it.

    Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `val/acc5`, `val/acc_best`, `test/*`, and the LR.
    `train/loss` is logged per epoch (`train/loss_epoch`, the mean over every batch) and per step
    (`train/loss_step`) at the steps the logger writes (`trainer.log_every_n_steps`) and the epoch's first; the
    progress bar shows the last of those.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        optim: dict[str, Any],
        batch_size: int = 128,
        channels_last: bool | str = False,
        compile: bool = False,
    ) -> None:
        """`channels_last`: True / False, or "auto" (on CPU the faster layout, timed when fitting starts).

        `compile`: run the network through `torch.compile` (long runs only: compiling takes minutes on CPU).
        """
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(spec)
        # The compiled callable is kept outside the module tree, so state_dict keys and checkpoints are
        # the same with and without compilation.
        self._compiled: list[torch.nn.Module] = []
        self.channels_last = False  # the layout in use now; "auto" decides in on_fit_start
        self._auto_layout = parse_channels_last(channels_last) is None
        if parse_channels_last(channels_last):
            self.set_channels_last(True)
        n = int(spec["num_classes"])
        # Updated every training step, logged through Lightning only on the steps that log (training_step).
        self.train_loss = BatchMean()
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc5 = MulticlassAccuracy(n, top_k=min(5, n), average="micro")
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_acc5 = MulticlassAccuracy(n, top_k=min(5, n), average="micro")
        # Losses as metrics too, so that under DDP they are the mean over every rank's images, not rank 0's
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = 0.0
        self._log_next_step = True  # the next training step calls self.log (see _logs_step)

    def set_channels_last(self, on: bool) -> None:
        """Move the network (and any optimiser state) to NHWC (`on`) or NCHW; inputs follow in forward."""
        fmt = torch.channels_last if on else torch.contiguous_format
        self.model = self.model.to(memory_format=fmt)
        self.channels_last = on
        if self._trainer is not None:
            for opt in self.trainer.optimizers:
                convert_optimizer_state(opt, fmt)

    def on_fit_start(self) -> None:
        # Only a single CPU process probes: on a GPU NCHW stays (today's default; set channels_last: true
        # for tensor-core layouts), and under DDP every rank must hold the same layout its buckets were
        # built for.
        if self._auto_layout and self.device.type == "cpu" and self.trainer.world_size == 1:
            spec = self.hparams.spec
            shape = (int(self.hparams.batch_size), int(spec["in_channels"]), *(2 * [int(spec["input_size"])]))
            self.set_channels_last(choose_channels_last(self.model, spec, shape))
        if self.hparams.get("compile") and not self._compiled:  # after the layout: a switch would recompile
            self._compiled.append(compile_model(self.model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._compiled[0](x) if self._compiled else self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss.detach()):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step} "
                "(diverged: lower optim.lr, add warm-up or a norm layer)"
            )
        # Every step only updates the epoch's metrics on the device. Lightning's self.log costs about a millisecond
        # of Python a call (most of what the platform cost over a plain PyTorch loop: experiments.bench
        # throughput), so it runs only on the steps that log, with the metric objects: Lightning computes the
        # epoch values from all of the epoch's updates, and the step value from the batch of the last call.
        self.train_acc.update(logits.detach(), y)
        if self._logs_step():
            self.train_loss(loss.detach(), len(y))  # forward: also this batch's value, the step's train/loss
            self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        else:
            self.train_loss.update(loss.detach(), len(y))
        return loss

    def _logs_step(self) -> bool:
        """Whether this training step calls self.log: the epoch's first (which registers the epoch's metrics, so an
        epoch shorter than log_every_n_steps logs them too) and every step whose values Lightning's logger
        connector writes (`(global_step + 1) % trainer.log_every_n_steps == 0`, its rule for one optimiser)."""
        first, self._log_next_step = self._log_next_step, False
        every = self.trainer.log_every_n_steps
        return first or (every > 0 and (self.global_step + 1) % every == 0)

    def on_train_epoch_start(self) -> None:
        # Lightning resets logged metrics after an epoch that finished; one cut short (an exception) would leave
        # its updates in the next fit of this module.
        self.train_loss.reset()
        self.train_acc.reset()
        self._log_next_step = True

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.val_acc5(logits, y)
        self.val_loss(F.cross_entropy(logits, y), weight=len(y))
        self.log("val/loss", self.val_loss, on_epoch=True, batch_size=len(y))
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("val/acc5", self.val_acc5, on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        acc = self.trainer.callback_metrics.get("val/acc")
        if acc is not None:
            self.val_acc_best = max(self.val_acc_best, float(acc))
        self.log("val/acc_best", self.val_acc_best)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A plain attribute, not a metric: saved so that a resumed run goes on from the best so far.
        checkpoint["val_acc_best"] = self.val_acc_best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_acc_best = float(checkpoint.get("val_acc_best", 0.0))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.test_acc(logits, y)
        self.test_acc5(logits, y)
        self.test_loss(F.cross_entropy(logits, y), weight=len(y))
        self.log("test/loss", self.test_loss, on_epoch=True, batch_size=len(y))
        self.log("test/acc", self.test_acc, on_epoch=True, batch_size=len(y))
        self.log("test/acc5", self.test_acc5, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self) -> dict[str, Any]:
        opt = build_optimizer(self.model, self.hparams.optim, self.hparams.batch_size)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(1, int(self.trainer.max_epochs or 1))
        sched = build_scheduler(opt, self.hparams.optim, total, max(1, total // epochs))
        # `name`: the key LearningRateMonitor logs the rate under (`train/lr`; `train/lr/pg<k>` per group)
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "interval": "step", "name": "train/lr"},
        }
