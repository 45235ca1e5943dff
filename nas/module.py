"""The LightningModule: a classifier built from a plain model spec and a plain optimisation config."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from blocks import build_model
from nas.optim import build_optimizer, build_scheduler
from nas.speed import choose_channels_last, compile_model, convert_optimizer_state, parse_channels_last


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the run cannot recover, and callers record it as pruned."""


class Classifier(pl.LightningModule):
    """Trains the network a spec describes. Hyperparameters are plain data, so a checkpoint alone rebuilds it.

    Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `val/acc5`, `val/acc_best`, `test/*`, and the LR.
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
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc5 = MulticlassAccuracy(n, top_k=min(5, n), average="micro")
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_acc5 = MulticlassAccuracy(n, top_k=min(5, n), average="micro")
        # Losses as metrics too, so that under DDP they are the mean over every rank's images, not rank 0's
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = 0.0

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
        self.train_acc(logits.detach(), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

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
